package preprocess

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"strings"
)

// MaxDecodeBytes is the memory budget, in bytes, for one input: what
// decoding it may allocate at its peak, and then what the decoded image
// and Apply's buffers hold together. Files cannot be trusted, so
// Decode and DecodeFile work out the peak from the header alone (the
// size and color model, and per format the layout that decides the
// decoder's own buffers, such as progressive JPEG coefficients or TIFF
// strips) and refuse a file over the budget before a pixel is decoded.
// Apply refuses a spec and image whose scratch buffers, together with the
// image, would exceed it. ReadNPY and ReadNPYFile hold a .npy array to it
// too.
//
// 256 MiB holds a 24-megapixel photo comfortably: a 6000x4000 baseline
// JPEG needs 36 MB at 4:2:0 and 72 MB at 4:4:4, a progressive one 180 MB
// at 4:2:0 (its coefficients take 4 bytes per sample), an 8-bit PNG 96 MB
// and a 16-bit one 192 MB; Apply adds a few MB. It refuses an 11000x11000
// 16-bit color PNG (968 MB decoded from a 1 MB file) and anything else of
// that kind. What does not fit (progressive 4:4:4 JPEGs above about 17
// megapixels, 16-bit color PNGs above 33, TIFFs stored as one compressed
// strip above about 9, lossless WebP above about 17) can be let in by
// raising it. The budget bounds live memory: Go's collector lets the heap
// grow to about twice what was live at its last cycle, so a program that
// decodes image after image should also set a soft memory limit
// (GOMEMLIMIT or debug.SetMemoryLimit) a little above this plus its model.
var MaxDecodeBytes int64 = 256 << 20

// MaxImageFileBytes bounds one encoded image held in memory: what
// DecodeFile reads from a path that is not a regular file (a pipe,
// /dev/stdin, a device, a socket: those cannot seek, and a device such as
// /dev/zero never ends; the data is counted against MaxDecodeBytes too),
// and, in package dataset, a .zip member (checked from the size the
// archive declares before anything is inflated) or one IDX record. 64 MiB
// is above any compressed photo (a 48-megapixel JPEG is about 25 MB) and
// far above a dataset image (ImageNet's JPEGs average 110 KB). Regular
// files are read in place and bounded by MaxDecodeBytes through their
// header.
var MaxImageFileBytes int64 = 64 << 20

// ErrOverBudget is wrapped by the errors of inputs refused because they
// need more memory than MaxDecodeBytes.
var ErrOverBudget = errors.New("over the memory budget")

// cost is the memory one decode or Apply needs at its peak, in parts.
type cost struct {
	kind  string // what the image is held as, e.g. "NRGBA64, 8 bytes/pixel"
	image int64  // bytes of the image
	parts [8]costPart
	np    int
}

// costPart is a buffer held beside the image.
type costPart struct {
	what string
	n    int64
}

// add records a part (a fixed array, so that Apply does not allocate).
func (c *cost) add(what string, n int64) {
	if n <= 0 {
		return
	}
	if c.np == len(c.parts) {
		c.parts[c.np-1].what += " and " + what
		c.parts[c.np-1].n = addSat(c.parts[c.np-1].n, n)
		return
	}
	c.parts[c.np] = costPart{what, n}
	c.np++
}

func (c *cost) total() int64 {
	t := c.image
	for _, p := range c.parts[:c.np] {
		t = addSat(t, p.n)
	}
	return t
}

