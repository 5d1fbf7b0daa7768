package firmware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// canon turns a parsed value into plain Go values, numbers as the exact
// results of both accessors, so that trees from the two parsers compare.
func canon(v jsonValue) (any, error) {
	switch v.kind() {
	case jsonNull:
		return nil, nil
	case jsonBool:
		return v.boolean(), nil
	case jsonNumber:
		i, iok := v.integer()
		f, fok := v.float()
		return fmt.Sprintf("int(%v,%d) float(%v,%x)", iok, i, fok, math.Float64bits(f)), nil
	case jsonString:
		s, err := v.str()
		return "s:" + s, err
	case jsonArray:
		es, err := v.elems()
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, e := range es {
			c, err := canon(e)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	case jsonObject:
		fs, err := v.fields()
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		for k, e := range fs {
			c, err := canon(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("kind %d", v.kind())
}

// sameManifest compares decoded manifests: the nodes' attribute objects,
// which hold each parser's own values, as canon trees, the rest directly.
// NaN != NaN defeats DeepEqual, so equal JSON renderings of manifests
// holding a NaN count too.
func sameManifest(a, b *manifest) bool {
	ta, a := splitAttrs(a)
	tb, b := splitAttrs(b)
	if !reflect.DeepEqual(ta, tb) {
		return false
	}
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && bytes.Contains(ja, []byte(`"NaN"`))
}

// splitAttrs returns the canon trees of m's attribute objects, node by
// node, and a copy of m without them.
func splitAttrs(m *manifest) ([]map[string]any, *manifest) {
	c := *m
	c.Graph.Nodes = slices.Clone(m.Graph.Nodes)
	trees := make([]map[string]any, len(c.Graph.Nodes))
	for i := range c.Graph.Nodes {
		n := &c.Graph.Nodes[i]
		for k, v := range n.Attrs {
			tree, err := canon(v)
			if err != nil {
				tree = err.Error()
			}
			if trees[i] == nil {
				trees[i] = map[string]any{}
			}
			trees[i][k] = tree
		}
		n.Attrs = nil
	}
	return trees, &c
}

// checkEquivalent requires simdjson-go and encoding/json to agree on data
// whenever parseManifest would use simdjson-go's result. It reports whether
// simdjson-go accepted the text.
func checkEquivalent(t testing.TB, data []byte) bool {
	t.Helper()
	if !utf8.Valid(data) || !simdjsonSafe(data) {
		return false // parseManifest never gives these to simdjson-go
	}
	sv, serr := parseSimd(data)
	stdv, stderr := parseStd(data)
	if serr != nil {
		return false // falls back to encoding/json
	}
	if stderr != nil {
		t.Fatalf("simdjson-go accepts what encoding/json rejects (%v): %q", stderr, data)
	}
	a, aerr := canon(sv)
	b, berr := canon(stdv)
	if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("parsers disagree on %q:\nsimdjson %v %v\nstd      %v %v", data, a, aerr, b, berr)
	}
	ma, aerr := decodeManifest(sv)
	mb, berr := decodeManifest(stdv)
	if (aerr == nil) != (berr == nil) || (aerr != nil && aerr.Error() != berr.Error()) {
		t.Fatalf("decoders disagree on %q:\nsimdjson %v\nstd      %v", data, aerr, berr)
	}
	if aerr == nil && !sameManifest(ma, mb) {
		t.Fatalf("manifests differ for %q:\nsimdjson %+v\nstd      %+v", data, ma, mb)
	}
	return true
}

// trickyJSON are texts where JSON parsers commonly differ.
var trickyJSON = []string{
	`{}`, ` {"format_version":1} `, "\t\r\n{\"a\":1}\n", `{"a":{"b":{"c":[[],[{}],null]}}}`,
	`{"format_version":1,"format_version":2}`, `{"meta":{"name":"a"},"meta":{"arch":"b"}}`,
	`{"Format_Version":2,"format_version":1}`, `{"meta":{"NAME":"x","name":"y"}}`,
	`{"n\u0061me":"\u00e9\ud83d\ude00\u0000\"\\\/\b\f\n\r\t"}`, `{"a":"\ud800"}`, `{"a":"\udc00\ud800"}`, `{"a":"\ud800\u0041"}`,
	`{"a":-0}`, `{"a":-0.0}`, `{"a":0e0}`, `{"a":1E+2}`, `{"a":1e-400}`, `{"a":1e400}`, `{"a":123456789012345678901234567890}`,
	`{"a":9223372036854775807}`, `{"a":9223372036854775808}`, `{"a":-9223372036854775808}`, `{"a":-9223372036854775809}`,
	`{"a":18446744073709551615}`, `{"a":18446744073709551616}`, `{"a":0.1}`, `{"a":3.4028235e38}`, `{"a":3.4028236e38}`,
	`{"a":1.0}`, `{"a":1e2}`, `{"a":01}`, `{"a":+1}`, `{"a":.5}`, `{"a":1.}`, `{"a":-}`, `{"a":0x10}`, `{"a":Infinity}`, `{"a":NaN}`,
	`{"a":tru}`, `{"a":truex}`, `{"a":nul}`, `{"a":true,}`, `{"a":[1,]}`, `{,"a":1}`, `{"a" 1}`, `{"a":1}}`, `{"a":1}{}`, `{"a":1} x`,
	`[1,2]`, `"x"`, `1`, `null`, `true`, ``, ` `, `{"a":"` + "\x01" + `"}`, `{"a":"` + "\x7f" + `"}`, "{\"a\":1}\x00", "{\v\"a\":1}", "{\f\"a\":1}",
	"{\u00a0\"a\":1}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, `{"a":'x'}`, `{'a':1}`, `{a:1}`, `{"a":1 /* c */}`,
	"\ufeff{}", `{"a":[` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `]}`,
	`{"tensors":[{"name":"w","dtype":"f32","shape":[2,3],"offset":0,"nbytes":24},null,{}]}`,
	`{"graph":{"nodes":[null,{"op":"Conv","conv":{"kh":1e0}},{"op":"Pad","pad":{"value":"Infinity"}}]}}`,
	`{"meta":{"provenance":{"b":"1","a":"2","":""},"labels":["a",null,"c"]}}`,
	`{"meta":{"preprocess":{"mean":[0.485,-0.0,1e-45,"NaN","-Infinity",null]}}}`,
}

func TestJSONEquivalence(t *testing.T) {
	if !simdAvailable {
		t.Skip("simdjson-go not available on this CPU/build")
	}
	var texts [][]byte
	for _, s := range trickyJSON {
		texts = append(texts, []byte(s))
	}
	for _, m := range []*Model{tinyModel(), allOpsModel()} {
		man, _ := split(t, mustEncode(t, m))
		texts = append(texts, man)
		// Every single-byte mutation of a real manifest, sampled.
		r := rand.New(rand.NewPCG(7, 8))
		n := 1000
		if testing.Short() {
			n = 150
		}
		for range n {
			d := bytes.Clone(man)
			const alphabet = " {}[]:,\"\\0123456789-+.eEtrufalsn\x00\x01\xc3"
			d[r.IntN(len(d))] = alphabet[r.IntN(len(alphabet))]
			texts = append(texts, d)
		}
	}
	// Real networks give manifests above 8 KB, where simdjson-go switches
	// to its concurrent two-stage path.
	for _, cfg := range []resnet.Config{{Depth: 20, CIFAR: true, Shortcut: resnet.ShortcutA}, {Depth: 18, Height: 32, Width: 32, BaseWidth: 8, Classes: 300}} {
		g, err := resnet.Build(cfg, resnet.HeInit(1))
		if err != nil {
			t.Fatal(err)
		}
		labels := make([]string, g.OutputShape().Size())
		for i := range labels {
			labels[i] = fmt.Sprintf("class %d \"ü\"", i)
		}
		man, _ := split(t, mustEncode(t, &Model{Graph: g, Meta: Meta{Name: cfg.Name(), Labels: labels}}))
		if len(man) <= 8<<10 {
			t.Fatalf("%s manifest is only %d bytes", cfg.Name(), len(man))
		}
		texts = append(texts, man)
		r := rand.New(rand.NewPCG(9, 10))
		for range 20 {
			d := bytes.Clone(man)
			d[r.IntN(len(d))] = ' '
			texts = append(texts, d)
		}
	}
	// The fuzz corpora.
	for _, dir := range []string{"FuzzDecode", "FuzzDecodeManifest", "FuzzManifestJSON"} {
		for _, data := range readCorpus(t, filepath.Join("testdata", "fuzz", dir)) {
			texts = append(texts, data)
			if r := resign(data); r != nil {
				if h, err := parseHeader(r); err == nil {
					texts = append(texts, r[h.manifestOff:h.manifestOff+h.manifestLen])
				}
			}
		}
	}
	accepted := 0
	for _, d := range texts {
		if checkEquivalent(t, d) {
			accepted++
		}
	}
	t.Logf("%d texts, %d parsed by simdjson-go and compared", len(texts), accepted)
	if accepted < 100 {
		t.Fatalf("only %d texts were compared", accepted)
	}
}

// readCorpus reads the []byte values of a fuzz corpus directory.
func readCorpus(t testing.TB, dir string) [][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(b), "\n", 3)
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a []byte corpus file", e.Name())
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, []byte(s))
	}
	return out
}

