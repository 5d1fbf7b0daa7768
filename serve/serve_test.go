package serve_test

// These tests speak the protocol as a client would, from the text of the
// Open Inference Protocol and its binary extension: plain net/http
// requests and generic JSON maps, never the server's own types.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/serve"
)

const modelName = "fashion"

// fixture is a server on the built-in model (28x28x1 NCHW input, 10
// classes) and a session of its own for reference outputs.
type fixture struct {
	url   string
	m     *edgeresnet.Model
	ref   *edgeresnet.Session
	input string // the model's input name, from its metadata
	srv   *serve.Server
}

func newFixture(t testing.TB, opt serve.Options) *fixture {
	t.Helper()
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	opt.ThreadsPerSession = max(opt.ThreadsPerSession, 1)
	srv, err := serve.New([]serve.Named{{Name: modelName, Model: m}}, opt)
	if err != nil {
		t.Fatal(err)
	}
	// The server's own http.Server (HTTPServer: its timeouts, unlike
	// httptest's), on a port of 127.0.0.1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer(ln.Addr().String())
	go hs.Serve(ln)
	ref, err := m.NewSession(edgeresnet.WithThreads(1), edgeresnet.WithBatch(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close(); srv.Close(); ref.Close(); m.Close() })
	f := &fixture{url: "http://" + ln.Addr().String(), m: m, ref: ref, srv: srv}
	_, meta := f.getJSON(t, "/v2/models/"+modelName)
	f.input = meta["inputs"].([]any)[0].(map[string]any)["name"].(string)
	return f
}

func (f *fixture) getJSON(t testing.TB, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, decodeObject(t, resp)
}

func decodeObject(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("response body is not a JSON object: %v", err)
	}
	return v
}

// post sends an infer request and returns the response.
func (f *fixture) post(t *testing.T, body []byte, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", f.url+"/v2/models/"+modelName+"/infer", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// inputs returns n deterministic samples of the model's input.
func inputs(n int) []float32 {
	x := make([]float32, n*28*28)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * 2
	}
	return x
}

// reference is what Session.RunTensor gives for the same samples.
func (f *fixture) reference(t *testing.T, x []float32) []float32 {
	t.Helper()
	out, err := f.ref.RunTensor([]int{len(x) / 784, 1, 28, 28}, x)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(out)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHealthAndMetadata(t *testing.T) {
	f := newFixture(t, serve.Options{})
	for _, tc := range []struct {
		path string
		want map[string]any
	}{
		{"/v2/health/live", map[string]any{"live": true}},
		{"/v2/health/ready", map[string]any{"ready": true}},
		{"/v2/models/" + modelName + "/ready", map[string]any{"name": modelName, "ready": true}},
	} {
		status, got := f.getJSON(t, tc.path)
		if status != 200 || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("GET %s: %d %v, want 200 %v", tc.path, status, got, tc.want)
		}
	}
	status, meta := f.getJSON(t, "/v2")
	if status != 200 || meta["name"] != "edge-resnet" || meta["version"] != edgeresnet.Version ||
		!slices.Contains(meta["extensions"].([]any), any("binary_tensor_data")) {
		t.Errorf("GET /v2: %d %v", status, meta)
	}
	status, meta = f.getJSON(t, "/v2/models/"+modelName)
	in := meta["inputs"].([]any)[0].(map[string]any)
	out := meta["outputs"].([]any)[0].(map[string]any)
	if status != 200 || meta["name"] != modelName || meta["platform"] == "" ||
		in["datatype"] != "FP32" || fmt.Sprint(in["shape"]) != "[-1 1 28 28]" ||
		out["datatype"] != "FP32" || fmt.Sprint(out["shape"]) != "[-1 10]" || out["name"] == "" {
		t.Errorf("GET /v2/models/%s: %d %v", modelName, status, meta)
	}
}