// check returns nil if c fits in budget, else an error that says what
// needs how much, in which parts, and the budget, on one line.
// what is called only for the error.
func (c *cost) check(budget int64, what func() string) error {
	t := c.total()
	if t <= budget {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%.1f MiB", float64(t)/(1<<20))
	if c.np > 0 {
		fmt.Fprintf(&b, "; image %d", c.image)
		for _, p := range c.parts[:c.np] {
			fmt.Fprintf(&b, " + %s %d", p.what, p.n)
		}
	}
	return fmt.Errorf("preprocess: %s needs %d bytes (%s), %w: MaxDecodeBytes is %s", what(), t, b.String(), ErrOverBudget, fmtBytes(budget))
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
}

// mulSat multiplies non-negative sizes, saturating at MaxInt64 (a header
// may declare anything).
func mulSat(v ...int64) int64 {
	r := int64(1)
	for _, x := range v {
		if x <= 0 {
			return 0
		}
		if r > math.MaxInt64/x {
			return math.MaxInt64
		}
		r *= x
	}
	return r
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// modelBytes is how an image of color model m is held: a name and bytes
// per pixel. YCbCr is counted as 4:4:4 (3 bytes); the formats that know
// their subsampling (JPEG, WebP) count it themselves. An unknown model
// is assumed to be the largest, 8 bytes per pixel.
func modelBytes(m color.Model) (string, int64) {
	if _, ok := m.(color.Palette); ok { // a slice: not comparable with ==
		return "Paletted", 1
	}
	switch m {
	case color.GrayModel:
		return "Gray", 1
	case color.Gray16Model:
		return "Gray16", 2
	case color.AlphaModel:
		return "Alpha", 1
	case color.Alpha16Model:
		return "Alpha16", 2
	case color.RGBAModel:
		return "RGBA", 4
	case color.NRGBAModel:
		return "NRGBA", 4
	case color.CMYKModel:
		return "CMYK", 4
	case color.RGBA64Model:
		return "RGBA64", 8
	case color.NRGBA64Model:
		return "NRGBA64", 8
	case color.YCbCrModel:
		return "YCbCr", 3
	case color.NYCbCrAModel:
		return "NYCbCrA", 4
	}
	return "an unknown color model", 8
}

// imageBytes is the memory img holds: its pixel slices for the types the
// decoders return, else its size at modelBytes.
func imageBytes(img image.Image) int64 {
	switch m := img.(type) {
	case *image.Gray:
		return int64(len(m.Pix))
	case *image.Gray16:
		return int64(len(m.Pix))
	case *image.RGBA:
		return int64(len(m.Pix))
	case *image.NRGBA:
		return int64(len(m.Pix))
	case *image.RGBA64:
		return int64(len(m.Pix))
	case *image.NRGBA64:
		return int64(len(m.Pix))
	case *image.CMYK:
		return int64(len(m.Pix))
	case *image.Paletted:
		return int64(len(m.Pix))
	case *image.YCbCr:
		return int64(len(m.Y) + len(m.Cb) + len(m.Cr))
	case *image.NYCbCrA:
		return int64(len(m.Y) + len(m.Cb) + len(m.Cr) + len(m.A))
	}
	b := img.Bounds()
	_, bpp := modelBytes(img.ColorModel())
	return mulSat(int64(b.Dx()), int64(b.Dy()), bpp)
}

// decodeCost works out, from the header, the peak memory of decoding the
// image that r (of size bytes, positioned anywhere) holds, for the
// decoders registered in decode.go. It reads r; the caller seeks back. It
// fails only when the header shows the file cannot decode (a WebP chunk
// running past the end of the file). When a layout cannot be read it
// assumes the worst the decoder allows.
func decodeCost(r io.ReadSeeker, size int64, format string, cfg image.Config) (cost, error) {
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := mulSat(w, h)
	var c cost
	name, bpp := modelBytes(cfg.ColorModel)
	c.kind, c.image = fmt.Sprintf("%s, %d bytes/pixel", name, bpp), mulSat(px, bpp)
	if bpp == 1 {
		c.kind = name + ", 1 byte/pixel"
	}
	seek := func() bool {
		_, err := r.Seek(0, io.SeekStart)
		return err == nil
	}
	switch format {
	case "png":
		c = pngCost(r, seek(), cfg, c)
	case "jpeg":
		c = jpegCost(r, seek(), cfg)
	case "gif":
		// image/gif decodes the first frame only, within the logical
		// screen, and de-interlaces into a second copy.
		c.add("de-interlacing copy", px)
	case "tiff":
		c = tiffCost(r, size, cfg, c)
	case "webp":
		if !seek() {
			return c, errors.New("cannot seek")
		}
		c, err := webpCost(r, size, cfg)
		c.add("decoder state", decoderState)
		return c, err
	case "bmp":
		// The image and one row buffer. A 32-bit BMP with an alpha mask
		// decodes to NRGBA although DecodeConfig says RGBA.
		if bpp == 4 {
			c.kind = "RGBA or NRGBA, 4 bytes/pixel"
		}
	}
	// Other formats: the image at modelBytes.
	c.add("decoder state", decoderState)
	return c, nil
}

// decoderState is what a decoder allocates whatever the image size
// (Huffman and quantization tables, inflate window, bufio buffers),
// measured at 40 to 110 KiB for the formats here.
const decoderState = 128 << 10

// ---- PNG

// pngCost: image/png returns NRGBA (NRGBA64) for Gray (Gray16) with a tRNS
// chunk, which DecodeConfig does not report (it stops at IHDR), and an
// interlaced image is decoded pass by pass into seven more images.
func pngCost(r io.Reader, ok bool, cfg image.Config, c cost) cost {
	interlaced, trns := true, true // the worst, if the chunks cannot be read
	if ok {
		interlaced, trns, ok = pngChunks(bufio.NewReader(r))
		if !ok {
			interlaced, trns = true, true
		}
	}
	px := mulSat(int64(cfg.Width), int64(cfg.Height))
	if trns && cfg.ColorModel == color.GrayModel {
		c.kind, c.image = "NRGBA (gray with tRNS), 4 bytes/pixel", mulSat(px, 4)
	}
	if trns && cfg.ColorModel == color.Gray16Model {
		c.kind, c.image = "NRGBA64 (gray with tRNS), 8 bytes/pixel", mulSat(px, 8)
	}
	if interlaced {
		c.add("Adam7 pass images", c.image)
	}
	c.add("row buffers", mulSat(2, addSat(mulSat(int64(cfg.Width), 8), 1)))
	return c
}

// pngChunks reads IHDR's interlace method and looks for tRNS before the
// first IDAT.
func pngChunks(br *bufio.Reader) (interlaced, trns, ok bool) {
	var hdr [8 + 8 + 13]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || string(hdr[12:16]) != "IHDR" {
		return false, false, false
	}
	interlaced = hdr[28] != 0
	if _, err := br.Discard(4); err != nil { // IHDR's CRC
		return false, false, false
	}
	for {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			return false, false, false
		}
		switch string(ch[4:]) {
		case "IDAT":
			return interlaced, trns, true
		case "tRNS":
			trns = true
		}
		n := int64(binary.BigEndian.Uint32(ch[:4])) + 4
		if n > math.MaxInt32 {
			return false, false, false
		}
		if _, err := br.Discard(int(n)); err != nil {
			return false, false, false
		}
	}
}

// ---- JPEG

// jpegFrame is what the start-of-frame segment says about the layout.
type jpegFrame struct {
	progressive bool
	n           int    // components
	h, v        [4]int // sampling factors
}

// jpegCost: image/jpeg allocates planes padded to whole MCUs (Gray, or
// YCbCr at the file's subsampling, plus a K plane for 4 components), and
// for a progressive file a coefficient block (64 int32) per 8x8 block of
// every component until the end. RGB and CMYK/YCbCrK files are converted
// into a 4 byte/pixel image while the planes are alive.
func jpegCost(r io.Reader, ok bool, cfg image.Config) cost {
	var f jpegFrame
	if ok {
		f, ok = jpegSOF(bufio.NewReader(r))
	}
	if !ok { // the worst: 4:4:4, progressive
		f = jpegFrame{progressive: true, n: 3, h: [4]int{1, 1, 1, 1}, v: [4]int{1, 1, 1, 1}}
		switch cfg.ColorModel {
		case color.GrayModel:
			f.n = 1
		case color.CMYKModel:
			f.n = 4
		}
	}
	if f.n == 1 { // image/jpeg: a single component is never subsampled
		f.h[0], f.v[0] = 1, 1
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	h0, v0 := int64(f.h[0]), int64(f.v[0])
	mxx, myy := ceilDiv(w, 8*h0), ceilDiv(h, 8*v0)
	luma := mulSat(8*h0*mxx, 8*v0*myy)
	var c cost
	planes, sub := luma, ""
	if f.n >= 3 {
		hr, vr := h0/int64(max(f.h[1], 1)), v0/int64(max(f.v[1], 1))
		sub = map[int64]string{0x11: " 4:4:4", 0x12: " 4:4:0", 0x21: " 4:2:2", 0x22: " 4:2:0", 0x41: " 4:1:1", 0x42: " 4:1:0"}[hr<<4|vr]
		planes = addSat(planes, 2*ceilDiv(luma, max(hr*vr, 1)))
	}
	if f.n == 4 {
		planes = addSat(planes, mulSat(8*int64(f.h[3])*mxx, 8*int64(f.v[3])*myy))
	}
	switch {
	case f.n == 1:
		c.kind, c.image = "Gray, 1 byte/pixel", planes
	case f.n == 3 && cfg.ColorModel != color.RGBAModel:
		c.kind, c.image = fmt.Sprintf("YCbCr%s, %.2g bytes/pixel", sub, float64(planes)/float64(mulSat(w, h))), planes
	default: // RGB, CMYK, YCbCrK
		name, _ := modelBytes(cfg.ColorModel)
		c.kind, c.image = name+", 4 bytes/pixel", mulSat(w, h, 4)
		c.add("component planes", planes)
	}
	if f.progressive {
		var blocks int64
		for i := 0; i < f.n; i++ {
			blocks = addSat(blocks, mulSat(mxx, myy, int64(f.h[i]), int64(f.v[i])))
		}
		c.add("progressive coefficients", mulSat(blocks, 64*4))
	}
	return c
}

// jpegSOF walks the markers as image/jpeg does up to the first SOF0-2.
func jpegSOF(br *bufio.Reader) (jpegFrame, bool) {
	var f jpegFrame
	var b [2]byte
	if _, err := io.ReadFull(br, b[:]); err != nil || b != [2]byte{0xff, 0xd8} {
		return f, false
	}
	for {
		c, err := br.ReadByte()
		if err != nil {
			return f, false
		}
		if c != 0xff { // extraneous data, skipped as image/jpeg does
			continue
		}
		m, err := br.ReadByte()
		for err == nil && m == 0xff {
			m, err = br.ReadByte()
		}
		if err != nil || m == 0xd9 {
			return f, false
		}
		if m == 0 || 0xd0 <= m && m <= 0xd7 {
			continue
		}
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, false
		}
		n := int(b[0])<<8 | int(b[1]) - 2
		if n < 0 {
			return f, false
		}
		if m < 0xc0 || m > 0xc2 {
			if _, err := br.Discard(n); err != nil {
				return f, false
			}
			continue
		}
		var s [6 + 3*4]byte
		if n < 6 || n > len(s) {
			return f, false
		}
		if _, err := io.ReadFull(br, s[:n]); err != nil {
			return f, false
		}
		f.progressive = m == 0xc2
		f.n = int(s[5])
		if f.n != 1 && f.n != 3 && f.n != 4 || n != 6+3*f.n {
			return f, false
		}
		for i := 0; i < f.n; i++ {
			hv := s[7+3*i]
			f.h[i], f.v[i] = max(int(hv>>4), 1), max(int(hv&15), 1)
		}
		return f, true
	}
}

// ---- TIFF

// tiffCost: x/image/tiff reads each strip or tile into one buffer: for a
// compressed one, whatever the data inflates to, up to 8 bytes per pixel
// of the strip whatever the image's depth, in a bytes.Buffer that doubles
// (up to 3 times that at the moment it grows); for an uncompressed one
// what the file holds, read in 10 MiB chunks. It also holds the strip
// offsets and byte counts (8+4 bytes each, twice).
func tiffCost(r io.ReadSeeker, size int64, cfg image.Config, c cost) cost {
	w, h := int64(cfg.Width), int64(cfg.Height)
	bw, bh, compressed := w, h, true // the worst: one compressed strip
	if t, ok := tiffIFD(r); ok {
		compressed = t.compression != 0 && t.compression != 1
		switch {
		case t.tileW > 0 && t.tileH > 0:
			bw, bh = t.tileW, t.tileH
		case t.rowsPerStrip > 0 && t.rowsPerStrip < h:
			bh = t.rowsPerStrip
		}
	}
	strip := mulSat(bw, bh, 8)
	if !compressed {
		// Read from the file: at most what it holds, but a strip under
		// 10 MiB is allocated at its declared size before it is read.
		strip = min(strip, max(size, 10<<20))
	}
	what := "strip buffer"
	if bw != w || bh > h {
		what = "tile buffer"
	}
	c.add(fmt.Sprintf("%s (%dx%d, %s)", what, bw, bh, map[bool]string{true: "compressed", false: "uncompressed"}[compressed]), mulSat(strip, 3))
	if strip >= 10<<20 {
		c.add("read chunk", 10<<20)
	}
	c.add("strip offsets", mulSat(ceilDiv(w, bw), ceilDiv(h, bh), 24))
	return c
}

type tiffLayout struct {
	compression, rowsPerStrip, tileW, tileH int64
}

// tiffIFD reads the few tags of the first IFD that decide the strip size.
func tiffIFD(r io.ReadSeeker) (tiffLayout, bool) {
	var t tiffLayout
	var hdr [8]byte
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return t, false
	}
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return t, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if string(hdr[:2]) == "MM" {
		bo = binary.BigEndian
	}
	if _, err := r.Seek(int64(bo.Uint32(hdr[4:])), io.SeekStart); err != nil {
		return t, false
	}
	br := bufio.NewReader(r)
	var nb [2]byte
	if _, err := io.ReadFull(br, nb[:]); err != nil {
		return t, false
	}
	for i := 0; i < int(bo.Uint16(nb[:])); i++ {
		var e [12]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return t, false
		}
		var v int64
		switch bo.Uint16(e[2:]) {
		case 3: // SHORT
			v = int64(bo.Uint16(e[8:]))
		case 4: // LONG
			v = int64(bo.Uint32(e[8:]))
		default:
			continue
		}
		switch bo.Uint16(e[:2]) {
		case 259:
			t.compression = v
		case 278:
			t.rowsPerStrip = v
		case 322:
			t.tileW = v
		case 323:
			t.tileH = v
		}
	}
	return t, true
}

