package main

// Generators for the hostile-input suite (hostile_test.go): every input is
// made at test time, small on disk however large it claims or inflates to.
// Each generator returns a maker, which writes one file at a path; the helpers
// below it are shared by several generators.

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// maker writes one input file at path.
type maker func(t *testing.T, path string)

// writeGen writes fixed bytes.
func writeGen(data []byte) maker {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// lazyGen writes bytes computed once per test binary (shared by cases).
func lazyGen(compute func() []byte) maker {
	once := sync.OnceValue(compute)
	return func(t *testing.T, path string) { writeGen(once())(t, path) }
}

// memoBytes computes bytes once per key (for data that several cases embed).
func memoBytes(key string, compute func() []byte) []byte {
	once, _ := memoTable.LoadOrStore(key, sync.OnceValue(compute))
	return once.(func() []byte)()
}

var memoTable sync.Map

// readRepo reads a file of the repository (paths relative to this package).
func readRepo(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(rel)
	if err != nil {
		t.Fatalf("hostile suite fixture: %v", err)
	}
	return data
}

// copyOf copies a repository file.
func copyOf(rel string) maker {
	return func(t *testing.T, path string) { writeGen(readRepo(t, rel))(t, path) }
}

// truncatedCopy copies the first frac of a repository file.
func truncatedCopy(rel string, frac float64) maker {
	return func(t *testing.T, path string) {
		data := readRepo(t, rel)
		writeGen(data[:int(float64(len(data))*frac)])(t, path)
	}
}

// bitFlipped copies a repository file with one bit flipped at frac of its
// length.
func bitFlipped(rel string, frac float64) maker {
	return func(t *testing.T, path string) {
		data := bytes.Clone(readRepo(t, rel))
		data[int(float64(len(data))*frac)] ^= 0x10
		writeGen(data)(t, path)
	}
}

// symlinkTo makes a symbolic link to target (relative to the link's folder).
func symlinkTo(target string) maker {
	return func(t *testing.T, path string) {
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
}

// hardlinkTo makes a hard link to target (a file made earlier in the same
// case folder).
func hardlinkTo(target string) maker {
	return func(t *testing.T, path string) {
		if err := os.Link(filepath.Join(filepath.Dir(path), target), path); err != nil {
			t.Fatal(err)
		}
	}
}

// sparseWith makes a file of n bytes: prefix, then zeros that take no disk
// space.
func sparseWith(prefix []byte, n int64) maker {
	return func(t *testing.T, path string) {
		f, err := os.Create(path)
		if err == nil {
			if _, err = f.Write(prefix); err == nil {
				err = f.Truncate(n)
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// ---- Streams of zeros: deflate, zlib, gzip ----

// zeroUnit is how many zeros one repeated deflate chunk holds.
const zeroUnit = 1 << 20

// zeroDeflateChunk is zeroUnit zeros compressed and sync-flushed: a run of
// non-final deflate blocks that ends byte-aligned and refers back only
// within itself, so copies of it can be concatenated (the back-references
// of a later copy see zeros too). 1 MiB becomes about 1 KiB.
var zeroDeflateChunk = sync.OnceValue(func() []byte { return deflateFlushed(zeroUnit) })

func deflateFlushed(n int) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(make([]byte, n))
	w.Flush()
	return b.Bytes()
}

// deflateZeros writes a raw deflate stream (RFC 1951) that inflates to n
// zero bytes, in about n/1000 bytes and without ever holding n bytes.
func deflateZeros(w io.Writer, n int64) error {
	chunk := zeroDeflateChunk()
	for ; n >= zeroUnit; n -= zeroUnit {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	if n > 0 {
		if _, err := w.Write(deflateFlushed(int(n))); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte{0x03, 0x00}) // final fixed-Huffman block: end of block only
	return err
}

// crcZeros is the CRC-32 (IEEE) of data of CRC init followed by n zero
// bytes (crc32.Update continues a finished CRC), memoized: the 1 GiB
// members of several cases share it.
func crcZeros(init uint32, n int64) uint32 {
	type key struct {
		init uint32
		n    int64
	}
	if c, ok := crcMemo.Load(key{init, n}); ok {
		return c.(uint32)
	}
	zeros := make([]byte, zeroUnit)
	c := init
	for left := n; left > 0; left -= int64(len(zeros)) {
		c = crc32.Update(c, crc32.IEEETable, zeros[:min(left, int64(len(zeros)))])
	}
	crcMemo.Store(key{init, n}, c)
	return c
}

var crcMemo sync.Map

// zlibZeros is a zlib stream (RFC 1950) of n zeros: the Adler-32 of zeros
// is a=1, b=n mod 65521.
func zlibZeros(n int64) []byte {
	b := bytes.NewBuffer([]byte{0x78, 0xda})
	deflateZeros(b, n)
	binary.Write(b, binary.BigEndian, uint32(n%65521)<<16|1)
	return b.Bytes()
}

// gzipGen is a gzip file (RFC 1952) of prefix followed by zeros zero
// bytes.
func gzipGen(prefix []byte, zeros int64) maker {
	return lazyGen(func() []byte {
		var b bytes.Buffer
		b.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255})
		w, _ := flate.NewWriter(&b, flate.BestCompression)
		w.Write(prefix)
		w.Flush()
		deflateZeros(&b, zeros) // its blocks may follow the flushed ones
		binary.Write(&b, binary.LittleEndian, crcZeros(crc32.ChecksumIEEE(prefix), zeros))
		binary.Write(&b, binary.LittleEndian, uint32(int64(len(prefix))+zeros))
		return b.Bytes()
	})
}

// ---- Zip archives ----

// zipMember is one archive member: the repository file src, data, or
// zeros zero bytes stored as a deflate stream written directly (never
// inflated here). declared, if not zero, is the uncompressed size written
// in the headers instead of the true one (a lying header).
type zipMember struct {
	name     string
	src      string
	data     []byte
	zeros    int64
	declared int64
}

func zipGen(members ...zipMember) maker {
	return func(t *testing.T, path string) {
		t.Helper()
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for _, m := range members {
			if m.zeros == 0 {
				data := m.data
				if m.src != "" {
					data = readRepo(t, m.src)
				}
				w, err := zw.Create(m.name)
				if err == nil {
					_, err = w.Write(data)
				}
				if err != nil {
					t.Fatal(err)
				}
				continue
			}
			var comp bytes.Buffer
			deflateZeros(&comp, m.zeros)
			size := m.zeros
			if m.declared != 0 {
				size = m.declared
			}
			w, err := zw.CreateRaw(&zip.FileHeader{Name: m.name, Method: zip.Deflate,
				CRC32: crcZeros(0, m.zeros), CompressedSize64: uint64(comp.Len()), UncompressedSize64: uint64(size)})
			if err == nil {
				_, err = w.Write(comp.Bytes())
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		writeGen(b.Bytes())(t, path)
	}
}

// ---- Images ----

// pngBomb is a PNG of w x h zero pixels (bitDepth 8 or 16, colorType 0
// gray, 2 RGB or 6 RGBA), written by hand: its IDAT is a zlib stream of
// all-zero rows (filter byte 0), about 1000 times smaller than the pixels.
func pngBomb(w, h, bitDepth, colorType int) maker {
	return func(t *testing.T, path string) { writeGen(pngBombData(w, h, bitDepth, colorType))(t, path) }
}

func pngBombData(w, h, bitDepth, colorType int) []byte {
	return memoBytes(fmt.Sprint("png", w, h, bitDepth, colorType), func() []byte {
		channels := map[int]int{0: 1, 2: 3, 6: 4}[colorType]
		raw := int64(h) * (1 + int64(w)*int64(channels*bitDepth/8))
		var b bytes.Buffer
		b.WriteString("\x89PNG\r\n\x1a\n")
		ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
		ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
		ihdr = append(ihdr, byte(bitDepth), byte(colorType), 0, 0, 0)
		pngChunk(&b, "IHDR", ihdr)
		pngChunk(&b, "IDAT", zlibZeros(raw))
		pngChunk(&b, "IEND", nil)
		return b.Bytes()
	})
}

func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	io.WriteString(crc, typ)
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.Write(b, binary.BigEndian, crc.Sum32())
}

// jpegHeader is a baseline JPEG that declares w x h (3 components) and
// ends right after its frame header: a header bomb.
func jpegHeader(w, h int) maker {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xd8})        // SOI
	b.Write([]byte{0xff, 0xe0, 0, 16}) // APP0 JFIF, so that DecodeConfig stops at SOF
	b.WriteString("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
	b.Write([]byte{0xff, 0xdb, 0, 67, 0}) // DQT, table 0
	b.Write(bytes.Repeat([]byte{1}, 64))
	b.Write([]byte{0xff, 0xc0, 0, 17, 8}) // SOF0, 8-bit, h, w, 3 components
	binary.Write(&b, binary.BigEndian, []uint16{uint16(h), uint16(w)})
	b.Write([]byte{3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0})
	return writeGen(b.Bytes())
}

// gifHeader is a GIF that declares a w x h screen and image and holds one
// byte of image data.
func gifHeader(w, h int) maker {
	var b bytes.Buffer
	b.WriteString("GIF89a")
	binary.Write(&b, binary.LittleEndian, uint16(w))
	binary.Write(&b, binary.LittleEndian, uint16(h))
	b.Write([]byte{0x80, 0, 0, 0, 0, 0, 255, 255, 255}) // 2-color global table
	b.WriteByte(0x2c)                                   // image descriptor
	binary.Write(&b, binary.LittleEndian, [2]uint16{0, 0})
	binary.Write(&b, binary.LittleEndian, uint16(w))
	binary.Write(&b, binary.LittleEndian, uint16(h))
	b.Write([]byte{0, 2, 1, 0x44, 0, 0x3b})
	return writeGen(b.Bytes())
}

// bmpHeader is a 24-bit BMP that declares w x h and holds no pixels.
func bmpHeader(w, h int) maker {
	var b bytes.Buffer
	b.WriteString("BM")
	binary.Write(&b, binary.LittleEndian, []uint32{54, 0, 54}) // file size, reserved, pixel offset
	binary.Write(&b, binary.LittleEndian, []uint32{40, uint32(w), uint32(h)})
	binary.Write(&b, binary.LittleEndian, []uint16{1, 24})
	binary.Write(&b, binary.LittleEndian, []uint32{0, 0, 2835, 2835, 0, 0})
	return writeGen(b.Bytes())
}

// ---- NumPy .npy ----

// npyGen is a version 1.0 <f4 array of the given shape; value(i) gives
// element i.
func npyGen(shape []int, value func(i int) float32) maker {
	return func(t *testing.T, path string) { writeGen(npyBytes(shape, value))(t, path) }
}

func npyBytes(shape []int, value func(i int) float32) []byte {
	dims := make([]string, len(shape))
	n := 1
	for k, d := range shape {
		dims[k] = fmt.Sprint(d)
		n *= d
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Pad so that magic + version + length + header is a multiple of 64.
	header += strings.Repeat(" ", 63-(10+len(header))%64) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	b = append(b, header...)
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(value(i)))
	}
	return b
}

// ---- IDX (Fashion-MNIST layout) ----

// idxHeader is an IDX header: magic 0x08 0x0nd, then dims (big-endian).
func idxHeader(dims ...uint32) []byte {
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return b
}

// ---- ONNX, written with protowire (field numbers of onnx.proto) ----

const (
	onnxFloat = 1
	onnxInt64 = 7
)

type pbuf []byte

func (b pbuf) varint(num protowire.Number, v int64) pbuf {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), uint64(v))
}

func (b pbuf) bytes(num protowire.Number, v []byte) pbuf {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func (b pbuf) str(num protowire.Number, s string) pbuf { return b.bytes(num, []byte(s)) }

func (b pbuf) packed(num protowire.Number, vs []int64) pbuf {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, uint64(v))
	}
	return b.bytes(num, p)
}

