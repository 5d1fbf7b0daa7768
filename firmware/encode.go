package firmware

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/edge-resnet/edge-resnet/graph"
)

// Encode returns the model image of m. The graph must be valid (its input
// node's Shape set); m is not modified.
func Encode(m *Model) ([]byte, error) {
	p, err := newPlan(m)
	if err != nil {
		return nil, err
	}
	if p.size() > math.MaxInt {
		return nil, fmt.Errorf("firmware: encode: image of %d bytes does not fit in memory on this platform; use Write", p.size())
	}
	var buf bytes.Buffer
	buf.Grow(int(p.size()))
	if err := p.writeTo(&buf); err != nil {
		return nil, fmt.Errorf("firmware: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Write writes the model image of m to w. It streams: weights are read
// twice (once for the CRC, which sits in the header, once to write) and
// never copied whole, so converting a large model needs little memory.
// m must not change during the call.
func Write(w io.Writer, m *Model) error {
	p, err := newPlan(m)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := p.writeTo(bw); err != nil {
		return fmt.Errorf("firmware: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("firmware: write: %w", err)
	}
	return nil
}

// WriteFile writes the model image of m to path through a temporary file in
// the same directory that is synced and then renamed over path, so readers
// see the old file or the new one, never a part (also across power loss,
// which matters on boards that boot from SD cards). Processes that have the
// old file mapped keep their mapping. Temporaries that killed writes of
// path left behind are removed (see staleAfter).
func WriteFile(path string, m *Model) (err error) {
	p, err := newPlan(m)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	tmp, err := createTemp(path)
	if err != nil {
		return fmt.Errorf("firmware: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("firmware: write %s: %w", path, err)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = p.writeTo(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// plan is an image laid out but not yet written.
type plan struct {
	minor    uint16 // the lowest format minor that describes the model
	manifest []byte
	tensors  []planTensor // in blob order
	blobOff  int64
	blobLen  int64
}

type planTensor struct {
	data   []float32 // the values: float32
	i8     []int8    // or int8
	offset int64     // from the blob start
}

func (p *plan) size() int64 { return p.blobOff + p.blobLen }

// writeTo writes header and payload; the payload goes out twice, first into
// the CRC. Emitting both from one function keeps them identical.
func (p *plan) writeTo(w io.Writer) error {
	crc := crc32.New(castagnoli)
	if err := p.writePayload(crc); err != nil {
		return err
	}
	var hdr [headerSize]byte
	putHeader(hdr[:], p.minor, int64(len(p.manifest)), p.blobOff, p.blobLen, crc.Sum32())
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	return p.writePayload(w)
}

var zeros [blobAlign]byte

func (p *plan) writePayload(w io.Writer) error {
	if _, err := w.Write(p.manifest); err != nil {
		return err
	}
	// Zero padding up to the aligned blob start.
	if _, err := w.Write(zeros[:p.blobOff-headerSize-int64(len(p.manifest))]); err != nil {
		return err
	}
	var pos int64
	var scratch []byte
	for _, t := range p.tensors {
		if _, err := w.Write(zeros[:t.offset-pos]); err != nil {
			return err
		}
		if t.i8 != nil {
			if _, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.i8))), len(t.i8))); err != nil {
				return err
			}
			pos = t.offset + int64(len(t.i8))
			continue
		}
		var err error
		if scratch, err = writeF32(w, t.data, scratch); err != nil {
			return err
		}
		pos = t.offset + 4*int64(len(t.data))
	}
	return nil
}

// writeF32 writes v little-endian: straight from memory on little-endian
// hosts, through a bounded scratch buffer elsewhere.
func writeF32(w io.Writer, v []float32, scratch []byte) ([]byte, error) {
	if hostLittleEndian {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)))
		return scratch, err
	}
	if scratch == nil {
		scratch = make([]byte, 64<<10)
	}
	for len(v) > 0 {
		n := min(len(v), len(scratch)/4)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint32(scratch[4*i:], math.Float32bits(x))
		}
		if _, err := w.Write(scratch[:4*n]); err != nil {
			return scratch, err
		}
		v = v[n:]
	}
	return scratch, nil
}

