package serve

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	pb "github.com/edge-resnet/edge-resnet/serve/oipgrpc"
)

// TestGRPCDeadline: a request that waits for a session past the
// server's timeout gets DeadlineExceeded (REST: 503) from the server,
// long before its client's deadline; once the session is free requests
// run again.
func TestGRPCDeadline(t *testing.T) {
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv, err := New([]Named{{Name: "m", Model: m}}, Options{Sessions: 1, ThreadsPerSession: 1, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := srv.GRPCServer()
	go g.Serve(ln)
	defer g.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	v := srv.models["m"].latest().cur.Load()
	req := &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: v.in.name, Datatype: "FP32", Shape: []int64{1, 1, 28, 28}, Contents: &pb.InferTensorContents{Fp32Contents: make([]float32, 784)}}}}
	s := <-v.pool.idle // as if a long run held it
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.ModelInfer(ctx, req)
	if st := status.Convert(err); st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "timed out waiting") {
		t.Errorf("%v, want the server's DeadlineExceeded", err)
	}
	v.pool.idle <- s
	if _, err := c.ModelInfer(ctx, req); err != nil {
		t.Errorf("with the session free: %v", err)
	}
}

// TestGRPCGate: the gate lets ModelInfer calls in up to its places,
// refuses the next with ResourceExhausted, lets other methods through,
// and takes a call in again once a stream (its context) has ended or a
// handler gave its place back, and only once for both.
func TestGRPCGate(t *testing.T) {
	g := make(grpcGate, 2)
	infer := &tap.Info{FullMethodName: pb.GRPCInferenceService_ModelInfer_FullMethodName}
	var cancels []context.CancelFunc
	var releases []func()
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ctx, err := g.tap(ctx, infer)
		if err != nil {
			t.Fatal(err)
		}
		cancels, releases = append(cancels, cancel), append(releases, ctx.Value(gateKey{}).(func()))
	}
	if _, err := g.tap(context.Background(), infer); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a third call: %v, want ResourceExhausted", err)
	}
	if _, err := g.tap(context.Background(), &tap.Info{FullMethodName: pb.GRPCInferenceService_ServerLive_FullMethodName}); err != nil {
		t.Errorf("ServerLive through a full gate: %v", err)
	}
	releases[1]() // the handler returned: its place at once
	if _, err := g.tap(context.Background(), infer); err != nil {
		t.Fatalf("a call after a handler returned: %v", err)
	}
	cancels[1]() // then its stream ends: no second release
	cancels[0]()
	for deadline := time.Now().Add(10 * time.Second); len(g) > 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d places taken after a stream ended, want 1", len(g))
		}
	}
	if _, err := g.tap(context.Background(), infer); err != nil {
		t.Fatalf("a call after a stream ended: %v", err)
	}
	if _, err := g.tap(context.Background(), infer); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a call past the places after the releases: %v, want ResourceExhausted", err)
	}
}
