package firmware

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// hostLittleEndian decides whether tensor bytes can be used in place. It is
// a variable so that tests can exercise the big-endian path.
var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Decode checks a model image completely and returns its model. Where the
// host is little-endian and a tensor is 4-byte aligned in memory (always so
// for mmapped files and large heap buffers) the weights alias data instead
// of being copied; int8 weights always do. data must then stay unchanged for
// as long as the model is used, and the weights must be treated as
// read-only.
//
// The checks: header, CRC32C of manifest and blob, JSON, versions and
// required features, the tensor table (dtypes, sizes, alignment, bounds, no
// overlaps), every tensor reference (existence, dtype, element count), int8
// quantization (scales finite and positive, zero points in [0, 255], no
// -128 weights), shape inference of the graph and the metadata against the
// graph. Errors wrap ErrCorrupt or
// ErrVersion; no input makes Decode panic.
func Decode(data []byte) (*Model, error) {
	m, err := decode(data, modeDecode)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	return m, nil
}

// Verify runs every check of Decode without copying weights: it answers
// "would this image load?", e.g. before an update replaces the model on a
// device.
func Verify(data []byte) error {
	if _, err := decode(data, modeVerify); err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	return nil
}

type buildMode uint8

const (
	modeDecode buildMode = iota // weights alias the blob or are copied
	modeVerify                  // weights alias the blob or are scratch of the right length
)

func decode(data []byte, mode buildMode) (*Model, error) {
	h, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	man, err := parseManifest(data[h.manifestOff : h.manifestOff+h.manifestLen])
	if err != nil {
		return nil, err
	}
	if man.FormatVersion != int64(h.major) || man.FormatMinor != int64(h.minor) {
		return nil, corruptf("manifest says format %d.%d, header says %d.%d", man.FormatVersion, man.FormatMinor, h.major, h.minor)
	}
	return build(man, data[h.blobOff:h.blobOff+h.blobLen], int64(h.blobLen), mode)
}

var dtypeSize = map[string]int64{"f32": 4, "i8": 1, "u8": 1, "i32": 4}

// satMul multiplies non-negative numbers, saturating far above any real
// size so that hostile shapes cannot overflow.
func satMul(a, b int64) int64 {
	const limit = 1 << 62
	if a < 0 || b < 0 {
		return -1
	}
	if b != 0 && a > limit/b {
		return limit
	}
	return a * b
}

type builder struct {
	blob     []byte // nil when Encode checks its own manifest
	mode     buildMode
	tensors  map[string]*mTensor
	views    map[string][]float32 // one slice per tensor, also when several nodes share it
	i8views  map[string][]int8
	scratch  []float32
	i8trash  []int8
	requires []string
}

// build checks a decoded manifest against the blob and constructs the
// model.
func build(man *manifest, blob []byte, blobLen int64, mode buildMode) (*Model, error) {
	b := &builder{blob: blob, mode: mode, tensors: map[string]*mTensor{}, views: map[string][]float32{},
		i8views: map[string][]int8{}, requires: man.Requires}
	if err := b.tensorTable(man.Tensors, blobLen); err != nil {
		return nil, err
	}
	if len(man.Graph.Nodes) == 0 {
		return nil, corruptf("graph has no nodes")
	}
	g := &graph.Graph{}
	out, ok := toInt(man.Graph.Output)
	if !ok {
		return nil, corruptf("graph output %d is out of range", man.Graph.Output)
	}
	g.Output = out
	if man.Graph.Batch < 0 || man.Graph.Batch > graph.MaxBatch {
		return nil, corruptf("graph batch %d is outside [0, %d]", man.Graph.Batch, graph.MaxBatch)
	}
	g.Batch = int(man.Graph.Batch)
	if len(man.Graph.Extra) >= graph.MaxOutputs {
		return nil, corruptf("graph has %d outputs, at most %d", 1+len(man.Graph.Extra), graph.MaxOutputs)
	}
	for _, o := range man.Graph.Extra {
		k, ok := toInt(o)
		if !ok {
			return nil, corruptf("graph output %d is out of range", o)
		}
		g.Extra = append(g.Extra, k)
	}
	g.OutputNames = man.Graph.OutputNames
	for i := range man.Graph.Nodes {
		n, err := b.node(i, &man.Graph.Nodes[i])
		if err != nil {
			return nil, err
		}
		g.Nodes = append(g.Nodes, n)
	}
	if err := g.InferShapes(); err != nil {
		return nil, &formatError{msg: err.Error(), kind: ErrCorrupt, also: err}
	}
	for i, mn := range man.Graph.Nodes {
		if len(mn.Shape) == 0 {
			continue
		}
		s := g.Nodes[i].Shape
		if !slices.Equal(mn.Shape, i64s(s.H, s.W, s.C)) {
			return nil, corruptf("node %d %q: manifest says shape %v, the graph gives %v", i, mn.Name, mn.Shape, s)
		}
	}
	meta, err := decodeMeta(&man.Meta)
	if err != nil {
		return nil, err
	}
	if err := checkMeta(&meta, g); err != nil {
		return nil, corruptf("%v", err)
	}
	return &Model{Graph: g, Meta: meta}, nil
}

