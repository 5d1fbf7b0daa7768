package serve_test

// These tests call the gRPC API through the client generated from the
// protocol's .proto (package oipgrpc) over a real loopback connection,
// and compare its answers with Session's and with the REST API's.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/serve"
	pb "github.com/edge-resnet/edge-resnet/serve/oipgrpc"
)

// grpcClient serves f's server over gRPC on a loopback port and returns
// a client of it.
func (f *fixture) grpcClient(t testing.TB) pb.GRPCInferenceServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := f.srv.GRPCServer()
	go g.Serve(ln)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); g.Stop() })
	return pb.NewGRPCInferenceServiceClient(conn)
}

// ctx is a context for one call, generous for a loaded machine.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestGRPCHealthAndMetadata(t *testing.T) {
	f := newFixture(t, serve.Options{})
	c := f.grpcClient(t)
	live, err := c.ServerLive(ctx(t), &pb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Errorf("ServerLive: %v %v", live, err)
	}
	ready, err := c.ServerReady(ctx(t), &pb.ServerReadyRequest{})
	if err != nil || !ready.Ready {
		t.Errorf("ServerReady: %v %v", ready, err)
	}
	for _, v := range []string{"", "1"} {
		mr, err := c.ModelReady(ctx(t), &pb.ModelReadyRequest{Name: modelName, Version: v})
		if err != nil || !mr.Ready {
			t.Errorf("ModelReady version %q: %v %v", v, mr, err)
		}
	}
	sm, err := c.ServerMetadata(ctx(t), &pb.ServerMetadataRequest{})
	if err != nil || sm.Name != "edge-resnet" || sm.Version != edgeresnet.Version || !slices.Contains(sm.Extensions, "top_k") {
		t.Errorf("ServerMetadata: %v %v", sm, err)
	}
	mm, err := c.ModelMetadata(ctx(t), &pb.ModelMetadataRequest{Name: modelName})
	if err != nil {
		t.Fatal(err)
	}
	in, out := mm.Inputs[0], mm.Outputs[0]
	if mm.Name != modelName || !slices.Equal(mm.Versions, []string{"1"}) || mm.Platform == "" || in.Name != f.input || in.Datatype != "FP32" ||
		!slices.Equal(in.Shape, []int64{-1, 1, 28, 28}) || out.Datatype != "FP32" || !slices.Equal(out.Shape, []int64{-1, 10}) {
		t.Errorf("ModelMetadata: %v", mm)
	}
	for _, call := range []func() error{
		func() error { _, err := c.ModelReady(ctx(t), &pb.ModelReadyRequest{Name: "nope"}); return err },
		func() error {
			_, err := c.ModelReady(ctx(t), &pb.ModelReadyRequest{Name: modelName, Version: "2"})
			return err
		},
		func() error { _, err := c.ModelMetadata(ctx(t), &pb.ModelMetadataRequest{Name: "nope"}); return err },
		func() error {
			_, err := c.ModelMetadata(ctx(t), &pb.ModelMetadataRequest{Name: modelName, Version: "0"})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.NotFound {
			t.Errorf("unknown model or version: %v, want NotFound", err)
		}
	}
	f.srv.Drain()
	ready, err = c.ServerReady(ctx(t), &pb.ServerReadyRequest{})
	if err != nil || ready.Ready {
		t.Errorf("ServerReady while draining: %v %v", ready, err)
	}
	_, err = c.ModelInfer(ctx(t), f.fp32Request(inputs(1)))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("ModelInfer while draining: %v, want Unavailable", err)
	}
}

// fp32Request is an inference request for samples x in fp32_contents.
func (f *fixture) fp32Request(x []float32) *pb.ModelInferRequest {
	return &pb.ModelInferRequest{ModelName: modelName, Id: "7", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: f.input, Datatype: "FP32", Shape: []int64{int64(len(x) / 784), 1, 28, 28},
		Contents: &pb.InferTensorContents{Fp32Contents: x},
	}}}
}

// TestGRPCInfer runs the same samples as typed contents and as
// raw_input_contents: the logits are Session.RunTensor's bit for bit
// (the REST API's, TestInferJSON), in contents or in raw_output_contents
// as the input came.
func TestGRPCInfer(t *testing.T) {
	for _, opt := range []serve.Options{{}, {MaxBatch: 4}} {
		t.Run(fmt.Sprintf("batch %d", opt.MaxBatch), func(t *testing.T) {
			f := newFixture(t, opt)
			c := f.grpcClient(t)
			x := inputs(3)
			want := f.reference(t, x)
			resp, err := c.ModelInfer(ctx(t), f.fp32Request(x))
			if err != nil {
				t.Fatal(err)
			}
			o := resp.Outputs[0]
			if resp.ModelName != modelName || resp.ModelVersion != "1" || resp.Id != "7" || len(resp.Outputs) != 1 ||
				o.Name != "output0" || o.Datatype != "FP32" || !slices.Equal(o.Shape, []int64{3, 10}) || len(resp.RawOutputContents) != 0 {
				t.Fatalf("response %v", resp)
			}
			checkBits(t, o.Contents.GetFp32Contents(), want)

			req := f.fp32Request(x)
			req.Inputs[0].Contents, req.RawInputContents = nil, [][]byte{le32(x)}
			req.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "output0"}}
			resp, err = c.ModelInfer(ctx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.RawOutputContents) != 1 || resp.Outputs[0].Contents != nil {
				t.Fatalf("a raw request's response: %v", resp)
			}
			checkBits(t, fromLE32(resp.RawOutputContents[0]), want)
		})
	}
}

