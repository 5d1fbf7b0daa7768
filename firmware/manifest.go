package firmware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edge-resnet/edge-resnet/graph"
)

// The manifest structs are the JSON schema of format 1 but for the nodes'
// attribute objects, which each op's codec in package graph writes and
// reads (attrs.go). encoding/json writes them (struct order is wire order,
// the attribute objects are in the order of the codec's calls, so output is
// deterministic); decodeManifest fills them from either JSON parser.
// Integers are int64 so that offsets keep full precision and 32-bit readers
// range-check them explicitly instead of truncating. Empty collections are
// omitted when written and read back as nil.
type manifest struct {
	FormatVersion int64     `json:"format_version"` // equals the header's major version
	FormatMinor   int64     `json:"format_minor"`   // equals the header's minor version
	Requires      []string  `json:"requires,omitempty"`
	Meta          mMeta     `json:"meta"`
	Graph         mGraph    `json:"graph"`
	Tensors       []mTensor `json:"tensors"`
}

// mMeta mirrors Meta; its names must stay those of Meta's JSON tags.
type mMeta struct {
	Name       string            `json:"name"`
	Arch       string            `json:"arch"`
	Labels     []string          `json:"labels,omitempty"`
	Preprocess mPreprocess       `json:"preprocess"`
	Output     string            `json:"output"`
	Provenance map[string]string `json:"provenance,omitempty"`
	Layout     string            `json:"input_layout,omitempty"` // format 1.2
}

// mPreprocess mirrors preprocess.Spec and its JSON tags.
type mPreprocess struct {
	Resize   int64  `json:"resize"`
	Height   int64  `json:"height"`
	Width    int64  `json:"width"`
	Channels int64  `json:"channels"`
	BGR      bool   `json:"bgr,omitempty"`
	Scale    jf32   `json:"scale"`
	Mean     []jf32 `json:"mean,omitempty"`
	Std      []jf32 `json:"std,omitempty"`
}

type mGraph struct {
	Output int64 `json:"output"`
	Batch  int64 `json:"batch,omitempty"` // format 1.2; absent: 1
	// Extra and OutputNames (1.2) are graph.Graph's: the further outputs
	// of a graph with several, and the names of all of them.
	Extra       []int64  `json:"extra_outputs,omitempty"`
	OutputNames []string `json:"output_names,omitempty"`
	Nodes       []mNode  `json:"nodes"`
}

// mNode is one graph.Node. Its attribute object, written after the keys
// here, belongs to the op's codec in package graph (attrs.go).
type mNode struct {
	Name   string  `json:"name"`
	Op     string  `json:"op"`
	Inputs []int64 `json:"inputs,omitempty"`
	Shape  []int64 `json:"shape,omitempty"` // [H, W, C]; required for the input, checked when present elsewhere
	Relu   bool    `json:"relu,omitempty"`
	Quant  *mQuant `json:"quant,omitempty"` // int8 quantization of the output (format 1.1)
	// Attrs are attribute objects by key (graph.AttrKey): as written, the
	// op's own; as read, every one present, also those of other ops, which
	// only the int8 weight check of builder.node looks at.
	Attrs map[string]jsonValue `json:"-"`
}

// mQuant is graph.QParams: real = scale*(q-zero), q in [0, 255].
type mQuant struct {
	Scale jf32  `json:"scale"`
	Zero  int64 `json:"zero"`
}

type mTensor struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Offset int64   `json:"offset"` // from the blob start, multiple of 64
	NBytes int64   `json:"nbytes"`
}

// jf32 is a float32 that survives JSON exactly with both parsers. Both read
// a number as float64 and round it to float32, so the writer emits the
// shortest float32 text only when that path gives the same bits back, and
// the float64 text otherwise. JSON has no NaN or infinities: they are the
// strings "NaN", "Infinity" and "-Infinity".
type jf32 float32

func (f jf32) MarshalJSON() ([]byte, error) { return appendF32(nil, float32(f)), nil }

