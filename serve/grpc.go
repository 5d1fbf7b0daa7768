package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	pb "github.com/edge-resnet/edge-resnet/serve/oipgrpc"
)

// grpcService is the protocol's gRPC API (inference.GRPCInferenceService)
// on the server's models. Each call takes the REST handler's path:
// lookup, admitted, served.run; only the decoding and encoding are its
// own, and errors get the gRPC code of their HTTP status (grpcStatus).
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// RegisterGRPC registers the protocol's gRPC service, serving s's models,
// on g (GRPCServer does, with limits).
func (s *Server) RegisterGRPC(g grpc.ServiceRegistrar) {
	pb.RegisterGRPCInferenceServiceServer(g, &grpcService{s: s})
}

// GRPCServer is a grpc.Server serving s with limits that match
// HTTPServer's: a message received is at most Options.MaxBodyBytes (a
// larger one gets ResourceExhausted before it is read whole), headers at
// most 64 KiB, a connection's handshake within 10 s, connections idle
// for 2 minutes closed; and ModelInfer calls held at once, their
// messages being received or run, at most the places of all the models'
// versions (grpcGate). opts come after these and may override them.
// Stop it with GracefulStop after Drain, as http.Server.Shutdown.
func (s *Server) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	places := 0
	for _, md := range s.models {
		places += len(md.versions) * s.opt.places()
	}
	base := []grpc.ServerOption{
		grpc.InTapHandle(make(grpcGate, places).tap),
		grpc.MaxRecvMsgSize(int(min(s.opt.MaxBodyBytes, math.MaxInt32))),
		grpc.MaxHeaderListSize(64 << 10),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 2 * time.Minute}),
	}
	g := grpc.NewServer(append(base, opts...)...)
	s.RegisterGRPC(g)
	return g
}

// grpcGate bounds the ModelInfer calls a gRPC server holds at once.
// grpc-go reads a message whole before it calls the handler, where
// admission is: without the gate the messages held would be bounded by
// the clients alone, where REST holds a body only once admitted. A call
// past the bound gets ResourceExhausted before its message is read. A
// call's place is given back when its handler returns (before the
// response is sent, so that a client calling one call after another
// never finds its own last place taken), or else when its stream ends,
// however it ends.
type grpcGate chan struct{}

// gateKey is the context key of a call's place in the gate.
type gateKey struct{}

// tap is a tap.ServerInHandle: it runs as a call's stream opens.
func (g grpcGate) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != pb.GRPCInferenceService_ModelInfer_FullMethodName {
		return ctx, nil
	}
	select {
	case g <- struct{}{}:
		release := sync.OnceFunc(func() { <-g })
		context.AfterFunc(ctx, release)
		return context.WithValue(ctx, gateKey{}, release), nil
	default:
		return ctx, status.Errorf(codes.ResourceExhausted, "the server is busy: all %d places of its models are taken", cap(g))
	}
}

func (g *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: !g.s.draining.Load()}, nil
}

func (g *grpcService) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if _, err := g.s.lookup(req.GetName(), req.GetVersion()); err != nil {
		return nil, grpcStatus(ctx, err)
	}
	return &pb.ModelReadyResponse{Ready: !g.s.draining.Load()}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: "edge-resnet", Version: edgeresnet.Version, Extensions: Extensions}, nil
}

func (g *grpcService) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	e, err := g.s.lookup(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcStatus(ctx, err)
	}
	meta := g.s.modelMetadata(e)
	tensors := func(ts []metadataTensor) []*pb.ModelMetadataResponse_TensorMetadata {
		var out []*pb.ModelMetadataResponse_TensorMetadata
		for _, t := range ts {
			out = append(out, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: int64s(t.Shape)})
		}
		return out
	}
	return &pb.ModelMetadataResponse{Name: meta.Name, Versions: meta.Versions, Platform: meta.Platform,
		Inputs: tensors(meta.Inputs), Outputs: tensors(meta.Outputs)}, nil
}

// ModelInfer runs an inference request: as POST .../infer does, counted
// and logged the same, with protocol "grpc" and the gRPC code.
func (g *grpcService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	start := time.Now()
	if release, ok := ctx.Value(gateKey{}).(func()); ok {
		defer release()
	}
	e, err := g.s.lookup(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, grpcStatus(ctx, err)
	}
	var resp *pb.ModelInferResponse
	err = g.s.admitted(ctx, e, func(ctx context.Context, m *served) error {
		in, k, names, err := grpcInput(req)
		if err != nil {
			return err
		}
		picked, err := m.run(ctx, in, k, names)
		if err != nil {
			return err
		}
		resp = &pb.ModelInferResponse{ModelName: m.name, ModelVersion: m.modelVersion, Id: req.GetId()}
		resp.Outputs, resp.RawOutputContents = grpcOutputs(picked, in.form == formRaw)
		return nil
	})
	gerr := grpcStatus(ctx, err)
	code := status.Code(gerr)
	e.metrics.answered(protoGRPC, code.String(), code != codes.OK, start)
	remote := ""
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	g.s.logRequest(ctx, e, slog.String("status", code.String()), code != codes.OK, err, remote, start)
	return resp, gerr
}