// ---- WebP

// webpCost walks the RIFF chunks up to the image chunk as x/image/webp
// does. DecodeConfig's color model is not enough: a VP8X header reports
// YCbCr even when a lossless (NRGBA) chunk follows. A chunk that runs past
// the end of the file is an error here, because the VP8 decoder allocates
// its partitions at the size the chunk claims, before reading them.
//
//   - VP8 (lossy): YCbCr 4:2:0 padded to 16x16 macroblocks, the
//     partitions (as big as the chunk) and per-macroblock state;
//   - ALPH: an alpha plane of 1 byte/pixel, decoded (if compressed) from a
//     lossless image first;
//   - VP8L (lossless): NRGBA, plus up to 3 bytes/pixel for the packed
//     pixels and transform images and the Huffman tables: up to 2600 groups
//     (x/image's limit, bounded by the 4x4 tiles) of 5 trees, about 56 KiB
//     each with the largest color cache.
func webpCost(r io.Reader, size int64, cfg image.Config) (cost, error) {
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := mulSat(w, h)
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return cost{}, err
	}
	var c cost
	var alpha, alphaLossless bool
	for pos := int64(12); ; {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			// No image chunk: the decoder will fail. Count the largest.
			c.kind, c.image = "NRGBA, 4 bytes/pixel", mulSat(px, 4)
			vp8lCost(&c, w, h)
			return c, nil
		}
		id, n := string(ch[:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		if end := pos + 8 + n; end > size {
			return c, fmt.Errorf("%w: chunk %q of %d bytes at offset %d runs past the end of the %d-byte file", io.ErrUnexpectedEOF, id, n, pos, size)
		}
		switch id {
		case "VP8 ":
			mbw, mbh := ceilDiv(w, 16), ceilDiv(h, 16)
			c.kind, c.image = "YCbCr 4:2:0, 1.5 bytes/pixel", mulSat(mbw, mbh, 16*16*3/2)
			if alpha {
				c.kind, c.image = "NYCbCrA, 2.5 bytes/pixel", addSat(c.image, px)
				if alphaLossless {
					var a cost
					a.image = mulSat(px, 4)
					vp8lCost(&a, w, h)
					c.add("lossless alpha image", a.total())
				}
			}
			c.add("VP8 partitions", n)
			c.add("macroblock state", mulSat(mbw, addSat(mbh, 16), 8))
			return c, nil
		case "VP8L":
			c.kind, c.image = "NRGBA, 4 bytes/pixel", mulSat(px, 4)
			vp8lCost(&c, w, h)
			return c, nil
		case "ALPH":
			alpha = true
			b, err := br.Peek(1)
			alphaLossless = err != nil || b[0]&3 == 1
		}
		skip := n + n&1
		if _, err := io.CopyN(io.Discard, br, skip); err != nil {
			return c, err
		}
		pos += 8 + skip
	}
}

// vp8lCost adds what x/image/vp8l allocates beside its NRGBA pixels.
func vp8lCost(c *cost, w, h int64) {
	c.add("lossless transforms", mulSat(w, h, 3))
	tiles := mulSat(ceilDiv(w, 4), ceilDiv(h, 4))
	c.add("lossless Huffman tables", mulSat(min(tiles, 2600), 56<<10))
}