func appendF32(b []byte, f float32) []byte {
	x := float64(f)
	switch {
	case math.IsNaN(x):
		return append(b, `"NaN"`...)
	case math.IsInf(x, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(x, -1):
		return append(b, `"-Infinity"`...)
	case x == 0 && math.Signbit(x):
		// "-0" would be an integer literal, which simdjson-go reads as int64 0.
		return append(b, "-0.0"...)
	}
	n := len(b)
	b = strconv.AppendFloat(b, x, 'g', -1, 32)
	if v, err := strconv.ParseFloat(string(b[n:]), 64); err == nil && float32(v) == f {
		return b
	}
	return strconv.AppendFloat(b[:n], x, 'g', -1, 64)
}

// envJSON selects the manifest parser: "std" forces encoding/json (for tests
// and bug reports); anything else uses simdjson-go where the CPU supports it.
const envJSON = "EDGE_RESNET_JSON"

// parseManifest parses and decodes the manifest text.
func parseManifest(b []byte) (*manifest, error) {
	root, err := parseJSON(b, "manifest")
	if err != nil {
		return nil, err
	}
	return decodeManifest(root)
}

// parseJSON parses a JSON document (what names it in errors) with
// simdjson-go where it is available and safe, else encoding/json.
func parseJSON(b []byte, what string) (jsonValue, error) {
	// Strings must be valid UTF-8: encoding/json would replace bad bytes
	// with U+FFFD while simdjson-go passes them through.
	if !utf8.Valid(b) {
		return nil, corruptf("%s is not valid UTF-8", what)
	}
	if useSimd(b) {
		if root, err := parseSimd(b); err == nil {
			return root, nil
		}
		// simdjson-go rejected it. encoding/json is the reference for what
		// is accepted (simdjson-go also refuses deep nesting and some escapes
		// that are valid JSON), and its errors carry the byte offset.
	}
	return parseStd(b)
}

func useSimd(b []byte) bool {
	return simdAvailable && os.Getenv(envJSON) != "std" && simdjsonSafe(b)
}

// simdjsonSafe reports whether b avoids what simdjson-go reads
// differently from encoding/json: it trims Unicode white space (\v, \f,
// U+00A0...) around the document, accepts \u without four hex digits, and
// pairs a high surrogate with any following escape where encoding/json
// substitutes U+FFFD. Our writer produces none of these, so real manifests
// take the fast path; the others go to encoding/json.
func simdjsonSafe(b []byte) bool {
	t := bytes.Trim(b, " \t\r\n") // JSON's white space only
	if len(t) == 0 || t[0] != '{' && t[0] != '[' || t[len(t)-1] != '}' && t[len(t)-1] != ']' {
		return false
	}
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 {
			return true
		}
		if i+1 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			b = b[i+2:] // any other escape is a pair; \\ must not start a new one
			continue
		}
		if i+6 > len(b) {
			return false
		}
		for _, c := range b[i+2 : i+6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		if (b[i+2] == 'd' || b[i+2] == 'D') && strings.IndexByte("89abcdefABCDEF", b[i+3]) >= 0 {
			return false
		}
		b = b[i+6:]
	}
}

// jsonValue is the view of a parsed JSON value that decodeManifest walks,
// implemented over encoding/json's generic values and over simdjson-go's
// tape. Keeping the manifest decoder single means both parsers apply the
// same rules: exact (case-sensitive) keys, the last of duplicate keys wins,
// unknown keys ignored, null is the zero value.
type jsonValue interface {
	kind() jsonKind
	boolean() bool
	str() (string, error)
	integer() (int64, bool) // an integer literal that fits in int64
	float() (float64, bool)
	elems() ([]jsonValue, error)
	fields() (map[string]jsonValue, error)
}

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k%6]
}

// stdValue wraps what encoding/json decodes into `any` with UseNumber.
type stdValue struct{ v any }