// TestInferJSON sends the specification's example request, adapted to
// the model's input, flat and nested, and checks the response's shape
// and that the logits are Session.RunTensor's, bit for bit.
func TestInferJSON(t *testing.T) {
	f := newFixture(t, serve.Options{})
	x := inputs(2)
	want := f.reference(t, x)
	nested := make([][][][]float32, 2)
	for n := range nested {
		nested[n] = [][][]float32{make([][]float32, 28)}
		for h := range 28 {
			nested[n][0][h] = x[n*784+h*28 : n*784+h*28+28]
		}
	}
	for _, data := range []any{x, nested} {
		body := mustJSON(t, map[string]any{
			"id":      "42",
			"inputs":  []any{map[string]any{"name": f.input, "shape": []int{2, 1, 28, 28}, "datatype": "FP32", "data": data}},
			"outputs": []any{map[string]any{"name": "output0"}},
		})
		resp := f.post(t, body, nil)
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var got struct {
			ModelName string `json:"model_name"`
			ID        string `json:"id"`
			Outputs   []struct {
				Name     string    `json:"name"`
				Shape    []int     `json:"shape"`
				Datatype string    `json:"datatype"`
				Data     []float32 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.ModelName != modelName || got.ID != "42" || len(got.Outputs) != 1 {
			t.Fatalf("response %+v", got)
		}
		o := got.Outputs[0]
		if o.Name != "output0" || !slices.Equal(o.Shape, []int{2, 10}) || o.Datatype != "FP32" {
			t.Errorf("output %s %v %s, want output0 [2 10] FP32", o.Name, o.Shape, o.Datatype)
		}
		checkBits(t, o.Data, want)
	}
}

func checkBits(t *testing.T, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("value %d is %v, want %v (bit for bit)", i, got[i], want[i])
		}
	}
}

// binaryBody builds a request of the binary extension: JSON, then data.
func binaryBody(t testing.TB, req any, data []byte) ([]byte, map[string]string) {
	j := mustJSON(t, req)
	return append(j, data...), map[string]string{
		"Inference-Header-Content-Length": strconv.Itoa(len(j)),
		"Content-Type":                    "application/octet-stream",
	}
}

// splitBinary splits a binary-extension response into its JSON and data.
func splitBinary(t *testing.T, resp *http.Response) (map[string]any, []byte) {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v: %s", resp.StatusCode, err, b)
	}
	n, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length"))
	if err != nil || n > len(b) {
		t.Fatalf("Inference-Header-Content-Length %q for %d bytes", resp.Header.Get("Inference-Header-Content-Length"), len(b))
	}
	var v map[string]any
	if err := json.Unmarshal(b[:n], &v); err != nil {
		t.Fatal(err)
	}
	return v, b[n:]
}

func le32(x []float32) []byte {
	var b []byte
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func fromLE32(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// TestInferBinary sends the input as binary data and asks for binary
// outputs, both ways the extension allows (per output and per request).
func TestInferBinary(t *testing.T) {
	f := newFixture(t, serve.Options{})
	x := inputs(3)
	want := f.reference(t, x)
	for _, outputs := range []map[string]any{
		{"outputs": []any{map[string]any{"name": "output0", "parameters": map[string]any{"binary_data": true}}}},
		{"parameters": map[string]any{"binary_data_output": true}},
	} {
		req := map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{3, 1, 28, 28}, "datatype": "FP32",
			"parameters": map[string]any{"binary_data_size": 4 * len(x)}}}}
		for k, v := range outputs {
			req[k] = v
		}
		body, hdr := binaryBody(t, req, le32(x))
		resp := f.post(t, body, hdr)
		meta, data := splitBinary(t, resp)
		o := meta["outputs"].([]any)[0].(map[string]any)
		size := o["parameters"].(map[string]any)["binary_data_size"]
		if _, has := o["data"]; has || size != float64(len(data)) || fmt.Sprint(o["shape"]) != "[3 10]" {
			t.Fatalf("output %v with %d bytes of binary data", o, len(data))
		}
		checkBits(t, fromLE32(data), want)
	}
}