// onnxModel is a single-graph ModelProto under construction.
type onnxModel struct {
	opset                   int64
	nodes, inits, ins, outs []pbuf
}

func (m *onnxModel) bytes() []byte {
	var g pbuf
	for _, n := range m.nodes {
		g = g.bytes(1, n)
	}
	g = g.str(2, "hostile")
	for _, t := range m.inits {
		g = g.bytes(5, t)
	}
	for _, v := range m.ins {
		g = g.bytes(11, v)
	}
	for _, v := range m.outs {
		g = g.bytes(12, v)
	}
	return pbuf{}.varint(1, 8).str(2, "edge-resnet-hostile").bytes(7, g).bytes(8, pbuf{}.varint(2, m.opset))
}

// onnxValueInfo is a tensor ValueInfoProto with fixed dims.
func onnxValueInfo(name string, elem int64, dims ...int64) pbuf {
	var shape pbuf
	for _, d := range dims {
		shape = shape.bytes(1, pbuf{}.varint(1, d))
	}
	return pbuf{}.str(1, name).bytes(2, pbuf{}.bytes(1, pbuf{}.varint(1, elem).bytes(2, shape)))
}

func onnxNode(op, name string, ins, outs []string, attrs ...pbuf) pbuf {
	n := pbuf{}
	for _, in := range ins {
		n = n.str(1, in)
	}
	for _, o := range outs {
		n = n.str(2, o)
	}
	n = n.str(3, name).str(4, op)
	for _, a := range attrs {
		n = n.bytes(5, a)
	}
	return n
}

