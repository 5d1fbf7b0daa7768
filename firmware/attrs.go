package firmware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/edge-resnet/edge-resnet/graph"
)

// The attribute objects of nodes (docs/FORMAT.md §2.3) are written and
// read by each op's codec in package graph, through attrWriter and
// attrReader: this package knows no op.

// attrWriter is graph.AttrWriter for encoder.node: it builds the object as
// a wobject and stores tensors in the blob, named <node>.<key>.
type attrWriter struct {
	e   *encoder
	i   int
	n   *graph.Node
	obj *wobject
}

func (w *attrWriter) put(key string, v jsonValue) {
	w.obj.keys = append(w.obj.keys, key)
	w.obj.vals = append(w.obj.vals, v)
}

func (w *attrWriter) Int(key string, v int) { w.put(key, stdValue{json.Number(strconv.Itoa(v))}) }

func (w *attrWriter) Ints(key string, v []int) {
	a := make([]any, len(v))
	for k, x := range v {
		a[k] = json.Number(strconv.Itoa(x))
	}
	w.put(key, stdValue{a})
}

// Float stores the text appendF32 writes, so that reading it back (in
// newPlan) gives what a parser gives.
func (w *attrWriter) Float(key string, v float32) {
	t := appendF32(nil, v)
	if t[0] == '"' { // a non-finite value
		w.put(key, stdValue{string(t[1 : len(t)-1])})
		return
	}
	w.put(key, stdValue{json.Number(t)})
}

func (w *attrWriter) Bool(key string, v bool) {
	if v {
		w.put(key, stdValue{true})
	}
}

func (w *attrWriter) String(key string, v string) { w.put(key, stdValue{v}) }

func (w *attrWriter) Object(key string, f func(graph.AttrWriter)) {
	o := &attrWriter{e: w.e, i: w.i, n: w.n, obj: &wobject{}}
	f(o)
	w.put(key, o.obj)
}

func (w *attrWriter) Tensor(key string, v []float32, shape ...int) {
	if v != nil {
		w.put(key, stdValue{w.e.tensor(w.i, w.n, key, v, shape...)})
	}
}

func (w *attrWriter) TensorI8(key string, v []int8, shape ...int) {
	if v != nil {
		w.put(key, stdValue{w.e.tensorI8(w.i, w.n, key, v, shape...)})
	}
}

// wobject is an attribute object as written: its members in the order of
// the codec's calls, which is the order it marshals them in. It reads back
// through jsonValue, so that Encode checks its manifest with Decode's code
// without parsing it (newPlan).
type wobject struct {
	keys []string
	vals []jsonValue
}

func (o *wobject) kind() jsonKind              { return jsonObject }
func (o *wobject) boolean() bool               { return false }
func (o *wobject) str() (string, error)        { return "", nil }
func (o *wobject) integer() (int64, bool)      { return 0, false }
func (o *wobject) float() (float64, bool)      { return 0, false }
func (o *wobject) elems() ([]jsonValue, error) { return nil, nil }

func (o *wobject) fields() (map[string]jsonValue, error) {
	m := make(map[string]jsonValue, len(o.keys))
	for k, key := range o.keys {
		m[key] = o.vals[k]
	}
	return m, nil
}