// grpcStatus gives err the gRPC code of its HTTP status: 400
// InvalidArgument, 404 NotFound, 413 and 429 ResourceExhausted, 503
// Unavailable, or DeadlineExceeded when the request's time ran out
// (Canceled when the client canceled it), anything else Internal.
func grpcStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	var he *httpError
	if errors.As(err, &he) {
		code = map[int]codes.Code{
			http.StatusBadRequest:            codes.InvalidArgument,
			http.StatusNotFound:              codes.NotFound,
			http.StatusRequestEntityTooLarge: codes.ResourceExhausted,
			http.StatusTooManyRequests:       codes.ResourceExhausted,
			http.StatusServiceUnavailable:    codes.Unavailable,
		}[he.status]
		switch {
		case code == codes.OK:
			code = codes.Internal
		case he.deadline:
			code = codes.DeadlineExceeded
		case code == codes.Unavailable && errors.Is(ctx.Err(), context.Canceled):
			code = codes.Canceled
		}
	}
	return status.Error(code, err.Error())
}

// grpcInput reads a ModelInferRequest's one input (its data from
// raw_input_contents, or its contents), the parameter top_k and the
// outputs named.
func grpcInput(req *pb.ModelInferRequest) (*tensorInput, topKParam, []string, error) {
	bad := func(format string, args ...any) (*tensorInput, topKParam, []string, error) {
		return nil, topKParam{}, nil, errorf(http.StatusBadRequest, format, args...)
	}
	if len(req.Inputs) != 1 {
		return bad("%d inputs: the model takes one", len(req.Inputs))
	}
	in, raw := req.Inputs[0], req.RawInputContents
	t := &tensorInput{name: in.GetName(), datatype: in.GetDatatype(), shape: in.GetShape()}
	switch c := in.GetContents(); {
	case len(raw) > 0 && len(raw) != len(req.Inputs):
		return bad("%d raw_input_contents for %d inputs", len(raw), len(req.Inputs))
	case len(raw) > 0 && c != nil:
		return bad("input %q: both contents and raw_input_contents: send one", t.name)
	case len(raw) > 0:
		t.form, t.raw = formRaw, raw[0]
	case c == nil:
		return bad("input %q: no data (no contents, no raw_input_contents)", t.name)
	default:
		if err := typedContents(t, c); err != nil {
			return bad("input %q: %v", t.name, err)
		}
	}
	k, err := grpcTopK(req.GetParameters()["top_k"])
	if err != nil {
		return bad("%v", err)
	}
	var names []string
	for _, o := range req.Outputs {
		names = append(names, o.GetName())
	}
	return t, k, names, nil
}

// typedContents takes an input's contents: fp32_contents for FP32,
// bytes_contents for BYTES, and no other field.
func typedContents(t *tensorInput, c *pb.InferTensorContents) error {
	t.form, t.fp32, t.elems = formTyped, c.GetFp32Contents(), c.GetBytesContents()
	all := len(c.BoolContents) + len(c.IntContents) + len(c.Int64Contents) + len(c.UintContents) +
		len(c.Uint64Contents) + len(c.Fp32Contents) + len(c.Fp64Contents) + len(c.BytesContents)
	switch {
	case t.datatype == "FP32" && all != len(t.fp32):
		return errors.New("FP32 data goes in contents.fp32_contents, and only there")
	case t.datatype == "BYTES" && all != len(t.elems):
		return errors.New("BYTES data goes in contents.bytes_contents, and only there")
	}
	return nil
}

// grpcTopK reads the parameter top_k: an int64_param or uint64_param.
func grpcTopK(p *pb.InferParameter) (topKParam, error) {
	switch v := p.GetParameterChoice().(type) {
	case nil:
		return topKParam{}, nil
	case *pb.InferParameter_Int64Param:
		return topKParam{v.Int64Param, true}, nil
	case *pb.InferParameter_Uint64Param:
		return topKParam{int64(min(v.Uint64Param, math.MaxInt64)), true}, nil
	}
	return topKParam{}, fmt.Errorf("parameter top_k is %v, want an int64_param", p)
}

// grpcOutputs encodes the outputs picked: in raw_output_contents when the
// request's input came raw (little-endian, BYTES elements each a 4-byte
// length and the bytes, as REST's binary data), else in each output's
// contents.
func grpcOutputs(picked []*result, raw bool) ([]*pb.ModelInferResponse_InferOutputTensor, [][]byte) {
	var outs []*pb.ModelInferResponse_InferOutputTensor
	var rawOut [][]byte
	for _, r := range picked {
		o := &pb.ModelInferResponse_InferOutputTensor{Name: r.name, Datatype: r.datatype, Shape: int64s(r.shape)}
		switch {
		case raw:
			rawOut = append(rawOut, r.binary())
		case r.i64 != nil:
			o.Contents = &pb.InferTensorContents{Int64Contents: r.i64}
		case r.strs != nil:
			b := make([][]byte, len(r.strs))
			for i, s := range r.strs {
				b[i] = []byte(s)
			}
			o.Contents = &pb.InferTensorContents{BytesContents: b}
		default:
			o.Contents = &pb.InferTensorContents{Fp32Contents: r.f32}
		}
		outs = append(outs, o)
	}
	return outs, rawOut
}

func int64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}