func onnxAttrInt(name string, v int64) pbuf { return pbuf{}.str(1, name).varint(20, 2).varint(3, v) }

func onnxAttrString(name, v string) pbuf { return pbuf{}.str(1, name).varint(20, 3).str(4, v) }

func onnxAttrTensor(name string, t pbuf) pbuf { return pbuf{}.str(1, name).varint(20, 4).bytes(5, t) }

// onnxTensorRaw is a TensorProto with raw_data (dims packed).
func onnxTensorRaw(name string, dt int64, dims []int64, raw []byte) pbuf {
	return pbuf{}.packed(1, dims).varint(2, dt).str(8, name).bytes(9, raw)
}

// onnxTensorFloats is a FLOAT TensorProto with (packed) float_data.
func onnxTensorFloats(name string, dims []int64, vals []float32) pbuf {
	var p []byte
	for _, v := range vals {
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(v))
	}
	return pbuf{}.packed(1, dims).varint(2, onnxFloat).str(8, name).bytes(4, p)
}

func le64s(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func onnxGen(m *onnxModel) maker { return writeGen(m.bytes()) }

// arenaBomb is the bomb: input x of 1x3xSxS, pads Pad nodes of x
// (constant mode, grow pixels on each side of H and W), all computed before
// they are summed in a balanced tree of Adds, then GlobalAveragePool and
// Flatten to a 1x3 output. A few hundred bytes that plan pads+ tensors of
// 3x(S+2grow)^2 floats live at once.
func arenaBomb(size, pads, grow int64) maker {
	m := &onnxModel{opset: 13}
	m.ins = append(m.ins, onnxValueInfo("x", onnxFloat, 1, 3, size, size))
	m.inits = append(m.inits, onnxTensorRaw("pads", onnxInt64, []int64{8}, le64s(0, 0, grow, grow, 0, 0, grow, grow)))
	var level []string
	for k := range pads {
		out := fmt.Sprintf("p%d", k)
		m.nodes = append(m.nodes, onnxNode("Pad", "pad"+fmt.Sprint(k), []string{"x", "pads"}, []string{out}, onnxAttrString("mode", "constant")))
		level = append(level, out)
	}
	for adds := 0; len(level) > 1; {
		var next []string
		for k := 0; k+1 < len(level); k += 2 {
			out := fmt.Sprintf("s%d", adds)
			adds++
			m.nodes = append(m.nodes, onnxNode("Add", out, []string{level[k], level[k+1]}, []string{out}))
			next = append(next, out)
		}
		if len(level)%2 == 1 {
			next = append(next, level[len(level)-1])
		}
		level = next
	}
	m.nodes = append(m.nodes,
		onnxNode("GlobalAveragePool", "gap", []string{level[0]}, []string{"g"}),
		onnxNode("Flatten", "flat", []string{"g"}, []string{"y"}))
	m.outs = append(m.outs, onnxValueInfo("y", onnxFloat, 1, 3))
	return onnxGen(m)
}

// withConstant is a 1x1x28x28 model whose input is added to a constant:
// the constant is the initializer init (when not nil), or the output of
// the node made by makeNode(outputName). The bad constant is what the
// importer must refuse before allocating.
func withConstant(init pbuf, constName string, extra ...pbuf) maker {
	m := &onnxModel{opset: 13}
	m.ins = append(m.ins, onnxValueInfo("x", onnxFloat, 1, 1, 28, 28))
	if init != nil {
		m.inits = append(m.inits, init)
	}
	m.nodes = append(m.nodes, extra...)
	m.nodes = append(m.nodes,
		onnxNode("Add", "add_const", []string{"x", constName}, []string{"a"}),
		onnxNode("Flatten", "flat", []string{"a"}, []string{"y"}))
	m.outs = append(m.outs, onnxValueInfo("y", onnxFloat, 1, 784))
	return onnxGen(m)
}

// shortInit: an initializer whose dims promise far more than it stores.
func shortInit(name string, dt int64, dims []int64, raw []byte) maker {
	return withConstant(onnxTensorRaw(name, dt, dims, raw), name)
}

// constantOfShape: a ConstantOfShape node (named name) of the given shape
// and element type.
func constantOfShape(name string, dt int64, shape ...int64) maker {
	value := onnxTensorRaw("value", dt, []int64{1}, make([]byte, map[int64]int{onnxFloat: 4, onnxInt64: 8}[dt]))
	return withConstant(onnxTensorRaw("shape", onnxInt64, []int64{int64(len(shape))}, le64s(shape...)), "c",
		onnxNode("ConstantOfShape", name, []string{"shape"}, []string{"c"}, onnxAttrTensor("value", value)))
}

// rangeOf: a Range node (named name) of INT64 0..n.
func rangeOf(name string, n int64) maker {
	m := &onnxModel{opset: 13}
	m.ins = append(m.ins, onnxValueInfo("x", onnxFloat, 1, 1, 28, 28))
	m.inits = append(m.inits,
		onnxTensorRaw("start", onnxInt64, nil, le64s(0)),
		onnxTensorRaw("limit", onnxInt64, nil, le64s(n)),
		onnxTensorRaw("delta", onnxInt64, nil, le64s(1)))
	m.nodes = append(m.nodes,
		onnxNode("Range", name, []string{"start", "limit", "delta"}, []string{"r"}),
		onnxNode("Cast", "cast", []string{"r"}, []string{"c"}, onnxAttrInt("to", onnxFloat)),
		onnxNode("Add", "add_const", []string{"x", "c"}, []string{"a"}),
		onnxNode("Flatten", "flat", []string{"a"}, []string{"y"}))
	m.outs = append(m.outs, onnxValueInfo("y", onnxFloat, 1, 784))
	return onnxGen(m)
}

// gemmModel is a legitimate model with big weights (zeros): x 1x3x32x32,
// Flatten, Gemm to n outputs. Its conversion writes 12 KiB per output.
// (Made afresh for each use, so that the test process does not keep it.)
func gemmModel(n int64) maker {
	return func(t *testing.T, path string) {
		m := &onnxModel{opset: 13}
		m.ins = append(m.ins, onnxValueInfo("x", onnxFloat, 1, 3, 32, 32))
		m.inits = append(m.inits,
			onnxTensorRaw("w", onnxFloat, []int64{n, 3072}, make([]byte, 4*3072*n)),
			onnxTensorRaw("b", onnxFloat, []int64{n}, make([]byte, 4*n)))
		m.nodes = append(m.nodes,
			onnxNode("Flatten", "flat", []string{"x"}, []string{"f"}),
			onnxNode("Gemm", "fc", []string{"f", "w", "b"}, []string{"y"}, onnxAttrInt("transB", 1)))
		m.outs = append(m.outs, onnxValueInfo("y", onnxFloat, 1, n))
		writeGen(m.bytes())(t, path)
	}
}

// ---- Readers that check the generators (TestHostileGenerators) ----

func flateReader(r io.Reader) io.Reader { return flate.NewReader(r) }

func gunzipLen(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, z) // checks the CRC and length
	return n, err
}