// TestGRPCImageTopK sends an encoded PNG as BYTES with top_k, in
// bytes_contents and raw (a 4-byte length and the bytes): the logits
// are the model's own preprocessing and Run's, and the top-k outputs are
// the REST API's for the same image.
func TestGRPCImageTopK(t *testing.T) {
	f := newFixture(t, serve.Options{})
	c := f.grpcClient(t)
	png, want := f.sampleImage(t)
	params := map[string]*pb.InferParameter{"top_k": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 3}}}
	req := &pb.ModelInferRequest{ModelName: modelName, Parameters: params, Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: f.input, Datatype: "BYTES", Shape: []int64{1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{png}},
	}}}
	resp, err := c.ModelInfer(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*pb.ModelInferResponse_InferOutputTensor{}
	for _, o := range resp.Outputs {
		byName[o.Name] = o
	}
	checkBits(t, byName["output0"].Contents.GetFp32Contents(), want)

	rest := decodeObject(t, f.post(t, mustJSON(t, map[string]any{"parameters": map[string]any{"top_k": 3}, "inputs": []any{map[string]any{
		"name": f.input, "shape": []int{1}, "datatype": "BYTES", "data": []string{base64.StdEncoding.EncodeToString(png)}}}}), nil))
	for _, o := range rest["outputs"].([]any) {
		o := o.(map[string]any)
		g := byName[o["name"].(string)]
		if g == nil || g.Datatype != o["datatype"] || fmt.Sprint(g.Shape) != fmt.Sprint(o["shape"]) {
			t.Fatalf("output %v: gRPC's is %v", o["name"], g)
		}
		var got any
		switch g.Datatype {
		case "INT64":
			got = g.Contents.GetInt64Contents()
		case "BYTES":
			var s []string
			for _, b := range g.Contents.GetBytesContents() {
				s = append(s, string(b))
			}
			got = s
		default:
			got = g.Contents.GetFp32Contents()
		}
		if fmt.Sprint(got) != fmt.Sprint(o["data"]) {
			t.Errorf("output %s: gRPC %v, REST %v", o["name"], got, o["data"])
		}
	}
	if labels := byName[serve.TopKLabels].Contents.GetBytesContents(); len(labels) != 3 || string(labels[0]) != "Ankle boot" {
		t.Errorf("top_k_labels %q, want Ankle boot first", labels)
	}

	req.Inputs[0].Contents = nil
	req.RawInputContents = [][]byte{append(binary.LittleEndian.AppendUint32(nil, uint32(len(png))), png...)}
	req.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "output0"}, {Name: serve.TopKClasses}}
	resp, err = c.ModelInfer(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	checkBits(t, fromLE32(resp.RawOutputContents[0]), want)
	if cls := resp.RawOutputContents[1]; len(cls) != 24 || binary.LittleEndian.Uint64(cls) != uint64(byName[serve.TopKClasses].Contents.Int64Contents[0]) {
		t.Errorf("raw top_k_classes %v", cls)
	}
}