// TestInferTopK checks the top_k parameter's outputs against TopK.
func TestInferTopK(t *testing.T) {
	f := newFixture(t, serve.Options{})
	x := inputs(2)
	want := f.reference(t, x)
	body := mustJSON(t, map[string]any{
		"parameters": map[string]any{"top_k": 3},
		"inputs":     []any{map[string]any{"name": f.input, "shape": []int{2, 1, 28, 28}, "datatype": "FP32", "data": x}},
	})
	resp := f.post(t, body, nil)
	got := decodeObject(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, got)
	}
	byName := map[string]map[string]any{}
	for _, o := range got["outputs"].([]any) {
		byName[o.(map[string]any)["name"].(string)] = o.(map[string]any)
	}
	for s := range 2 {
		top := f.ref.TopK(want[s*10:(s+1)*10], 3)
		for i, p := range top {
			c := byName["top_k_classes"]["data"].([]any)[s*3+i]
			pr := byName["top_k_probabilities"]["data"].([]any)[s*3+i]
			l := byName["top_k_labels"]["data"].([]any)[s*3+i]
			if c != float64(p.Class) || float32(pr.(float64)) != p.Prob || l != p.Label {
				t.Errorf("sample %d rank %d: %v %v %v, want %+v", s, i, c, pr, l, p)
			}
		}
	}
	for name, dt := range map[string]string{"output0": "FP32", "top_k_classes": "INT64", "top_k_probabilities": "FP32", "top_k_labels": "BYTES"} {
		if o := byName[name]; o == nil || o["datatype"] != dt {
			t.Errorf("output %s: %v, want datatype %s", name, o, dt)
		}
	}
}

// sampleImage is a PNG and its logits by the model's own preprocessing
// and Run.
func (f *fixture) sampleImage(t *testing.T) ([]byte, []float32) {
	t.Helper()
	const path = "../testdata/samples/0000_ankle_boot.png"
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := preprocess.DecodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ref.Preprocess(img); err != nil {
		t.Fatal(err)
	}
	out, err := f.ref.RunBatch(1)
	if err != nil {
		t.Fatal(err)
	}
	return png, slices.Clone(out)
}

// TestInferImage sends an encoded PNG as a BYTES input, base64 in JSON
// and raw in binary data, and checks the logits against the model's own
// preprocessing and Run.
func TestInferImage(t *testing.T) {
	f := newFixture(t, serve.Options{})
	png, want := f.sampleImage(t)
	in := map[string]any{"name": f.input, "shape": []int{1}, "datatype": "BYTES", "data": []string{base64.StdEncoding.EncodeToString(png)}}
	resp := f.post(t, mustJSON(t, map[string]any{"inputs": []any{in}, "parameters": map[string]any{"binary_data_output": true}}), nil)
	_, data := splitBinary(t, resp)
	checkBits(t, fromLE32(data), want)

	elem := append(binary.LittleEndian.AppendUint32(nil, uint32(len(png))), png...)
	elems := append(slices.Clone(elem), elem...)
	delete(in, "data")
	in["shape"], in["parameters"] = []int{2}, map[string]any{"binary_data_size": len(elems)}
	body, hdr := binaryBody(t, map[string]any{"inputs": []any{in}, "parameters": map[string]any{"binary_data_output": true}}, elems)
	_, data = splitBinary(t, f.post(t, body, hdr))
	checkBits(t, fromLE32(data), append(slices.Clone(want), want...))
}