func zipLen(path, member string) (int64, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return 0, err
	}
	defer z.Close()
	f, err := z.Open(member)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(io.Discard, f) // checks the CRC
}

// pngPixels decodes a PNG fully (checking chunk CRCs and the zlib stream)
// and returns its pixel count.
func pngPixels(data []byte) (int, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	return img.Bounds().Dx() * img.Bounds().Dy(), nil
}

// chainModel is a deep graph: x 1x3x8x8 through n nodes alternating Relu
// and Add of a per-channel constant (-0.5, so values stay finite), then
// GlobalAveragePool and Flatten to 1x3. Small (about 35 bytes a node), it
// loads as slowly as the planner is in the number of nodes.
func chainModel(n int) maker {
	return func(t *testing.T, path string) {
		m := &onnxModel{opset: 13}
		m.ins = append(m.ins, onnxValueInfo("x", onnxFloat, 1, 3, 8, 8))
		m.inits = append(m.inits, onnxTensorFloats("c", []int64{1, 3, 1, 1}, []float32{-0.5, -0.5, -0.5}))
		prev := "x"
		for k := range n {
			out := fmt.Sprintf("t%d", k)
			if k%2 == 0 {
				m.nodes = append(m.nodes, onnxNode("Relu", out, []string{prev}, []string{out}))
			} else {
				m.nodes = append(m.nodes, onnxNode("Add", out, []string{prev, "c"}, []string{out}))
			}
			prev = out
		}
		m.nodes = append(m.nodes,
			onnxNode("GlobalAveragePool", "gap", []string{prev}, []string{"g"}),
			onnxNode("Flatten", "flat", []string{"g"}, []string{"y"}))
		m.outs = append(m.outs, onnxValueInfo("y", onnxFloat, 1, 3))
		writeGen(m.bytes())(t, path)
	}
}