// newPlan validates m, builds its manifest and lays out the blob.
func newPlan(m *Model) (*plan, error) {
	g, err := checkedCopy(m)
	if err != nil {
		return nil, err
	}
	p := &plan{}
	e := &encoder{plan: p, names: map[string]bool{}, seen: map[sliceKey]string{}}
	var requires []string
	p.minor, requires = formatNeeds(g, &m.Meta)
	man := &manifest{
		FormatVersion: MajorVersion,
		FormatMinor:   int64(p.minor),
		Requires:      requires,
		Meta:          encodeMeta(&m.Meta),
		Graph:         mGraph{Output: int64(g.Output), Batch: int64(max(g.Batch, 0)), Extra: i64s(g.Extra...), OutputNames: g.OutputNames},
	}
	for i, n := range g.Nodes {
		man.Graph.Nodes = append(man.Graph.Nodes, e.node(i, n))
	}
	man.Tensors = e.tensors

	text, err := marshalJSON(man)
	if err != nil {
		return nil, fmt.Errorf("firmware: encode: manifest: %w", err)
	}
	p.manifest = text
	if len(p.manifest) > maxManifest {
		return nil, fmt.Errorf("firmware: encode: manifest of %d bytes exceeds the %d limit", len(p.manifest), maxManifest)
	}
	p.blobOff = alignUp(headerSize + int64(len(p.manifest)))

	// Read the manifest back the way Decode will (weights replaced by
	// scratch), so that Encode never writes an image that Decode rejects,
	// e.g. an attribute beyond the int32 range every reader enforces.
	if _, err := build(man, nil, p.blobLen, modeVerify); err != nil {
		return nil, fmt.Errorf("firmware: encode: the image would not load: %v", err)
	}
	return p, nil
}

// checkedCopy returns m's graph with its shapes inferred and its strings
// and metadata checked. InferShapes writes Node.Shape, so it runs on
// shallow copies of the nodes: encoding never modifies the caller's graph.
func checkedCopy(m *Model) (*graph.Graph, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("firmware: encode: no graph")
	}
	g := &graph.Graph{Output: m.Graph.Output, Batch: m.Graph.Batch, Extra: m.Graph.Extra, OutputNames: m.Graph.OutputNames,
		Nodes: make([]*graph.Node, len(m.Graph.Nodes))}
	for i, n := range m.Graph.Nodes {
		if n != nil {
			c := *n
			g.Nodes[i] = &c
		}
	}
	if err := g.InferShapes(); err != nil {
		return nil, fmt.Errorf("firmware: encode: %w", err)
	}
	for i, n := range g.Nodes {
		// The format has no fused Clip: images store the graph of
		// graph.Fuse, with its Clip ops.
		if n.Clamp != nil {
			return nil, fmt.Errorf("firmware: encode: %w", g.Errorf(i, "a fused Clip (from graph.FuseWith) cannot be stored; store the graph of graph.Fuse"))
		}
	}
	if err := checkStrings(m, g); err != nil {
		return nil, fmt.Errorf("firmware: encode: %w", err)
	}
	if err := checkMeta(&m.Meta, g); err != nil {
		return nil, fmt.Errorf("firmware: encode: %w", err)
	}
	return g, nil
}

// formatNeeds is the lowest format minor that describes g and the
// features a reader must know (sorted). Images without int8 content stay
// format 1.0, byte for byte what earlier writers produced; int8 content
// needs 1.1 (docs/FORMAT.md §4), batches, input layouts, extra outputs,
// features and newer ops 1.2.
func formatNeeds(g *graph.Graph, meta *Meta) (minor uint16, requires []string) {
	need := func(f string) {
		if !slices.Contains(requires, f) {
			requires = append(requires, f)
		}
	}
	if g.Batch > 1 || meta.InputLayout != "" || len(g.Extra) > 0 {
		minor = 2
	}
	for _, n := range g.Nodes {
		quant, only := int8Content(n)
		if quant {
			minor = max(minor, 1)
		}
		if only {
			need(featureInt8)
		}
		if f := n.Feature(); f != "" {
			need(f)
			minor = 2
		}
		if n.Op > graph.OpSoftmax {
			minor = 2 // ops older readers do not know (they say so)
		}
	}
	slices.Sort(requires)
	return minor, requires
}

// int8Content reports whether n carries int8 data (quant) and whether it
// has int8 weights without float ones (only).
func int8Content(n *graph.Node) (quant, only bool) {
	w, q := n.Weights()
	return n.Quant != nil || q != nil, q != nil && w == nil
}

type sliceKey struct {
	p unsafe.Pointer
	n int
}

type encoder struct {
	plan    *plan
	tensors []mTensor
	names   map[string]bool
	seen    map[sliceKey]string // slices shared between nodes are stored once
}