// TestGRPCErrors sends broken requests: each gets the gRPC code of the
// REST status (InvalidArgument for 400, NotFound for 404,
// ResourceExhausted for 413 and a full model), and the server keeps
// serving.
func TestGRPCErrors(t *testing.T) {
	f := newFixture(t, serve.Options{MaxBodyBytes: 1 << 20, Sessions: 1, Queue: -1})
	c := f.grpcClient(t)
	x := inputs(1)
	mod := func(edit func(r *pb.ModelInferRequest)) *pb.ModelInferRequest {
		r := f.fp32Request(x)
		edit(r)
		return r
	}
	param := func(p *pb.InferParameter) map[string]*pb.InferParameter {
		return map[string]*pb.InferParameter{"top_k": p}
	}
	for _, tc := range []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		want string
	}{
		{"unknown model", mod(func(r *pb.ModelInferRequest) { r.ModelName = "nope" }), codes.NotFound, `unknown model "nope"`},
		{"unknown version", mod(func(r *pb.ModelInferRequest) { r.ModelVersion = "2" }), codes.NotFound, `no version "2"`},
		{"no inputs", mod(func(r *pb.ModelInferRequest) { r.Inputs = nil }), codes.InvalidArgument, "0 inputs"},
		{"wrong input name", mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Name = "nope" }), codes.InvalidArgument, "the model's input is"},
		{"bad shape", mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 3, 28, 28} }), codes.InvalidArgument, "want [N,1,28,28]"},
		{"wrong datatype", mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Datatype = "INT8" }), codes.InvalidArgument, `datatype "INT8"`},
		{"short contents", mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents.Fp32Contents = x[:700] }), codes.InvalidArgument, "700 values, the shape needs 784"},
		{"contents in another field", mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents.Fp64Contents = []float64{1} }), codes.InvalidArgument, "fp32_contents, and only there"},
		{"no data", mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents = nil }), codes.InvalidArgument, "no data"},
		{"raw and contents", mod(func(r *pb.ModelInferRequest) { r.RawInputContents = [][]byte{le32(x)} }), codes.InvalidArgument, "both contents and raw_input_contents"},
		{"short raw", mod(func(r *pb.ModelInferRequest) {
			r.Inputs[0].Contents, r.RawInputContents = nil, [][]byte{le32(x)[:3000]}
		}), codes.InvalidArgument, "3000 bytes of binary data"},
		{"bad image", mod(func(r *pb.ModelInferRequest) {
			r.Inputs[0].Datatype, r.Inputs[0].Shape = "BYTES", []int64{1}
			r.Inputs[0].Contents = &pb.InferTensorContents{BytesContents: [][]byte{[]byte("hello")}}
		}), codes.InvalidArgument, "image 0"},
		{"string top_k", mod(func(r *pb.ModelInferRequest) {
			r.Parameters = param(&pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: "3"}})
		}), codes.InvalidArgument, "top_k"},
		{"zero top_k", mod(func(r *pb.ModelInferRequest) {
			r.Parameters = param(&pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{}})
		}), codes.InvalidArgument, "top_k 0"},
		{"unknown output", mod(func(r *pb.ModelInferRequest) {
			r.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits9"}}
		}), codes.InvalidArgument, `unknown output "logits9"`},
		{"too many samples", mod(func(r *pb.ModelInferRequest) {
			r.Inputs[0].Shape[0], r.Inputs[0].Contents = 2000, nil
			r.RawInputContents = [][]byte{{0}}
		}), codes.ResourceExhausted, "at most 1024 per request"},
		{"oversized message", mod(func(r *pb.ModelInferRequest) {
			r.Inputs[0].Contents, r.RawInputContents = nil, [][]byte{make([]byte, 2<<20)}
		}), codes.ResourceExhausted, "larger than max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ModelInfer(ctx(t), tc.req)
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
				t.Errorf("%v, want %v and a message containing %q", err, tc.code, tc.want)
			}
		})
	}
	// The model's one place held by a REST request still sending its
	// body: a gRPC request finds the model full at once.
	conn := startPartial(t, f, 100000, `{"inputs": [`)
	f.metricsEventually(t, []string{`edge_resnet_in_flight_requests{model="fashion",version="1"} 1`})
	if _, err := c.ModelInfer(ctx(t), f.fp32Request(x)); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "busy") {
		t.Errorf("a full model: %v, want ResourceExhausted saying busy", err)
	}
	conn.Close()
	f.eventually(t, "after the REST client went away")
	if _, err := c.ModelInfer(ctx(t), f.fp32Request(x)); err != nil {
		t.Errorf("a good request after the bad ones: %v", err)
	}
	// Counted as REST's are: the InvalidArgument cases above, the samples
	// over the limit and the full model; the oversized message never
	// reached the service (nor does a REST body refused on its length).
	f.metricsEventually(t, []string{
		`edge_resnet_inference_requests_total{code="InvalidArgument",model="fashion",protocol="grpc",version="1"} 13`,
		`edge_resnet_inference_errors_total{code="ResourceExhausted",model="fashion",protocol="grpc",version="1"} 2`,
		`edge_resnet_inference_requests_total{code="OK",model="fashion",protocol="grpc",version="1"} 1`,
	})
}

// BenchmarkProtocols times one request of 1 sample, one after another,
// on the built-in model (small: the protocols' costs show): REST JSON,
// REST binary data, gRPC typed contents and gRPC raw contents.
func BenchmarkProtocols(b *testing.B) {
	f := newFixture(b, serve.Options{Sessions: 1, ThreadsPerSession: 1})
	c := f.grpcClient(b)
	x := inputs(1)
	jsonBody := mustJSON(b, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": x}}})
	binBody, hdr := binaryBody(b, map[string]any{"parameters": map[string]any{"binary_data_output": true}, "inputs": []any{map[string]any{
		"name": f.input, "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": 3136}}}}, le32(x))
	raw := f.fp32Request(x)
	raw.Inputs[0].Contents, raw.RawInputContents = nil, [][]byte{le32(x)}
	for _, bc := range []struct {
		name string
		call func() error
	}{
		{"rest-json", func() error { return restCall(f, jsonBody, nil) }},
		{"rest-binary", func() error { return restCall(f, binBody, hdr) }},
		{"grpc-contents", func() error { _, err := c.ModelInfer(context.Background(), f.fp32Request(x)); return err }},
		{"grpc-raw", func() error { _, err := c.ModelInfer(context.Background(), raw); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := bc.call(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func restCall(f *fixture, body []byte, header map[string]string) error {
	req, err := http.NewRequest("POST", f.url+"/v2/models/"+modelName+"/infer", bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("status %d, %v", resp.StatusCode, err)
	}
	return nil
}