func TestEnvForcesStd(t *testing.T) {
	man, _ := split(t, mustEncode(t, tinyModel()))
	t.Setenv(envJSON, "std")
	if useSimd(man) {
		t.Fatalf("%s=std did not select encoding/json", envJSON)
	}
	got, err := Decode(mustEncode(t, allOpsModel()))
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, allOpsModel(), got)
	t.Setenv(envJSON, "")
	if useSimd(man) != simdAvailable {
		t.Fatalf("useSimd = %v with simdjson available = %v", !simdAvailable, simdAvailable)
	}
	for s, safe := range map[string]bool{
		`{"a":"\uD834\uDD1E"}`: false, `{"a":"\udfff"}`: false, `{"a":"\u000 "}`: false, `{"a":"\u12"}`: false, `{"a":"\`: false,
		`{"a":"\u00e9\n\\ud800"}`: true, `{"a":"\\"}`: true, "\v{}": false, "{}\u00a0": false, "\r\n{}\t ": true, "[]": true, "x{}": false, "": false, `{"a":"\uc000\"\/"}`: true, `{}`: true,
	} {
		if simdjsonSafe([]byte(s)) != safe {
			t.Errorf("simdjsonSafe(%s) = %v", s, !safe)
		}
	}
}

// TestMetaJSONNames keeps the manifest's metadata names those of Meta's and
// preprocess.Spec's JSON tags: every field gets a distinct non-zero value
// by reflection, so a field added to Meta or Spec fails here until the
// manifest carries it.
func TestMetaJSONNames(t *testing.T) {
	var m Meta
	fill(reflect.ValueOf(&m).Elem(), new(int))
	tagged, err := json.Marshal(m) // what Meta's own tags produce
	if err != nil {
		t.Fatal(err)
	}
	bothParsers(t, func(t *testing.T) {
		man, err := parseManifest([]byte(`{"format_version":1,"meta":` + string(tagged) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMeta(&man.Meta)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("read back\n%+v\nwant\n%+v", got, m)
		}
	})
	// And what the writer produces reads back with encoding/json and Meta's tags.
	mm := encodeMeta(&m)
	out, _ := json.Marshal(mm)
	var back Meta
	if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("encoding/json reads the writer's meta as %+v (%v)", back, err)
	}
}

func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d ✓", *n))
	case reflect.Int:
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float32:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(e, n)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// TestManifestStructsRoundTrip fills every manifest field by reflection,
// writes it with encoding/json and reads it with decodeManifest, so a field
// added to the schema but not to the reader fails here. The nodes'
// attribute objects are the ops' codecs' (TestOpAttrsCovered).
func TestManifestStructsRoundTrip(t *testing.T) {
	var m manifest
	fillManifest(reflect.ValueOf(&m).Elem(), new(int))
	m.FormatVersion, m.Requires = 1, nil
	out, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	bothParsers(t, func(t *testing.T) {
		got, err := parseManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &m) {
			t.Fatalf("read back\n%+v\nwant\n%+v", got, &m)
		}
	})
}

func fillManifest(v reflect.Value, n *int) {
	*n++
	if v.Type() == reflect.TypeFor[map[string]jsonValue]() {
		return // mNode.Attrs
	}
	switch v.Kind() {
	case reflect.Int64:
		v.SetInt(int64(*n) << 33) // beyond 32 bits: precision must survive
	case reflect.Float32:
		v.SetFloat(float64(*n) + 0.1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillManifest(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillManifest(v.Index(i), n)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fillManifest(v.Field(i), n)
		}
	default:
		fill(v, n)
	}
}

// TestOpAttrsCovered keeps allOpsModel, with int8 weights added, a
// complete test of the ops' attribute codecs in package graph: every field
// of every attribute struct of graph.Node (its fields but name, op,
// inputs, shape, relu, quant and the fused Clip, Clamp, which images do
// not store: TestEncodeRejects) is non-zero in some node, so the
// round-trip tests (checkSame in TestRoundTrip and TestInt8RoundTrip) see a
// field that an op's codec forgets to write or read.
func TestOpAttrsCovered(t *testing.T) {
	// seen has every leaf field, true where some node has a non-zero value.
	seen := map[string]bool{}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				v = reflect.New(v.Type().Elem()) // its fields count, as zero
			}
			walk(path, v.Elem())
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		default:
			seen[path] = seen[path] || !v.IsZero()
		}
	}
	notAttrs := map[string]bool{"Name": true, "Op": true, "Inputs": true, "Shape": true, "Relu": true, "Quant": true, "Clamp": true}
	m := allOpsModel12()
	quantize(m.Graph, false)
	nt := reflect.TypeFor[graph.Node]()
	for i := range nt.NumField() {
		f := nt.Field(i)
		if notAttrs[f.Name] {
			continue
		}
		for _, n := range m.Graph.Nodes {
			walk(f.Name, reflect.ValueOf(n).Elem().Field(i))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(seen)) {
		if !seen[path] {
			t.Errorf("graph.Node.%s is zero in every node of allOpsModel: give it a value there", path)
		}
	}
	if len(seen) < 30 {
		t.Fatalf("only %d attribute fields found", len(seen))
	}
}
