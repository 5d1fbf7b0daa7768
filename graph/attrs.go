package graph

import "slices"

// The attribute codec: how an op's attributes are stored in a model image
// (docs/FORMAT.md §2.3). Each op file writes and reads its own attribute
// object through AttrWriter and AttrReader, next to the op's struct, and
// registers them with the object's key; package firmware implements both
// interfaces over JSON and a tensor blob and has no code of its own per op.

// AttrWriter receives one attribute object, key by key. The keys appear in
// the image in the order of the calls, so a codec that always makes the
// same calls writes the same bytes.
type AttrWriter interface {
	Int(key string, v int)
	Ints(key string, v []int)
	Float(key string, v float32)
	Bool(key string, v bool) // omitted when false
	String(key string, v string)
	// Object writes a nested object whose members f writes.
	Object(key string, f func(AttrWriter))
	// Tensor stores v, a float32 tensor of the given shape, in the blob and
	// writes its name; omitted when v is nil. Slices shared between nodes are
	// stored once.
	Tensor(key string, v []float32, shape ...int)
	// TensorI8 is Tensor for int8 values.
	TensorI8(key string, v []int8, shape ...int)
}

// AttrReader reads one attribute object. An absent or null key reads as the
// zero value (an empty object for Object). Errors are sticky and name the
// key's path: after the first one, every read returns a zero value and the
// reader's owner reports the error, so a decode function just reads and
// never checks.
type AttrReader interface {
	Int(key string) int // fits in int32, so an image loads on 32-bit ARM as on arm64
	Ints(key string) []int
	Float(key string) float32
	Bool(key string) bool
	String(key string) string
	Object(key string) AttrReader
	// Tensor returns the float32 tensor key names, which must have
	// prod(shape) values; nil when key is absent or "". The values alias the
	// image and must not be written; while the image is only verified they
	// may be placeholders (see CheckedTensor).
	Tensor(key string, shape ...int) []float32
	// CheckedTensor is Tensor for values that Graph.InferShapes checks
	// (quantization scales): they are the stored values in every mode.
	CheckedTensor(key string, shape ...int) []float32
	// TensorI8 is Tensor for int8 values.
	TensorI8(key string, shape ...int) []int8
	// TensorLen is the number of values of the tensor key names, or 0 (no
	// error) when there is none: for attributes sized by their tensor.
	TensorLen(key string) int
	// Failf reports that key's value is wrong: "<path>.<key> <message>".
	Failf(key, format string, args ...any)
}

// The keys of int8 weights (docs/FORMAT.md §2.3). Outside the attribute
// object of the node's own op they are corrupt, not ignored: they would
// silently be lost.
const (
	KeyWeightI8    = "weight_i8"
	KeyWeightScale = "weight_scale"
)

// AttrKey returns the key of op's attribute object in a model image ("conv"
// for OpConv), or "" for an op without attributes.
func AttrKey(op Op) string {
	if op < numOps {
		return ops[op].attrKey
	}
	return ""
}

// AttrKeys returns the attribute object keys of all ops, sorted, each once.
func AttrKeys() []string {
	var keys []string
	for _, d := range ops {
		if d.attrKey != "" && !slices.Contains(keys, d.attrKey) {
			keys = append(keys, d.attrKey)
		}
	}
	slices.Sort(keys)
	return keys
}

// EncodeAttrs writes the attributes of n's op, which must be set (as
// InferShapes checks); it writes nothing for an op without attributes.
func (n *Node) EncodeAttrs(w AttrWriter) {
	if n.Op < numOps && ops[n.Op].encode != nil {
		ops[n.Op].encode(n, w)
	}
}

// DecodeAttrs sets the attributes of n.Op from r. Values are range-checked
// for indexing only; InferShapes checks them against each other.
func DecodeAttrs(n *Node, r AttrReader) {
	if n.Op < numOps && ops[n.Op].decode != nil {
		ops[n.Op].decode(n, r)
	}
}

// Weights returns the weights of a node whose op has them (Conv, Dense):
// the float32 and the int8 ones, either of which may be nil. It returns
// nil, nil for other ops.
func (n *Node) Weights() ([]float32, *QWeights) {
	if n.Op < numOps && ops[n.Op].weights != nil {
		return ops[n.Op].weights(n)
	}
	return nil, nil
}

// Helpers for the codecs of several ops.

// writeWindow writes the window of a Conv or Pool: kh, kw, stride_h and
// stride_w.
func writeWindow(w AttrWriter, kh, kw, strideH, strideW int) {
	w.Int("kh", kh)
	w.Int("kw", kw)
	w.Int("stride_h", strideH)
	w.Int("stride_w", strideW)
}

// readWindow reads what writeWindow wrote.
func readWindow(r AttrReader) (kh, kw, strideH, strideW int) {
	return r.Int("kh"), r.Int("kw"), r.Int("stride_h"), r.Int("stride_w")
}

func writePads(w AttrWriter, key string, p Pads) {
	w.Object(key, func(w AttrWriter) {
		w.Int("top", p.Top)
		w.Int("left", p.Left)
		w.Int("bottom", p.Bottom)
		w.Int("right", p.Right)
	})
}

func readPads(r AttrReader, key string) Pads {
	o := r.Object(key)
	return Pads{Top: o.Int("top"), Left: o.Int("left"), Bottom: o.Int("bottom"), Right: o.Int("right")}
}

// readAxes reads a value per Axis.
func readAxes(r AttrReader, key string) (out [3]int) {
	v := r.Ints(key)
	if len(v) != 3 {
		r.Failf(key, "has %d values, want 3 (H, W, C)", len(v))
		return out
	}
	return [3]int(v)
}

// writeWeights writes a layer's weights: "weight" (float32, of the given
// shape), "bias" (one per output channel, the last dimension) and the int8
// weights, each only when present.
func writeWeights(w AttrWriter, weight, bias []float32, q *QWeights, shape ...int) {
	out := shape[len(shape)-1]
	w.Tensor("weight", weight, shape...)
	w.Tensor("bias", bias, out)
	if q != nil {
		w.TensorI8(KeyWeightI8, q.Q, shape...)
		w.Tensor(KeyWeightScale, q.Scale, out)
	}
}

// readWeights reads what writeWeights wrote. A layer needs float or int8
// weights or both; the int8 ones are values and scales together.
func readWeights(r AttrReader, shape ...int) (weight, bias []float32, q *QWeights) {
	out := shape[len(shape)-1]
	hasQ, hasScale := r.String(KeyWeightI8) != "", r.String(KeyWeightScale) != ""
	switch {
	case hasQ && hasScale:
		q = &QWeights{Q: r.TensorI8(KeyWeightI8, shape...), Scale: r.CheckedTensor(KeyWeightScale, out)}
	case hasQ:
		r.Failf(KeyWeightI8, "is given without %s", KeyWeightScale)
	case hasScale:
		r.Failf(KeyWeightScale, "is given without %s", KeyWeightI8)
	}
	weight = r.Tensor("weight", shape...)
	if weight == nil && !hasQ {
		r.Failf("weight", "is missing")
	}
	return weight, r.Tensor("bias", out), q
}

// requiredTensor is Tensor for a key that must be present.
func requiredTensor(r AttrReader, key string, shape ...int) []float32 {
	v := r.Tensor(key, shape...)
	if v == nil {
		r.Failf(key, "is missing")
	}
	return v
}