func (b *builder) tensorTable(ts []mTensor, blobLen int64) error {
	for i := range ts {
		t := &ts[i]
		if t.Name == "" {
			return corruptf("tensors[%d] has no name", i)
		}
		if b.tensors[t.Name] != nil {
			return corruptf("tensor %q is listed twice", t.Name)
		}
		b.tensors[t.Name] = t
		n := int64(1)
		for k, d := range t.Shape {
			if d < 1 {
				return corruptf("tensor %q: dimension %d is %d", t.Name, k, d)
			}
			n = satMul(n, d)
		}
		// A dtype from a newer writer is fine as long as nothing here uses
		// the tensor (lookup refuses it); its bytes are still checked below.
		if size, ok := dtypeSize[t.DType]; ok && t.NBytes != satMul(n, size) {
			return corruptf("tensor %q: nbytes is %d, but %s%v needs %d", t.Name, t.NBytes, t.DType, t.Shape, satMul(n, size))
		}
		if t.NBytes < 0 {
			return corruptf("tensor %q: nbytes is %d", t.Name, t.NBytes)
		}
		if t.Offset < 0 || t.Offset%blobAlign != 0 {
			return corruptf("tensor %q: offset %d is not a multiple of %d", t.Name, t.Offset, blobAlign)
		}
		if t.NBytes > blobLen || t.Offset > blobLen-t.NBytes {
			return corruptf("tensor %q: bytes [%d, %d) lie outside the %d-byte blob", t.Name, t.Offset, t.Offset+t.NBytes, blobLen)
		}
	}
	order := make([]*mTensor, len(ts))
	for i := range ts {
		order[i] = &ts[i]
	}
	slices.SortFunc(order, func(x, y *mTensor) int { return cmp.Compare(x.Offset, y.Offset) })
	for i := 1; i < len(order); i++ {
		if p, t := order[i-1], order[i]; p.Offset+p.NBytes > t.Offset {
			return corruptf("tensors %q [%d, %d) and %q [%d, %d) overlap", p.Name, p.Offset, p.Offset+p.NBytes, t.Name, t.Offset, t.Offset+t.NBytes)
		}
	}
	return nil
}

// toInt converts a manifest integer for the graph. Every platform accepts
// the int32 range only, so an image loads on ARMv7 exactly when it loads on
// arm64.
func toInt(v int64) (int, bool) {
	return int(v), v >= math.MinInt32 && v <= math.MaxInt32
}

// nodeBuilder converts one node with a sticky error, which is mr's: the
// attribute objects are read here (attrReader), and errors of their JSON
// types name the JSON path, the others the node.
type nodeBuilder struct {
	*builder
	i  int
	mn *mNode
	mr mreader
}

func (nb *nodeBuilder) failf(format string, args ...any) {
	if nb.mr.err == nil {
		nb.mr.err = corruptf("node %d %q: %s", nb.i, nb.mn.Name, fmt.Sprintf(format, args...))
	}
}

func (nb *nodeBuilder) int(v int64, what string) int {
	x, ok := toInt(v)
	if !ok {
		nb.failf("%s = %d is out of range", what, v)
	}
	return x
}

func (nb *nodeBuilder) axes(v []int64, what string) (out [3]int) {
	if len(v) != 3 {
		nb.failf("%s has %d values, want 3 (H, W, C)", what, len(v))
		return out
	}
	for k, x := range v {
		out[k] = nb.int(x, what)
	}
	return out
}

// lookupDType resolves a reference to a tensor of the given dtype.
func (nb *nodeBuilder) lookupDType(what, name, dtype string) *mTensor {
	if nb.mr.err != nil {
		return nil
	}
	if name == "" {
		nb.failf("%s is missing", what)
		return nil
	}
	t := nb.tensors[name]
	if t == nil {
		nb.failf("%s refers to tensor %q, which is not in the tensor table", what, name)
		return nil
	}
	if _, known := dtypeSize[t.DType]; !known {
		nb.mr.err = versionf("node %d %q: tensor %q has dtype %q, which this reader does not know", nb.i, nb.mn.Name, name, t.DType)
		return nil
	}
	if t.DType != dtype {
		nb.failf("%s: tensor %q is %s, want %s", what, name, t.DType, dtype)
		return nil
	}
	return t
}

