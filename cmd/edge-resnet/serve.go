package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/serve"
)

type serveFlags struct {
	models    []string
	name      string
	addr      string
	grpcAddr  string
	sessions  int
	threads   int
	queue     int
	maxBatch  int
	batchWait time.Duration
	timeout   time.Duration
	headerTO  time.Duration
	grace     time.Duration
	maxBody   memoryFlag
	precision string
	logFormat string
	logLevel  string
	watch     bool
	watchTick time.Duration
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	sessions, threads := serve.DefaultPool(runtime.GOMAXPROCS(0))
	cmd := &cobra.Command{
		Use:   "serve [-m MODEL [--name NAME]] [-m NAME2[@VERSION]=MODEL2 ...] [--addr HOST:PORT] [--grpc-addr HOST:PORT] [--sessions N] [--threads-per-session T] [--queue Q]",
		Short: "Serve models with the Open Inference Protocol (KServe v2 REST, and gRPC)",
		Long: `Serve models over HTTP with the Open Inference Protocol (the KServe v2 REST
API that Triton, KServe, Seldon and MLServer speak):

  GET  /v2/health/live, /v2/health/ready     liveness, readiness
  GET  /v2                                   server metadata and extensions
  GET  /v2/models/NAME, /v2/models/NAME/ready  inputs/outputs (datatype, shape), readiness
  GET  /metrics                              Prometheus metrics
  POST /v2/models/NAME/infer                 inference
  (and /v2/models/NAME/versions/VERSION[/ready|/infer] for a version)

With --grpc-addr it also serves the protocol's gRPC API there
(inference.GRPCInferenceService: ServerLive, ServerReady, ModelReady,
ServerMetadata, ModelMetadata, ModelInfer), on the same models, sessions
and queues: FP32 in fp32_contents or raw_input_contents, images as BYTES
in bytes_contents, the parameter top_k as an int64_param; errors are
InvalidArgument, NotFound, ResourceExhausted (a full queue, or a message
over --max-body), Unavailable or DeadlineExceeded.

An inference request takes one input: FP32 tensors in the model's own
layout ([N,C,H,W], or [N,H,W,C] for Keras-style models), already
preprocessed, in JSON or as binary data (the binary tensor data extension:
Inference-Header-Content-Length, binary_data_size, binary_data outputs); or
BYTES of shape [N]: N encoded images (base64 strings in JSON), preprocessed
as the model says. The request parameter {"top_k": 5} adds the outputs
top_k_classes, top_k_probabilities and top_k_labels. Errors are
{"error": "..."} with 400, 404, 405, 413, 429 or 503.

Each model gets --sessions sessions of --threads-per-session threads; a
request waits for one in a queue of --queue, and gets 429 at once when the
queue is full, 503 when it waits longer than --timeout (408 when its body
takes longer). --max-batch B merges the samples of concurrent requests
into one run of up to B on each session: a session takes what is queued,
and waits for more (at most --batch-timeout after a batch's first request
or the session's last run) only while other requests are on their way,
so that a lone request never waits; logits are the same bit for bit. Ctrl-C or SIGTERM
stops accepting requests, lets those in flight finish (up to --grace) and
exits 0. SIGHUP (and, with --watch-models, a change of a model file) reloads
the models: requests in flight finish on the old model, later ones run on
the new one; a model that fails to load leaves the old one serving, and
the error is logged.

-m MODEL serves MODEL under --name (default: the model's own name, else
the file name); -m NAME=MODEL serves MODEL as NAME, version 1;
-m NAME@VERSION=MODEL as another version of NAME, with sessions of its
own. A request that names no version gets the greatest (numerically when
versions are numbers). Without -m, the built-in model.`,
		Example: `  edge-resnet serve --addr :8000
  edge-resnet serve -m resnet50.ern --name resnet50 -m cifar=cifar_resnet20.ern --addr 0.0.0.0:8000
  edge-resnet serve -m cifar=cifar_v1.ern -m cifar@2=cifar_v2.ern --grpc-addr 127.0.0.1:8001
  curl localhost:8000/v2/models/resnet50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), cmd.ErrOrStderr(), f)
		},
	}
	serveFlagSet(cmd.Flags(), &f, sessions, threads)
	return cmd
}

// serveFlagSet defines serve's flags on fl, bound to f, with the pool
// defaults given (deploy_test parses unit and manifest command lines with
// it).
func serveFlagSet(fl *pflag.FlagSet, f *serveFlags, sessions, threads int) {
	fl.StringArrayVarP(&f.models, "model", "m", nil, "model image (.ern) or ONNX file, or NAME=MODEL, or NAME@VERSION=MODEL; repeat for several (default: the built-in model)")
	fl.StringVar(&f.name, "name", "", "name of the first -m MODEL given without NAME= (default: the model's own name)")
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8000", "address to listen on (:8000 for every interface)")
	fl.StringVar(&f.grpcAddr, "grpc-addr", "", "also serve the protocol's gRPC API on this address, e.g. 127.0.0.1:8001 (default: no gRPC)")
	fl.IntVar(&f.sessions, "sessions", sessions, "sessions per model (requests run at once)")
	fl.IntVar(&f.threads, "threads-per-session", threads, "worker threads per session")
	fl.IntVar(&f.queue, "queue", -1, "requests per model that may wait for a session (0: none; default 4 per session, times --max-batch)")
	fl.IntVar(&f.maxBatch, "max-batch", 1, "dynamic batching: merge up to this many concurrent samples into one run (1: off)")
	fl.DurationVar(&f.batchWait, "batch-timeout", 2*time.Millisecond, "with --max-batch, how long a batch waits for more requests after its first")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "per-request limit, waiting for a session included")
	fl.DurationVar(&f.headerTO, "header-timeout", 10*time.Second, "how long a client may take to send a request's headers (against slow clients)")
	fl.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	f.maxBody = memoryFlag{n: 64 << 20, set: true}
	fl.Var(&f.maxBody, "max-body", "largest request body, e.g. 64MiB")
	fl.StringVar(&f.precision, "precision", "auto", precisionUsage)
	fl.BoolVar(&f.watch, "watch-models", false, "reload a model when its file changes (polling size and modification time), as SIGHUP does")
	fl.DurationVar(&f.watchTick, "watch-interval", 2*time.Second, "with --watch-models, how often to look at the files")
	fl.StringVar(&f.logFormat, "log-format", "text", "log lines on stderr: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug (a line per request), info (start, stop, reloads), warn (failed requests) or error")
}

// namedModel is a -m argument: the name to serve under ("" for the
// default), the version ("" for serve.DefaultVersion) and the path (""
// for the built-in model).
type namedModel struct{ name, version, path string }

// parseModelArgs reads the -m arguments and --name.
func parseModelArgs(args []string, name string) ([]namedModel, error) {
	if len(args) == 0 {
		args = []string{""}
	}
	var out []namedModel
	for _, a := range args {
		nm := namedModel{path: a}
		// NAME=MODEL or NAME@VERSION=MODEL, unless the whole argument is a
		// file whose name has '='.
		if before, after, ok := strings.Cut(a, "="); ok {
			name, version, versioned := strings.Cut(before, "@")
			if serve.CheckName(name) == nil && (!versioned || serve.CheckVersion(version) == nil) {
				if _, err := os.Stat(a); err != nil {
					nm = namedModel{name: name, version: version, path: after}
				}
			}
		}
		out = append(out, nm)
	}
	if name != "" {
		if out[0].name != "" {
			return nil, fmt.Errorf("--name %s: the first -m already names its model (%s=...)", name, out[0].name)
		}
		out[0].name = name
	}
	return out, nil
}

// defaultName is the name a model is served under when none is given:
// its own, else its file name without the extension.
func defaultName(m *edgeresnet.Model, path string) string {
	if n := m.Meta().Name; serve.CheckName(n) == nil {
		return n
	}
	if n := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)); serve.CheckName(n) == nil {
		return n
	}
	return "model"
}

// loadServed loads the models and says which file each came from ("":
// the built-in model); the caller closes them.
func loadServed(f serveFlags) (named []serve.Named, paths []string, err error) {
	args, err := parseModelArgs(f.models, f.name)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range args {
		m, err := loadModel(a.path)
		if err != nil {
			closeServed(named)
			return nil, nil, fmt.Errorf("-m %s: %w", a.path, err)
		}
		if a.name == "" {
			a.name = defaultName(m, a.path)
		}
		named, paths = append(named, serve.Named{Name: a.name, Version: a.version, Model: m}), append(paths, a.path)
	}
	return named, paths, nil
}

func closeServed(named []serve.Named) {
	for _, n := range named {
		n.Model.Close()
	}
}

// serveOptions turns the flags into serve.Options.
func serveOptions(f serveFlags) (serve.Options, error) {
	p, err := edgeresnet.ParsePrecision(f.precision)
	if err != nil {
		return serve.Options{}, err
	}
	if err := checkIntFlags(intFlag{"--sessions", f.sessions, 1, serve.MaxSessions, "sessions per model"},
		intFlag{"--threads-per-session", f.threads, 1, edgeresnet.MaxThreads, "threads per session"},
		intFlag{"--queue", f.queue, -1, serve.MaxQueue, "waiting requests per model"},
		intFlag{"--max-batch", f.maxBatch, 1, serve.MaxBatch, "samples per batched run"}); err != nil {
		return serve.Options{}, err
	}
	if f.timeout <= 0 || f.headerTO <= 0 || f.grace < 0 || f.maxBody.n <= 0 || f.batchWait < 0 || f.batchWait > time.Second {
		return serve.Options{}, fmt.Errorf("--timeout %v, --header-timeout %v, --grace %v, --max-body %d, --batch-timeout %v: want positive timeouts and body limit, a batch timeout of 0 to 1s",
			f.timeout, f.headerTO, f.grace, f.maxBody.n, f.batchWait)
	}
	tune, err := edgeresnet.ParseTune(tuneFlag)
	if err != nil {
		return serve.Options{}, fmt.Errorf("--tune: %w", err)
	}
	opt := serve.Options{Sessions: f.sessions, ThreadsPerSession: f.threads, Timeout: f.timeout, HeaderTimeout: f.headerTO, MaxBodyBytes: f.maxBody.n,
		MaxBatch: f.maxBatch, BatchTimeout: f.batchWait,
		SessionOptions: []edgeresnet.SessionOption{edgeresnet.WithPrecision(p), edgeresnet.WithTune(tune)}}
	if pinFlag {
		opt.SessionOptions = append(opt.SessionOptions, edgeresnet.WithPinning())
	}
	switch f.queue {
	case -1: // serve.Options' default
	case 0:
		opt.Queue = -1 // serve.Options' "none", 0 being its default
	default:
		opt.Queue = f.queue
	}
	if f.batchWait == 0 {
		opt.BatchTimeout = time.Nanosecond // run at once; 0 is serve.Options' default
	}
	if maxMemory.set {
		opt.SessionOptions = append(opt.SessionOptions, edgeresnet.WithMaxMemory(maxMemory.n))
	}
	return opt, nil
}

// newLogger is the --log-format and --log-level logger on w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// watchInterval is how often the reloader polls the model files: 0
// without --watch-models.
func watchInterval(f serveFlags) time.Duration {
	if !f.watch {
		return 0
	}
	return max(f.watchTick, 10*time.Millisecond)
}

// runServe serves until ctx ends (SIGTERM, Ctrl-C), then drains.
func runServe(ctx context.Context, stderr io.Writer, f serveFlags) error {
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	opt, err := serveOptions(f)
	if err != nil {
		return err
	}
	opt.Logger = log
	named, paths, err := loadServed(f)
	if err != nil {
		return err
	}
	srv, err := serve.New(named, opt)
	if err != nil {
		closeServed(named)
		return err
	}
	rl := newReloader(srv, log, named, paths) // owns the models from here on
	rctx, stopReloads := context.WithCancel(ctx)
	reloads := make(chan struct{})
	go func() { rl.run(rctx, watchInterval(f)); close(reloads) }()
	defer func() { stopReloads(); <-reloads; srv.Close(); rl.close() }()
	sv, err := startServers(srv, f)
	if err != nil {
		return err
	}
	// Live memory: bodies of the admitted requests (held with their
	// decoded tensors, about twice) and one decoded image per session. A
	// reload holds two versions of a model while the old one drains.
	// gRPC adds the messages it has received but not yet admitted (its
	// gate: as many as the places).
	perModel := int64(opt.Places())*2*opt.MaxBodyBytes + int64(opt.Sessions)*preprocess.MaxDecodeBytes
	if f.grpcAddr != "" {
		perModel += int64(opt.Places()) * opt.MaxBodyBytes
	}
	limitHeap(int64(len(named)) * perModel)
	log.Info("serving", "models", strings.Join(srv.Names(), ","), "sessions", opt.Sessions, "threads_per_session", opt.ThreadsPerSession,
		"max_batch", max(opt.MaxBatch, 1), "places", opt.Places(), "addr", "http://"+sv.httpLn.Addr().String(), "grpc_addr", sv.grpcAddr())
	select {
	case err := <-sv.done:
		sv.stop()
		return err
	case <-ctx.Done():
	}
	log.Info("draining", "grace", f.grace)
	srv.Drain()
	if err := sv.shutdown(f.grace); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// servers are the listeners runServe serves on: HTTP on --addr, gRPC on
// --grpc-addr when it is set.
type servers struct {
	http           *http.Server
	httpLn, grpcLn net.Listener
	grpc           *grpc.Server
	done           chan error // a server that stopped by itself
}

// startServers listens and serves srv on the addresses of f.
func startServers(srv *serve.Server, f serveFlags) (*servers, error) {
	sv := &servers{http: srv.HTTPServer(f.addr), done: make(chan error, 2)}
	var err error
	if sv.httpLn, err = net.Listen("tcp", f.addr); err != nil {
		return nil, fmt.Errorf("--addr %s: %w", f.addr, err)
	}
	if f.grpcAddr != "" {
		if sv.grpcLn, err = net.Listen("tcp", f.grpcAddr); err != nil {
			sv.httpLn.Close()
			return nil, fmt.Errorf("--grpc-addr %s: %w", f.grpcAddr, err)
		}
		sv.grpc = srv.GRPCServer()
		go func() { sv.done <- sv.grpc.Serve(sv.grpcLn) }()
	}
	go func() { sv.done <- sv.http.Serve(sv.httpLn) }()
	return sv, nil
}

// grpcAddr is the gRPC listener's address, "" without one.
func (sv *servers) grpcAddr() string {
	if sv.grpcLn == nil {
		return ""
	}
	return sv.grpcLn.Addr().String()
}

// stop closes both servers at once, requests or not.
func (sv *servers) stop() {
	sv.http.Close()
	if sv.grpc != nil {
		sv.grpc.Stop()
	}
}

// shutdown stops accepting connections and waits, up to grace, for the
// requests in flight on both servers; past grace it closes them.
func (sv *servers) shutdown(grace time.Duration) error {
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	grpcDone := make(chan struct{})
	go func() {
		if sv.grpc != nil {
			sv.grpc.GracefulStop()
		}
		close(grpcDone)
	}()
	err := sv.http.Shutdown(sctx)
	select {
	case <-grpcDone:
	case <-sctx.Done():
		if sv.grpc != nil {
			sv.grpc.Stop() // a gRPC request still running
		}
		<-grpcDone
		if err == nil {
			err = sctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("shutting down: requests still running after --grace %v: %w", grace, err)
	}
	return nil
}
