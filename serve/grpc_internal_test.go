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