// TestInferErrors sends broken requests: each gets its 4xx status and an
// {"error": ...} naming the problem, and the server keeps serving.
func TestInferErrors(t *testing.T) {
	f := newFixture(t, serve.Options{MaxBodyBytes: 1 << 20})
	x := inputs(1)
	input := func(kv ...any) map[string]any {
		in := map[string]any{"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": x}
		for i := 0; i < len(kv); i += 2 {
			in[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"inputs": []any{in}}
	}
	js := func(v any) []byte { return mustJSON(t, v) }
	bin, hdr := binaryBody(t, input("data", nil, "parameters", map[string]any{"binary_data_size": 3136}), le32(x)[:3000])
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		header             map[string]string
		status             int
		want               string
	}{
		{"invalid JSON", "POST", "", []byte(`{"inputs": [`), nil, 400, "invalid inference request JSON"},
		{"not an object", "POST", "", []byte(`[1,2]`), nil, 400, "invalid inference request JSON"},
		{"no inputs", "POST", "", []byte(`{}`), nil, 400, "0 inputs"},
		{"wrong input name", "POST", "", js(input("name", "nope")), nil, 400, "the model's input is"},
		{"wrong shape", "POST", "", js(input("shape", []int{1, 3, 28, 28})), nil, 400, "want [N,1,28,28]"},
		{"zero batch", "POST", "", js(input("shape", []int{0, 1, 28, 28})), nil, 400, "want [N,1,28,28]"},
		{"negative dim", "POST", "", js(input("shape", []int{-1, 1, 28, 28})), nil, 400, "want [N,1,28,28]"},
		{"wrong datatype", "POST", "", js(input("datatype", "INT8")), nil, 400, `datatype "INT8"`},
		{"short data", "POST", "", js(input("data", x[:700])), nil, 400, "700 values, the shape needs 784"},
		{"long data", "POST", "", js(input("data", append(slices.Clone(x), 1))), nil, 400, "785 values"},
		{"string in data", "POST", "", js(input("data", append([]any{[]any{1, "a"}}, make([]any, 782)...))), nil, 400, "value 1"},
		{"float64 overflow", "POST", "", js(input("data", append([]any{1e39}, make([]any, 783)...))), nil, 400, "not an FP32 number"},
		{"no data", "POST", "", js(input("data", nil)), nil, 400, "no data"},
		{"short binary", "POST", "", bin, hdr, 400, "binary_data_size 3136, but 3000 bytes"},
		{"header too long", "POST", "", []byte(`{}`), map[string]string{"Inference-Header-Content-Length": "99"}, 400, "Inference-Header-Content-Length"},
		{"binary without size", "POST", "", append(js(input()), 1, 2), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(js(input())))}, 400, "no binary_data_size"},
		{"bad image", "POST", "", js(input("shape", []int{1}, "datatype", "BYTES", "data", []string{"aGVsbG8="})), nil, 400, "image 0"},
		{"bad base64", "POST", "", js(input("shape", []int{1}, "datatype", "BYTES", "data", []string{"%%%"})), nil, 400, "not base64"},
		{"bad top_k", "POST", "", js(map[string]any{"parameters": map[string]any{"top_k": "x"}, "inputs": input()["inputs"]}), nil, 400, "top_k"},
		{"unknown output", "POST", "", js(map[string]any{"outputs": []any{map[string]any{"name": "logits9"}}, "inputs": input()["inputs"]}), nil, 400, `unknown output "logits9"`},
		{"top_k output without top_k", "POST", "", js(map[string]any{"outputs": []any{map[string]any{"name": "top_k_labels"}}, "inputs": input()["inputs"]}), nil, 400, "needs the request parameter top_k"},
		{"oversized body", "POST", "", make([]byte, 2<<20), nil, 413, "limit"},
		{"unknown model", "POST", "/v2/models/nope/infer", js(input()), nil, 404, `unknown model "nope"`},
		{"unknown model metadata", "GET", "/v2/models/nope", nil, nil, 404, `unknown model "nope"`},
		{"unknown version", "GET", "/v2/models/" + modelName + "/versions/2", nil, nil, 404, `no version "2" (versions: 1)`},
		{"unknown version infer", "POST", "/v2/models/" + modelName + "/versions/0/infer", js(input()), nil, 404, `no version "0"`},
		{"unknown path", "GET", "/v1/models", nil, nil, 404, "no endpoint"},
		{"GET infer", "GET", "/v2/models/" + modelName + "/infer", nil, nil, 405, "takes POST"},
		{"POST metadata", "POST", "/v2", nil, nil, 405, "takes GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v2/models/" + modelName + "/infer"
			}
			req, _ := http.NewRequest(tc.method, f.url+path, bytes.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := decodeObject(t, resp)
			msg, _ := got["error"].(string)
			if resp.StatusCode != tc.status || len(got) != 1 || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %v, want %d and an error containing %q", resp.StatusCode, got, tc.status, tc.want)
			}
		})
	}
	resp := f.post(t, mustJSON(t, input()), nil)
	if resp.StatusCode != 200 {
		t.Errorf("a good request after the bad ones: status %d", resp.StatusCode)
	}
}