// tensor adds v to the blob (unless the same slice is already there) and
// returns its name.
func (e *encoder) tensor(i int, n *graph.Node, suffix string, v []float32, shape ...int) string {
	return e.add(i, n, suffix, planTensor{data: v}, shape)
}

// tensorI8 is tensor for int8 values.
func (e *encoder) tensorI8(i int, n *graph.Node, suffix string, v []int8, shape ...int) string {
	return e.add(i, n, suffix, planTensor{i8: v}, shape)
}

func (e *encoder) add(i int, n *graph.Node, suffix string, t planTensor, shape []int) string {
	dtype, size, key := "f32", int64(4), sliceKey{unsafe.Pointer(unsafe.SliceData(t.data)), len(t.data)}
	if t.data == nil {
		dtype, size, key = "i8", 1, sliceKey{unsafe.Pointer(unsafe.SliceData(t.i8)), -len(t.i8)} // negative: never equal to a float key
	}
	if name, ok := e.seen[key]; ok {
		return name
	}
	base := n.Name
	if base == "" {
		base = "node" + strconv.Itoa(i)
	}
	name := base + "." + suffix
	for k := 2; e.names[name]; k++ {
		name = fmt.Sprintf("%s.%s#%d", base, suffix, k)
	}
	e.names[name] = true
	e.seen[key] = name

	p := e.plan
	off := alignUp(p.blobLen)
	t.offset = off
	p.tensors = append(p.tensors, t)
	nbytes := size * int64(max(len(t.data), len(t.i8)))
	p.blobLen = off + nbytes
	s := make([]int64, len(shape))
	for k, d := range shape {
		s[k] = int64(d)
	}
	e.tensors = append(e.tensors, mTensor{Name: name, DType: dtype, Shape: s, Offset: off, NBytes: nbytes})
	return name
}

func i64s(v ...int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// node converts one node of a graph that passed InferShapes.
func (e *encoder) node(i int, n *graph.Node) mNode {
	mn := mNode{
		Name:  n.Name,
		Op:    n.Op.String(),
		Shape: i64s(n.Shape.H, n.Shape.W, n.Shape.C),
		Relu:  n.Relu,
	}
	if len(n.Inputs) > 0 {
		mn.Inputs = i64s(n.Inputs...)
	}
	if q := n.Quant; q != nil {
		mn.Quant = &mQuant{Scale: jf32(q.Scale), Zero: int64(q.Zero)}
	}
	if key := graph.AttrKey(n.Op); key != "" {
		w := &attrWriter{e: e, i: i, n: n, obj: &wobject{}}
		n.EncodeAttrs(w)
		mn.Attrs = map[string]jsonValue{key: w.obj}
	}
	return mn
}

func encodeMeta(m *Meta) mMeta {
	out := mMeta{
		Name:   m.Name,
		Arch:   m.Arch,
		Output: m.Output,
		Layout: m.InputLayout,
		Preprocess: mPreprocess{
			Resize:   int64(m.Preprocess.Resize),
			Height:   int64(m.Preprocess.Height),
			Width:    int64(m.Preprocess.Width),
			Channels: int64(m.Preprocess.Channels),
			BGR:      m.Preprocess.BGR,
			Scale:    jf32(m.Preprocess.Scale),
		},
	}
	if len(m.Labels) > 0 {
		out.Labels = m.Labels
	}
	if len(m.Provenance) > 0 {
		out.Provenance = m.Provenance
	}
	for _, v := range m.Preprocess.Mean {
		out.Preprocess.Mean = append(out.Preprocess.Mean, jf32(v))
	}
	for _, v := range m.Preprocess.Std {
		out.Preprocess.Std = append(out.Preprocess.Std, jf32(v))
	}
	return out
}

// checkStrings rejects text that JSON cannot carry unchanged: encoding/json
// would silently replace invalid UTF-8.
func checkStrings(m *Model, g *graph.Graph) error {
	bad := func(what, s string) error {
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s %q is not valid UTF-8", what, s)
		}
		return nil
	}
	errs := []error{bad("name", m.Meta.Name), bad("arch", m.Meta.Arch), bad("output", m.Meta.Output)}
	for i, l := range m.Meta.Labels {
		errs = append(errs, bad("label "+strconv.Itoa(i), l))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Meta.Provenance)) {
		v := m.Meta.Provenance[k]
		errs = append(errs, bad("provenance key", k), bad("provenance "+strconv.Quote(k), v))
	}
	for i, n := range g.Nodes {
		errs = append(errs, bad("node "+strconv.Itoa(i)+" name", n.Name))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
