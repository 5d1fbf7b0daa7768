package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/edge-resnet/edge-resnet/serve/oipgrpc"
)

// TestServeGRPCVersions runs `serve --grpc-addr` with two versions of a
// model (-m fm=fp32 -m fm@2=int8) and calls it through the generated
// gRPC client: no version runs on 2, each version gives `classify
// --logits`'s logits for its file, REST's /versions/1 path answers too,
// SIGHUP reloads version 2 alone, and a gRPC request in flight when
// SIGTERM comes is answered before the process exits 0.
func TestServeGRPCVersions(t *testing.T) {
	const fp32, int8 = "../../models/resnet20_fashion_mnist.ern", "../../testdata/int8/resnet20_fashion_mnist_int8.ern"
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.31)) * 1.3
	}
	want := map[string][]float32{"1": classifyLogits(t, fp32, x), "2": classifyLogits(t, int8, x)}
	v2 := filepath.Join(t.TempDir(), "v2.ern")
	b, err := os.ReadFile(int8)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, v2, b)
	// A batch waits up to 1 s for a second request: a lone request stays
	// in flight long enough to be caught by SIGTERM.
	proc, addr, exit, logs := startServe(t, "-m", "fm="+fp32, "-m", "fm@2="+v2, "--grpc-addr", "127.0.0.1:0",
		"--sessions", "1", "--threads-per-session", "1", "--max-batch", "2", "--batch-timeout", "1s")
	_, grpcAddr, _ := strings.Cut(logs.String(), " grpc_addr=")
	grpcAddr, _, _ = strings.Cut(grpcAddr, "\n")
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if mm, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "fm"}); err != nil || !slices.Equal(mm.Versions, []string{"1", "2"}) {
		t.Fatalf("ModelMetadata: %v %v", mm, err)
	}
	infer := func(version string) (string, []float32, error) {
		resp, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: "fm", ModelVersion: version, Inputs: []*pb.ModelInferRequest_InferInputTensor{{
			Name: "input", Datatype: "FP32", Shape: []int64{1, 1, 28, 28}, Contents: &pb.InferTensorContents{Fp32Contents: x}}}})
		if err != nil {
			return "", nil, err
		}
		return resp.ModelVersion, resp.Outputs[0].Contents.GetFp32Contents(), nil
	}
	for _, tc := range []struct{ asked, ran string }{{"", "2"}, {"1", "1"}} {
		if ran, got, err := infer(tc.asked); err != nil || ran != tc.ran || !sameFloats(got, want[tc.ran]) {
			t.Errorf("model_version %q: ran on %q, %v, logits %v, want version %s's %v", tc.asked, ran, err, got, tc.ran, want[tc.ran])
		}
	}
	if got := postLogits("http://"+addr+"/v2/models/fm/versions/1/infer", x); !sameFloats(got, want["1"]) {
		t.Errorf("REST /versions/1: %v, want %v", got, want["1"])
	}
	fp32Bytes, err := os.ReadFile(fp32)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, v2, fp32Bytes)
	proc.Signal(syscall.SIGHUP)
	waitFor(t, "the reload of version 2", func() bool { return strings.Contains(logs.String(), "msg=reloaded model=fm version=2") })
	if ran, got, err := infer(""); err != nil || ran != "2" || !sameFloats(got, want["1"]) {
		t.Errorf("version 2 after its reload: %q %v %v, want the fp32 logits", ran, got, err)
	}

	// A REST request whose body never ends is admitted and keeps the
	// batcher waiting (up to --batch-timeout 1s) for it to join a batch,
	// so the gRPC request below stays in flight long enough to be caught
	// by SIGTERM (a lone request alone would run at once).
	hold, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	fmt.Fprintf(hold, "POST /v2/models/fm/versions/1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	waitFor(t, "the held request admitted", func() bool {
		return metricLine("http://"+addr+"/metrics", `edge_resnet_in_flight_requests{model="fm",version="1"} 1`)
	})
	inFlightAtSIGTERM(t, proc, "http://"+addr+"/metrics", hold, func() error {
		ran, got, err := infer("1")
		if err == nil && (ran != "1" || !sameFloats(got, want["1"])) {
			err = fmt.Errorf("version %q, logits %v", ran, got)
		}
		return err
	})
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
}

// inFlightAtSIGTERM runs call (a request on model fm version 1, which
// waits up to a second for its batch beside the held request) and sends
// SIGTERM once /metrics shows both in flight; call must then succeed, and
// the held connection is closed so the drain can end. A request that
// ended before it was seen in flight (a loaded machine) is tried again.
func inFlightAtSIGTERM(t *testing.T, proc *os.Process, metrics string, hold net.Conn, call func() error) {
	t.Helper()
	for try := 1; ; try++ {
		done := make(chan error, 1)
		go func() { done <- call() }()
		for {
			select {
			case err := <-done:
				if err != nil || try == 5 {
					t.Fatalf("try %d: the request ended before it was seen in flight: %v", try, err)
				}
			default:
				if !metricLine(metrics, `edge_resnet_in_flight_requests{model="fm",version="1"} 2`) {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if err := proc.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Errorf("the gRPC request in flight at SIGTERM: %v", err)
				}
				hold.Close()
				return
			}
			break
		}
	}
}

// metricLine says whether url (/metrics) has the line want now.
func metricLine(url, want string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "\n"+want+"\n")
}