// TestOversizedChunkedBody: a body without a Content-Length is cut at
// the limit too.
func TestOversizedChunkedBody(t *testing.T) {
	f := newFixture(t, serve.Options{MaxBodyBytes: 1000})
	resp, err := http.Post(f.url+"/v2/models/"+modelName+"/infer", "application/json", io.MultiReader(strings.NewReader(`{"inputs": [`), strings.NewReader(strings.Repeat(" ", 5000))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := decodeObject(t, resp); resp.StatusCode != 413 || got["error"] == nil {
		t.Errorf("%d %v, want 413 with an error", resp.StatusCode, got)
	}
}

// startPartial sends an infer request's headers and part of its body
// over a raw connection, leaving the request in flight.
func startPartial(t *testing.T, f *fixture, declared int, sent string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /v2/models/%s/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", modelName, declared, sent)
	return c
}

// eventually retries a good request until it succeeds: the server sees
// a client go away asynchronously.
func (f *fixture) eventually(t *testing.T, what string) {
	t.Helper()
	body := mustJSON(t, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": inputs(1)}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post(f.url+"/v2/models/"+modelName+"/infer", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no good response within 10 s (last: %v %v)", what, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQueueFullAndDisconnect: with no queue, requests whose bodies are
// still coming hold the model's places (one per session, or per sample
// of a session's batch when batching); another gets 429 at once; when
// the first clients disconnect mid-body the places are free again.
func TestQueueFullAndDisconnect(t *testing.T) {
	for _, opt := range []serve.Options{{Sessions: 1, Queue: -1}, {Sessions: 1, Queue: -1, MaxBatch: 3}} {
		t.Run(fmt.Sprintf("batch %d", opt.MaxBatch), func(t *testing.T) {
			f := newFixture(t, opt)
			var conns []net.Conn
			for range opt.Places() {
				conns = append(conns, startPartial(t, f, 100000, `{"inputs": [`))
			}
			// Probing while they are admitted could take a place at the
			// moment one of them asks: wait for them, then probe once.
			f.metricsEventually(t, []string{fmt.Sprintf(`edge_resnet_in_flight_requests{model="fashion",version="1"} %d`, opt.Places())})
			resp := f.post(t, []byte(`{}`), nil)
			got := decodeObject(t, resp)
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(got["error"].(string), "busy") {
				t.Errorf("%d %v, Retry-After %q, want a 429 saying busy", resp.StatusCode, got, resp.Header.Get("Retry-After"))
			}
			for _, c := range conns {
				c.Close()
			}
			f.eventually(t, "after clients disconnected mid-body")
		})
	}
}

// TestInferBatched sends concurrent requests (FP32 of 1 to 5 samples,
// JSON and binary, and images) to a server that batches up to 4 samples:
// each response's logits are Session.RunTensor's bit for bit.
func TestInferBatched(t *testing.T) {
	f := newFixture(t, serve.Options{Sessions: 1, MaxBatch: 4, BatchTimeout: 20 * time.Millisecond})
	png, wantImage := f.sampleImage(t)
	type call struct {
		body []byte
		hdr  map[string]string
		want []float32
	}
	var calls []call
	for i, n := range []int{1, 2, 5, 1, 3, 1} {
		x := inputs(n + i)[i*784:]
		var want []float32
		for s := range n {
			want = append(want, f.reference(t, x[s*784:(s+1)*784])...)
		}
		in := map[string]any{"name": f.input, "shape": []int{n, 1, 28, 28}, "datatype": "FP32"}
		req := map[string]any{"inputs": []any{in}, "parameters": map[string]any{"binary_data_output": true}}
		if i%2 == 0 {
			in["data"] = x
			calls = append(calls, call{mustJSON(t, req), nil, want})
			continue
		}
		in["parameters"] = map[string]any{"binary_data_size": 4 * len(x)}
		body, hdr := binaryBody(t, req, le32(x))
		calls = append(calls, call{body, hdr, want})
	}
	in := map[string]any{"name": f.input, "shape": []int{1}, "datatype": "BYTES", "data": []string{base64.StdEncoding.EncodeToString(png)}}
	calls = append(calls, call{mustJSON(t, map[string]any{"inputs": []any{in}, "parameters": map[string]any{"binary_data_output": true}}), nil, wantImage})
	got := make([][]float32, len(calls))
	done := make(chan int)
	for i, c := range calls {
		go func() {
			req, _ := http.NewRequest("POST", f.url+"/v2/models/"+modelName+"/infer", bytes.NewReader(c.body))
			for k, v := range c.hdr {
				req.Header.Set(k, v)
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length")); err == nil && resp.StatusCode == 200 && n <= len(b) {
					got[i] = fromLE32(b[n:])
				}
			}
			done <- i
		}()
	}
	for range calls {
		<-done
	}
	for i, c := range calls {
		if got[i] == nil {
			t.Fatalf("request %d failed", i)
		}
		checkBits(t, got[i], c.want)
	}
}

// TestDrain: a draining server is not ready and takes no new inference.
func TestDrain(t *testing.T) {
	f := newFixture(t, serve.Options{})
	f.srv.Drain()
	status, got := f.getJSON(t, "/v2/health/ready")
	if status != 503 || got["ready"] != false {
		t.Errorf("ready while draining: %d %v", status, got)
	}
	resp := f.post(t, []byte(`{}`), nil)
	if got := decodeObject(t, resp); resp.StatusCode != 503 || got["error"] == nil {
		t.Errorf("infer while draining: %d %v", resp.StatusCode, got)
	}
	if status, got := f.getJSON(t, "/v2/health/live"); status != 200 || got["live"] != true {
		t.Errorf("live while draining: %d %v", status, got)
	}
}

// TestMetrics: /metrics counts requests by model and status, errors,
// latencies and batch sizes, and shows nothing queued or in flight once
// the requests are answered; a second server's counts are its own.
func TestMetrics(t *testing.T) {
	for _, opt := range []serve.Options{{}, {MaxBatch: 4}} {
		t.Run(fmt.Sprintf("batch %d", opt.MaxBatch), func(t *testing.T) {
			f := newFixture(t, opt)
			good := mustJSON(t, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{3, 1, 28, 28}, "datatype": "FP32", "data": inputs(3)}}})
			for range 2 {
				if resp := f.post(t, good, nil); resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			if resp := f.post(t, []byte(`{}`), nil); resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			// The handler counts after its response is sent: poll.
			f.metricsEventually(t, []string{
				`edge_resnet_inference_requests_total{code="200",model="fashion",protocol="rest",version="1"} 2`,
				`edge_resnet_inference_requests_total{code="400",model="fashion",protocol="rest",version="1"} 1`,
				`edge_resnet_inference_errors_total{code="400",model="fashion",protocol="rest",version="1"} 1`,
				`edge_resnet_inference_duration_seconds_count{model="fashion",protocol="rest",version="1"} 3`,
				`edge_resnet_batch_size_sum{model="fashion",version="1"} 6`,
				`edge_resnet_queue_depth{model="fashion",version="1"} 0`,
				`edge_resnet_in_flight_requests{model="fashion",version="1"} 0`,
				`go_goroutines `,
			})
			if other := newFixture(t, opt).metrics(t); strings.Contains(other, "edge_resnet_inference_requests_total{") {
				t.Errorf("a new server counts another's requests")
			}
		})
	}
}

// metricsEventually waits until /metrics has every line in want.
func (f *fixture) metricsEventually(t *testing.T, want []string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := f.metrics(t)
		missing := slices.IndexFunc(want, func(w string) bool { return !strings.Contains(got, "\n"+w) })
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no line %q:\n%s", want[missing], got)
		}
	}
}