func (o *wobject) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for k, key := range o.keys {
		var err error
		if b, err = appendMember(b, k > 0, key, o.vals[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// MarshalJSON lets the writer's scalars and lists, which are stdValues,
// marshal as the values they hold.
func (s stdValue) MarshalJSON() ([]byte, error) { return marshalJSON(s.v) }

// MarshalJSON writes the node's keys, then its attribute object.
func (n mNode) MarshalJSON() ([]byte, error) {
	type fixed mNode // without this method; Attrs is not marshaled
	b, err := marshalJSON(fixed(n))
	if err != nil || len(n.Attrs) == 0 {
		return b, err
	}
	b = b[:len(b)-1] // the closing brace; "name" and "op" are always there
	for _, key := range slices.Sorted(maps.Keys(n.Attrs)) {
		if b, err = appendMember(b, true, key, n.Attrs[key]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMember appends `"key":value` to the text of an object, after a
// comma unless it is the first member.
func appendMember(b []byte, comma bool, key string, v any) ([]byte, error) {
	kb, err := marshalJSON(key)
	if err != nil {
		return nil, err
	}
	vb, err := marshalJSON(v)
	if err != nil {
		return nil, err
	}
	if comma {
		b = append(b, ',')
	}
	return append(append(append(b, kb...), ':'), vb...), nil
}

// marshalJSON is json.Marshal without HTML escaping, which keeps labels
// such as "<unk>" readable; the manifest is written this way throughout.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// attrReader is graph.AttrReader over one attribute object of the node nb
// builds. Type errors name the key's JSON path (graph.nodes[2].conv.kh),
// the others the node and the key (conv.kh); the first one sticks.
type attrReader struct {
	nb   *nodeBuilder
	o    map[string]jsonValue
	l    *loc   // the object's place in the manifest
	path string // the object's key path within the node: "conv", "conv.pad"
}

// newAttrReader reads the object v, the member key of node nb.
func newAttrReader(nb *nodeBuilder, v jsonValue, key string) *attrReader {
	l := at(&loc{parent: at(at(nil, "graph"), "nodes"), index: nb.i}, key)
	return &attrReader{nb: nb, o: nb.mr.objectOf(v, l), l: l, path: key}
}

func (r *attrReader) what(key string) string { return r.path + "." + key }

// toInt range-checks an integer attribute (see toInt); index >= 0 names an
// element of a list.
func (r *attrReader) toInt(key string, index int, v int64) int {
	x, ok := toInt(v)
	if !ok {
		what := r.what(key)
		if index >= 0 {
			what += "[" + strconv.Itoa(index) + "]"
		}
		r.nb.failf("%s = %d is out of range", what, v)
	}
	return x
}

func (r *attrReader) Int(key string) int { return r.toInt(key, -1, r.nb.mr.int(r.o, key, r.l)) }

func (r *attrReader) Ints(key string) []int {
	v := r.nb.mr.ints(r.o, key, r.l)
	if v == nil {
		return nil
	}
	out := make([]int, len(v))
	for k, x := range v {
		out[k] = r.toInt(key, k, x)
	}
	return out
}

func (r *attrReader) Float(key string) float32 { return float32(r.nb.mr.f32(r.o, key, r.l)) }

func (r *attrReader) Bool(key string) bool { return r.nb.mr.boolean(r.o, key, r.l) }

func (r *attrReader) String(key string) string { return r.nb.mr.str(r.o, key, r.l) }

func (r *attrReader) Object(key string) graph.AttrReader {
	return &attrReader{nb: r.nb, o: r.nb.mr.object(r.o, key, r.l), l: at(r.l, key), path: r.what(key)}
}

func (r *attrReader) Tensor(key string, shape ...int) []float32 {
	return tensorRef(r, key, shape, r.nb.f32)
}

func (r *attrReader) CheckedTensor(key string, shape ...int) []float32 {
	return tensorRef(r, key, shape, r.nb.f32Values)
}

func (r *attrReader) TensorI8(key string, shape ...int) []int8 {
	return tensorRef(r, key, shape, r.nb.i8)
}

// tensorRef resolves the tensor reference key with read, nil when absent.
func tensorRef[T any](r *attrReader, key string, shape []int, read func(what, name string, dims ...int) []T) []T {
	if name := r.String(key); name != "" {
		return read(r.what(key), name, shape...)
	}
	return nil
}

func (r *attrReader) TensorLen(key string) int {
	if t := r.nb.tensors[r.String(key)]; t != nil && dtypeSize[t.DType] > 0 {
		return int(t.NBytes / dtypeSize[t.DType])
	}
	return 0
}

func (r *attrReader) Failf(key, format string, args ...any) {
	r.nb.failf("%s %s", r.what(key), fmt.Sprintf(format, args...))
}