// f32 resolves a reference to a float32 tensor with the given dimensions.
func (nb *nodeBuilder) f32(what, name string, dims ...int) []float32 {
	t := nb.sized(what, name, "f32", dims)
	if t == nil {
		return nil
	}
	return nb.view(t, false)
}

// f32Values is f32 for values that the checks read (quantization scales):
// they are real even when only verifying.
func (nb *nodeBuilder) f32Values(what, name string, dims ...int) []float32 {
	t := nb.sized(what, name, "f32", dims)
	if t == nil {
		return nil
	}
	return nb.view(t, true)
}

// i8 resolves a reference to an int8 tensor with the given dimensions.
func (nb *nodeBuilder) i8(what, name string, dims ...int) []int8 {
	t := nb.sized(what, name, "i8", dims)
	if t == nil {
		return nil
	}
	return nb.viewI8(t)
}

// sized looks a tensor up and checks its element count.
func (nb *nodeBuilder) sized(what, name, dtype string, dims []int) *mTensor {
	t := nb.lookupDType(what, name, dtype)
	if t == nil {
		return nil
	}
	want := int64(1)
	ds := make([]string, len(dims))
	for k, d := range dims {
		want = satMul(want, int64(d))
		ds[k] = fmt.Sprint(d)
	}
	if have := t.NBytes / dtypeSize[dtype]; have != want {
		nb.failf("tensor %q has %d values, want %d (%s)", name, have, want, strings.Join(ds, "x"))
		return nil
	}
	return t
}

// view returns the tensor's values: in place when possible, else a copy
// (or, when only verifying and the values do not matter, scratch memory of
// the right length). Without a blob (Encode checking its own manifest)
// values that matter read as 1, which passes every value check: Encode has
// checked the real ones.
func (b *builder) view(t *mTensor, values bool) []float32 {
	// When verifying, a tensor shared by a value reference and another one
	// may be scratch in the cache: value references bypass it then.
	cache := !(values && b.mode == modeVerify)
	if v, ok := b.views[t.Name]; ok && cache {
		return v
	}
	n := int(t.NBytes / 4)
	var v []float32
	var src []byte
	if b.blob != nil {
		src = b.blob[t.Offset : t.Offset+t.NBytes]
	}
	switch {
	case src != nil && hostLittleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(src)))%4 == 0:
		v = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(src))), n)
	case src == nil && values:
		v = make([]float32, n)
		for i := range v {
			v[i] = 1
		}
	case src == nil || b.mode == modeVerify && !values:
		if len(b.scratch) < n {
			b.scratch = make([]float32, n)
		}
		v = b.scratch[:n:n]
	default:
		v = make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	}
	if cache {
		b.views[t.Name] = v
	}
	return v
}

// viewI8 returns an int8 tensor's values, always in place (bytes need no
// alignment or byte swapping), or zeros without a blob.
func (b *builder) viewI8(t *mTensor) []int8 {
	if v, ok := b.i8views[t.Name]; ok {
		return v
	}
	n := int(t.NBytes)
	var v []int8
	if b.blob != nil {
		v = unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b.blob[t.Offset:]))), n)
	} else {
		if len(b.i8trash) < n {
			b.i8trash = make([]int8, n)
		}
		v = b.i8trash[:n:n]
	}
	b.i8views[t.Name] = v
	return v
}