func (f *fixture) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// logLines reads the JSON log lines in file (the handlers write it, a
// file being safe to write from goroutines while the test reads).
func logLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v map[string]any
		if json.Unmarshal([]byte(l), &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// TestRequestLogs: one JSON line per request, at debug for a success
// and at warn with the error for a failure; at level info only the
// failure is logged.
func TestRequestLogs(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // "LEVEL status", in order
	}{
		{slog.LevelDebug, []string{"DEBUG 200", "WARN 400"}},
		{slog.LevelInfo, []string{"WARN 400"}},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "log")
			w, err := os.Create(file)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			f := newFixture(t, serve.Options{Logger: slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: tc.level}))})
			good := mustJSON(t, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": inputs(1)}}})
			f.post(t, good, nil)
			f.post(t, []byte(`{}`), nil)
			var got []string
			for deadline := time.Now().Add(5 * time.Second); len(got) < len(tc.want) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond) // the handler logs after its response
				got = nil
				for _, l := range logLines(t, file) {
					got = append(got, fmt.Sprint(l["level"], " ", l["status"]))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("log lines %v, want %v", got, tc.want)
			}
			lines := logLines(t, file)
			last := lines[slices.IndexFunc(lines, func(l map[string]any) bool { return l["level"] == "WARN" })]
			if last["model"] != modelName || last["msg"] != "inference" || !strings.Contains(fmt.Sprint(last["error"]), "0 inputs") || last["duration"] == nil {
				t.Errorf("error line %v", last)
			}
		})
	}
}