func parseStd(b []byte) (jsonValue, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, corruptf("manifest is not valid JSON: at byte %d: %v", se.Offset, err)
		}
		return nil, corruptf("manifest is not valid JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, corruptf("manifest is not valid JSON: data after the top-level value at byte %d", d.InputOffset())
	}
	return stdValue{v}, nil
}

func (s stdValue) kind() jsonKind {
	switch s.v.(type) {
	case bool:
		return jsonBool
	case json.Number:
		return jsonNumber
	case string:
		return jsonString
	case []any:
		return jsonArray
	case map[string]any:
		return jsonObject
	}
	return jsonNull
}

func (s stdValue) boolean() bool { b, _ := s.v.(bool); return b }

func (s stdValue) str() (string, error) { v, _ := s.v.(string); return v, nil }

func (s stdValue) integer() (int64, bool) {
	n, _ := s.v.(json.Number)
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, false
	}
	return i, true
}

func (s stdValue) float() (float64, bool) {
	n, _ := s.v.(json.Number)
	// simdjson-go keeps integer literals as int64 and converts afterwards,
	// which turns "-0" into +0; do the same so both agree bit for bit.
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return float64(i), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

func (s stdValue) elems() ([]jsonValue, error) {
	a, _ := s.v.([]any)
	out := make([]jsonValue, len(a))
	for i, v := range a {
		out[i] = stdValue{v}
	}
	return out, nil
}

func (s stdValue) fields() (map[string]jsonValue, error) {
	m, _ := s.v.(map[string]any)
	out := make(map[string]jsonValue, len(m))
	for k, v := range m {
		out[k] = stdValue{v}
	}
	return out, nil
}

// loc names a place in the manifest for error messages. It is formatted
// only when an error is reported, so decoding a valid manifest builds no
// path strings.
type loc struct {
	parent *loc
	key    string // object member, `["k"]` for a map entry, or "" for an array element
	index  int
}

func (l *loc) String() string {
	if l == nil {
		return ""
	}
	p := l.parent.String()
	switch {
	case l.key == "":
		return p + "[" + strconv.Itoa(l.index) + "]"
	case p == "" || l.key[0] == '[': // a map key, already bracketed
		return p + l.key
	}
	return p + "." + l.key
}

func at(parent *loc, key string) *loc { return &loc{parent: parent, key: key} }

// mreader decodes with a sticky error that names the JSON path.
type mreader struct{ err error }

func (r *mreader) failf(l *loc, format string, args ...any) {
	if r.err == nil {
		p := l.String()
		if p == "" {
			p = "manifest"
		}
		r.err = corruptf("manifest: %s: %s", p, fmt.Sprintf(format, args...))
	}
}

// value returns o[key] unless it is absent or null.
func (r *mreader) value(o map[string]jsonValue, key string) jsonValue {
	if r.err != nil {
		return nil
	}
	v := o[key]
	if v == nil || v.kind() == jsonNull {
		return nil
	}
	return v
}

func (r *mreader) want(v jsonValue, k jsonKind, l *loc) bool {
	if v.kind() != k {
		r.failf(l, "want %s, got %s", k, v.kind())
		return false
	}
	return true
}

func (r *mreader) objectOf(v jsonValue, l *loc) map[string]jsonValue {
	if v == nil || !r.want(v, jsonObject, l) {
		return nil
	}
	f, err := v.fields()
	if err != nil {
		r.failf(l, "%v", err)
		return nil
	}
	return f
}

func (r *mreader) object(o map[string]jsonValue, key string, l *loc) map[string]jsonValue {
	return r.objectOf(r.value(o, key), at(l, key))
}

func (r *mreader) array(o map[string]jsonValue, key string, l *loc) []jsonValue {
	v := r.value(o, key)
	if v == nil || !r.want(v, jsonArray, at(l, key)) {
		return nil
	}
	a, err := v.elems()
	if err != nil {
		r.failf(at(l, key), "%v", err)
		return nil
	}
	return a
}

func (r *mreader) intOf(v jsonValue, l *loc) int64 {
	if v == nil || v.kind() == jsonNull || !r.want(v, jsonNumber, l) {
		return 0
	}
	i, ok := v.integer()
	if !ok {
		r.failf(l, "want an integer that fits in 64 bits")
	}
	return i
}

func (r *mreader) int(o map[string]jsonValue, key string, l *loc) int64 {
	return r.intOf(r.value(o, key), at(l, key))
}

func (r *mreader) boolean(o map[string]jsonValue, key string, l *loc) bool {
	v := r.value(o, key)
	if v == nil || !r.want(v, jsonBool, at(l, key)) {
		return false
	}
	return v.boolean()
}

func (r *mreader) strOf(v jsonValue, l *loc) string {
	if v == nil || v.kind() == jsonNull || !r.want(v, jsonString, l) {
		return ""
	}
	s, err := v.str()
	if err != nil {
		r.failf(l, "%v", err)
	}
	return s
}

func (r *mreader) str(o map[string]jsonValue, key string, l *loc) string {
	return r.strOf(r.value(o, key), at(l, key))
}

func (r *mreader) f32Of(v jsonValue, l *loc) jf32 {
	if v == nil || v.kind() == jsonNull {
		return 0
	}
	switch v.kind() {
	case jsonString:
		switch s := r.strOf(v, l); s {
		case "NaN":
			return jf32(math.NaN())
		case "Infinity":
			return jf32(math.Inf(1))
		case "-Infinity":
			return jf32(math.Inf(-1))
		default:
			r.failf(l, "want a number, got string %q", s)
			return 0
		}
	case jsonNumber:
		f, ok := v.float()
		x := float32(f)
		if !ok || math.IsInf(float64(x), 0) {
			r.failf(l, "number out of float32 range")
		}
		return jf32(x)
	}
	r.failf(l, "want a number, got %s", v.kind())
	return 0
}

func (r *mreader) f32(o map[string]jsonValue, key string, l *loc) jf32 {
	return r.f32Of(r.value(o, key), at(l, key))
}

// each decodes the elements of an array member; nil when empty.
func each[T any](r *mreader, o map[string]jsonValue, key string, l *loc, elem func(jsonValue, *loc) T) []T {
	a := r.array(o, key, l)
	if len(a) == 0 {
		return nil
	}
	out := make([]T, len(a))
	al := at(l, key)
	for i, v := range a {
		out[i] = elem(v, &loc{parent: al, index: i})
	}
	return out
}

func (r *mreader) ints(o map[string]jsonValue, key string, l *loc) []int64 {
	return each(r, o, key, l, r.intOf)
}

func (r *mreader) strs(o map[string]jsonValue, key string, l *loc) []string {
	return each(r, o, key, l, r.strOf)
}

func (r *mreader) f32s(o map[string]jsonValue, key string, l *loc) []jf32 {
	return each(r, o, key, l, r.f32Of)
}

func (r *mreader) strMap(o map[string]jsonValue, key string, l *loc) map[string]string {
	f := r.object(o, key, l)
	if len(f) == 0 {
		return nil
	}
	out := make(map[string]string, len(f))
	ml := at(l, key)
	// Sorted, so that the first error reported does not depend on map order.
	for _, k := range slices.Sorted(maps.Keys(f)) {
		out[k] = r.strOf(f[k], at(ml, "["+strconv.Quote(k)+"]"))
	}
	return out
}

// decodeManifest turns a parsed JSON value into a manifest. It checks the
// version and required features first, so that a newer manifest whose
// structure this reader cannot follow reports ErrVersion, not ErrCorrupt.
func decodeManifest(root jsonValue) (*manifest, error) {
	r := &mreader{}
	top := r.objectOf(root, nil)
	if r.err != nil {
		return nil, r.err
	}
	m := &manifest{
		FormatVersion: r.int(top, "format_version", nil),
		FormatMinor:   r.int(top, "format_minor", nil),
		Requires:      r.strs(top, "requires", nil),
	}
	if r.err != nil {
		return nil, r.err
	}
	if m.FormatVersion > MajorVersion {
		return nil, versionf("manifest format version %d.%d is newer than this reader (%d.x)", m.FormatVersion, m.FormatMinor, MajorVersion)
	}
	for _, f := range m.Requires {
		if !knownFeatures[f] {
			return nil, versionf("image requires feature %q, which this reader does not support", f)
		}
	}

	meta := r.object(top, "meta", nil)
	ml := at(nil, "meta")
	m.Meta = mMeta{
		Name:       r.str(meta, "name", ml),
		Arch:       r.str(meta, "arch", ml),
		Labels:     r.strs(meta, "labels", ml),
		Output:     r.str(meta, "output", ml),
		Provenance: r.strMap(meta, "provenance", ml),
		Layout:     r.str(meta, "input_layout", ml),
	}
	pp := r.object(meta, "preprocess", ml)
	pl := at(ml, "preprocess")
	m.Meta.Preprocess = mPreprocess{
		Resize:   r.int(pp, "resize", pl),
		Height:   r.int(pp, "height", pl),
		Width:    r.int(pp, "width", pl),
		Channels: r.int(pp, "channels", pl),
		BGR:      r.boolean(pp, "bgr", pl),
		Scale:    r.f32(pp, "scale", pl),
		Mean:     r.f32s(pp, "mean", pl),
		Std:      r.f32s(pp, "std", pl),
	}

	g := r.object(top, "graph", nil)
	gl := at(nil, "graph")
	m.Graph.Output = r.int(g, "output", gl)
	m.Graph.Batch = r.int(g, "batch", gl)
	m.Graph.Extra = r.ints(g, "extra_outputs", gl)
	m.Graph.OutputNames = r.strs(g, "output_names", gl)
	// A null element reads as an empty object, like a null member.
	nullable := func(v jsonValue) jsonValue {
		if v.kind() == jsonNull {
			return nil
		}
		return v
	}
	m.Graph.Nodes = each(r, g, "nodes", gl, func(v jsonValue, l *loc) mNode { return r.node(r.objectOf(nullable(v), l), l) })
	m.Tensors = each(r, top, "tensors", nil, func(v jsonValue, l *loc) mTensor {
		o := r.objectOf(nullable(v), l)
		return mTensor{
			Name:   r.str(o, "name", l),
			DType:  r.str(o, "dtype", l),
			Shape:  r.ints(o, "shape", l),
			Offset: r.int(o, "offset", l),
			NBytes: r.int(o, "nbytes", l),
		}
	})
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

// node decodes one node object (nil for a null element).
func (r *mreader) node(o map[string]jsonValue, l *loc) mNode {
	n := mNode{
		Name:   r.str(o, "name", l),
		Op:     r.str(o, "op", l),
		Inputs: r.ints(o, "inputs", l),
		Shape:  r.ints(o, "shape", l),
		Relu:   r.boolean(o, "relu", l),
	}
	if q := r.object(o, "quant", l); q != nil {
		p := at(l, "quant")
		n.Quant = &mQuant{Scale: r.f32(q, "scale", p), Zero: r.int(q, "zero", p)}
	}
	for _, k := range attrKeys {
		if v := r.value(o, k); v != nil {
			if n.Attrs == nil {
				n.Attrs = map[string]jsonValue{}
			}
			n.Attrs[k] = v
		}
	}
	return n
}

// attrKeys are the keys of the ops' attribute objects.
var attrKeys = graph.AttrKeys()

// knownFeatures are the names in "requires" this reader implements
// (docs/FORMAT.md §4); any other one makes the image ErrVersion.
var knownFeatures = func() map[string]bool {
	f := map[string]bool{featureInt8: true}
	for _, name := range graph.Features() {
		f[name] = true
	}
	return f
}()

// featureInt8: some conv or dense layer has int8 weights only, so a reader
// without int8 support could not run the image.
const featureInt8 = "int8"