func (b *builder) node(i int, mn *mNode) (*graph.Node, error) {
	nb := &nodeBuilder{builder: b, i: i, mn: mn}
	if mn.Op == "" {
		nb.failf("no op")
		return nil, nb.mr.err
	}
	op, ok := graph.ParseOp(mn.Op)
	if !ok {
		return nil, versionf("node %d %q: op %q is unknown to this reader", i, mn.Name, mn.Op)
	}
	n := &graph.Node{Name: mn.Name, Op: op, Relu: mn.Relu}
	for k, in := range mn.Inputs {
		n.Inputs = append(n.Inputs, nb.int(in, fmt.Sprintf("inputs[%d]", k)))
	}
	if i == 0 {
		// The graph's input: the one shape that is given, not inferred.
		if len(mn.Shape) != 3 {
			nb.failf("the input node needs a shape [H, W, C]")
		} else {
			s := nb.axes(mn.Shape, "shape")
			n.Shape = graph.Shape{H: s[0], W: s[1], C: s[2]}
		}
	}
	nb.attrs(n)
	if q := mn.Quant; q != nil {
		// The range check comes before the conversion to int32, which
		// would wrap; shape inference checks the scale.
		if q.Zero < 0 || q.Zero > 255 {
			nb.failf("quant.zero = %d is outside [0, 255]", q.Zero)
		}
		n.Quant = &graph.QParams{Scale: float32(q.Scale), Zero: int32(q.Zero)}
	}
	if w, q := n.Weights(); nb.mr.err == nil && w == nil && q != nil && !slices.Contains(b.requires, featureInt8) {
		nb.failf("int8-only weights, but the image does not list %q in \"requires\"", featureInt8)
	}
	if f := n.Feature(); nb.mr.err == nil && f != "" && !slices.Contains(b.requires, f) {
		nb.failf("uses %q, but the image does not list it in \"requires\"", f)
	}
	return n, nb.mr.err
}

// attrs reads the attribute object of the node's op with the op's codec.
// Objects of other ops are ignored, but int8 weights there would silently
// be lost: the writer is broken.
func (nb *nodeBuilder) attrs(n *graph.Node) {
	own := graph.AttrKey(n.Op)
	if own != "" {
		if v := nb.mn.Attrs[own]; v == nil {
			nb.failf("%s node without %q attributes", nb.mn.Op, own)
		} else {
			graph.DecodeAttrs(n, newAttrReader(nb, v, own))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(nb.mn.Attrs)) {
		if key != own && hasInt8Weights(nb.mn.Attrs[key]) {
			nb.failf("int8 weights in a %q object, which op %s does not read", key, nb.mn.Op)
		}
	}
}

// hasInt8Weights reports whether the attribute object v names int8 weights.
func hasInt8Weights(v jsonValue) bool {
	if v.kind() != jsonObject {
		return false
	}
	f, err := v.fields()
	if err != nil {
		return false
	}
	for _, key := range []string{graph.KeyWeightI8, graph.KeyWeightScale} {
		switch x := f[key]; {
		case x == nil || x.kind() == jsonNull:
		case x.kind() != jsonString:
			return true
		default:
			if s, err := x.str(); err != nil || s != "" {
				return true
			}
		}
	}
	return false
}

func decodeMeta(m *mMeta) (Meta, error) {
	p := &m.Preprocess
	var bad string
	conv := func(v int64, what string) int {
		x, ok := toInt(v)
		if !ok && bad == "" {
			bad = fmt.Sprintf("meta.preprocess.%s = %d is out of range", what, v)
		}
		return x
	}
	out := Meta{
		Name:   m.Name,
		Arch:   m.Arch,
		Labels: m.Labels,
		Preprocess: preprocess.Spec{
			Resize:   conv(p.Resize, "resize"),
			Height:   conv(p.Height, "height"),
			Width:    conv(p.Width, "width"),
			Channels: conv(p.Channels, "channels"),
			BGR:      p.BGR,
			Scale:    float32(p.Scale),
			Mean:     f32s(p.Mean),
			Std:      f32s(p.Std),
		},
		Output:      m.Output,
		Provenance:  m.Provenance,
		InputLayout: m.Layout,
	}
	if bad != "" {
		return out, corruptf("%s", bad)
	}
	return out, nil
}

func f32s(v []jf32) []float32 {
	if len(v) == 0 {
		return nil
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// checkMeta holds the rules that tie the metadata to the graph; Encode and
// Decode both apply them.
func checkMeta(m *Meta, g *graph.Graph) error {
	switch m.Output {
	case "", OutputLogits, OutputProbabilities:
	default:
		return fmt.Errorf("output kind %q is not %q or %q", m.Output, OutputLogits, OutputProbabilities)
	}
	switch m.InputLayout {
	case "", LayoutNCHW, LayoutNHWC:
	default:
		return fmt.Errorf("input layout %q is not %q or %q", m.InputLayout, LayoutNCHW, LayoutNHWC)
	}
	if n := g.OutputShape().Size(); len(m.Labels) > 0 && len(m.Labels) != n {
		return fmt.Errorf("%d labels for %d outputs", len(m.Labels), n)
	}
	p, in := &m.Preprocess, g.Input()
	if (p.Height != 0 || p.Width != 0 || p.Channels != 0) && (p.Height != in.H || p.Width != in.W || p.Channels != in.C) {
		return fmt.Errorf("preprocessing makes %dx%dx%d inputs, the graph takes %v", p.Height, p.Width, p.Channels, in)
	}
	return nil
}