// TestReload swaps the model for its int8 version while a request is in
// flight: the request finishes on the old model (its logits), later
// requests run on the new one, and the old sessions close only after
// the request ends. Failed reloads leave the model served.
func TestReload(t *testing.T) {
	m8, err := edgeresnet.Load("../testdata/int8/resnet20_fashion_mnist_int8.ern")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m8.Close() })
	ref8, err := m8.NewSession(edgeresnet.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer ref8.Close()
	f := newFixture(t, serve.Options{Sessions: 1})
	x := inputs(1)
	want32 := f.reference(t, x)
	out, err := ref8.RunTensor([]int{1, 1, 28, 28}, x)
	if err != nil {
		t.Fatal(err)
	}
	want8 := slices.Clone(out)
	if sameLogits(want8, want32) {
		t.Fatal("the int8 model's logits are the fp32 model's: the test cannot tell them apart")
	}
	body := mustJSON(t, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": x}}})
	c := startPartial(t, f, len(body), string(body[:len(body)/2]))
	defer c.Close()
	f.metricsEventually(t, []string{`edge_resnet_in_flight_requests{model="fashion",version="1"} 1`})

	oldClosed, err := f.srv.Reload(serve.Named{Name: modelName, Model: m8})
	if err != nil {
		t.Fatal(err)
	}
	checkBits(t, f.logits(t, body), want8)
	select {
	case <-oldClosed:
		t.Fatal("the old model's sessions closed while a request held them")
	default:
	}
	c.Write(body[len(body)/2:])
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Outputs []struct{ Data []float32 } }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || len(got.Outputs) != 1 {
		t.Fatalf("the in-flight request: %d %v", resp.StatusCode, err)
	}
	checkBits(t, got.Outputs[0].Data, want32)
	select {
	case <-oldClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("the old model's sessions did not close after its last request")
	}

	for _, nm := range []serve.Named{{Name: "nope", Model: f.m}, {Name: modelName}} {
		if _, err := f.srv.Reload(nm); err == nil {
			t.Errorf("Reload(%q, %v): no error", nm.Name, nm.Model)
		}
	}
	checkBits(t, f.logits(t, body), want8)
}

func sameLogits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// logits posts an infer request and returns its first output.
func (f *fixture) logits(t *testing.T, body []byte) []float32 {
	t.Helper()
	resp := f.post(t, body, nil)
	var got struct{ Outputs []struct{ Data []float32 } }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || len(got.Outputs) == 0 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	return got.Outputs[0].Data
}

// TestVersions serves the fp32 model as version 1 and the int8 one as
// version 2 of one name: a request without a version runs on 2, the
// greatest, the /versions/V paths on the version named, metadata lists
// both, and reloading version 1 leaves version 2 alone.
func TestVersions(t *testing.T) {
	m32, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	m8, err := edgeresnet.Load("../testdata/int8/resnet20_fashion_mnist_int8.ern")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m32.Close(); m8.Close() })
	srv, err := serve.New([]serve.Named{{Name: modelName, Version: "2", Model: m8}, {Name: modelName, Model: m32}},
		serve.Options{Sessions: 1, ThreadsPerSession: 1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	f := &fixture{url: hs.URL, m: m32, srv: srv}
	want := map[string][]float32{"1": refLogits(t, m32, inputs(1)), "2": refLogits(t, m8, inputs(1))}
	if sameLogits(want["1"], want["2"]) {
		t.Fatal("the int8 model's logits are the fp32 model's: the test cannot tell them apart")
	}
	_, meta := f.getJSON(t, "/v2/models/"+modelName)
	f.input = meta["inputs"].([]any)[0].(map[string]any)["name"].(string)
	body := mustJSON(t, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": inputs(1)}}})
	for _, tc := range []struct{ path, version string }{{"", "2"}, {"/versions/1", "1"}, {"/versions/2", "2"}} {
		if status, got := f.getJSON(t, "/v2/models/"+modelName+tc.path); status != 200 || fmt.Sprint(got["versions"]) != "[1 2]" {
			t.Errorf("GET %s: %d %v, want versions [1 2]", tc.path, status, got)
		}
		if status, got := f.getJSON(t, "/v2/models/"+modelName+tc.path+"/ready"); status != 200 || got["ready"] != true {
			t.Errorf("GET %s/ready: %d %v", tc.path, status, got)
		}
		version, logits := f.versionLogits(t, tc.path, body)
		if version != tc.version {
			t.Errorf("POST %s/infer ran on version %q, want %q", tc.path, version, tc.version)
		}
		checkBits(t, logits, want[tc.version])
	}
	c := f.grpcClient(t)
	for _, tc := range []struct{ asked, version string }{{"", "2"}, {"1", "1"}, {"2", "2"}} {
		req := f.fp32Request(inputs(1))
		req.ModelVersion = tc.asked
		resp, err := c.ModelInfer(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ModelVersion != tc.version {
			t.Errorf("gRPC model_version %q ran on version %q, want %q", tc.asked, resp.ModelVersion, tc.version)
		}
		checkBits(t, resp.Outputs[0].Contents.GetFp32Contents(), want[tc.version])
	}
	if _, err := srv.Reload(serve.Named{Name: modelName, Model: m8}); err != nil {
		t.Fatal(err)
	}
	_, logits := f.versionLogits(t, "/versions/1", body)
	checkBits(t, logits, want["2"])
	if _, err := srv.Reload(serve.Named{Name: modelName, Version: "3", Model: m8}); err == nil || !strings.Contains(err.Error(), `no version "3"`) {
		t.Errorf("Reload of an unknown version: %v", err)
	}
	if got := srv.Versions(modelName); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("Versions %v", got)
	}
}

func refLogits(t *testing.T, m *edgeresnet.Model, x []float32) []float32 {
	t.Helper()
	s, err := m.NewSession(edgeresnet.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.RunTensor([]int{len(x) / 784, 1, 28, 28}, x)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(out)
}

// versionLogits posts body to /v2/models/NAME{path}/infer and returns
// the response's model_version and first output.
func (f *fixture) versionLogits(t *testing.T, path string, body []byte) (string, []float32) {
	t.Helper()
	resp, err := http.Post(f.url+"/v2/models/"+modelName+path+"/infer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		ModelVersion string `json:"model_version"`
		Outputs      []struct{ Data []float32 }
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || len(got.Outputs) == 0 {
		t.Fatalf("POST %s/infer: status %d, %v", path, resp.StatusCode, err)
	}
	return got.ModelVersion, got.Outputs[0].Data
}

func TestCompareVersions(t *testing.T) {
	got := []string{"b", "10", "2", "a", "1", "v10", "v9"}
	slices.SortFunc(got, serve.CompareVersions)
	if want := []string{"1", "2", "10", "a", "b", "v10", "v9"}; !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
	for _, v := range []string{"", "..", "a/b", "1 2", strings.Repeat("9", 129)} {
		if serve.CheckVersion(v) == nil {
			t.Errorf("CheckVersion(%q): no error", v)
		}
	}
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := serve.New([]serve.Named{{Name: "a", Model: m}, {Name: "a", Version: "1", Model: m}}, serve.Options{Sessions: 1, ThreadsPerSession: 1}); err == nil {
		t.Error("two versions 1 of one name: no error")
	}
}
