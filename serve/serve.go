// Package serve is a server for edge-resnet models that speaks the Open
// Inference Protocol (the KServe v2 protocol, also spoken by Triton,
// Seldon and MLServer): its REST API as an http.Handler, and its gRPC API
// (GRPCInferenceService of serve/oipgrpc, generated from the
// specification's .proto) with RegisterGRPC or GRPCServer. Both run on
// the same request path; models may have several versions
// (/v2/models/NAME/versions/VERSION, gRPC's model_version).
//
// The wire format follows the specification's own text:
//   - kserve/open-inference-protocol, specification/protocol/inference_rest.md
//     (https://github.com/kserve/open-inference-protocol): the endpoints,
//     $inference_request (id, parameters, inputs[name, shape, datatype,
//     parameters, data], outputs[name, parameters]), $inference_response
//     (model_name, id, outputs), $metadata_server_response (name, version,
//     extensions), $metadata_model_response (name, platform, inputs,
//     outputs of $metadata_tensor name, datatype, shape with -1 for a
//     variable dimension) and {"error": ...} bodies;
//   - the binary tensor data extension (Triton's extension_binary_data.md,
//     KServe's binary_tensor_data_extension): the Inference-Header-Content-Length
//     header giving the JSON's length, binary data after it in input order,
//     little-endian and row-major, BYTES elements as a 4-byte length and
//     the bytes; "binary_data_size" on inputs and response outputs,
//     "binary_data" on requested outputs and "binary_data_output" on the
//     request.
//
// edge-resnet's additions, listed in the server metadata's extensions:
//   - "image_bytes": a BYTES input of shape [N] holds N encoded images
//     (JPEG, PNG, ...; base64 strings in JSON, as KServe's examples send
//     them, raw in binary data), preprocessed by the model's own spec;
//   - "top_k": the request parameter {"top_k": k} adds the outputs
//     top_k_classes (INT64 [N,k]), top_k_probabilities (FP32 [N,k]) and
//     top_k_labels (BYTES [N,k]).
//
// FP32 tensors come in the model's own input layout ([N,C,H,W] for
// PyTorch and ONNX models, [N,H,W,C] for Keras-style ones), already
// preprocessed, exactly as `edge-resnet classify` takes .npy files.
package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

// Extensions are the protocol extensions the server metadata lists.
var Extensions = []string{"binary_tensor_data", "image_bytes", "top_k"}

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Sessions is the number of sessions per model, each running one
	// request at a time (default: DefaultPool).
	Sessions int
	// ThreadsPerSession is each session's worker threads (default:
	// DefaultPool).
	ThreadsPerSession int
	// Queue is how many requests per model may wait for a session; one
	// more gets 429 at once (default: 4 per session, times MaxBatch when
	// batching; -1: none wait).
	Queue int
	// MaxBatch > 1 turns on dynamic batching: each session is made
	// WithBatch(MaxBatch) and runs the samples of up to MaxBatch
	// concurrent requests at once; Sessions*MaxBatch requests may then
	// run besides the Queue waiting (default 1: off).
	MaxBatch int
	// BatchTimeout is the longest a batch waits for more samples, from
	// when its first request arrived or its session became free (the
	// later), and only while more requests are on their way: a lone
	// request runs at once (default 2ms when batching).
	BatchTimeout time.Duration
	// Timeout bounds a request from its admission to its response, the
	// wait for a session included (default 30s); its body must have
	// arrived within it too, so that a client trickling a body holds a
	// place no longer.
	Timeout time.Duration
	// HeaderTimeout bounds the reading of a request's headers, against
	// clients that trickle them (default 10s); see HTTPServer.
	HeaderTimeout time.Duration
	// MaxBodyBytes bounds a request body (default 64 MiB). Bodies are
	// read only after admission, so at most Places() of them per model
	// are held at once.
	MaxBodyBytes int64
	// SessionOptions are passed to every NewSession (precision, memory).
	SessionOptions []edgeresnet.SessionOption
	// Logger gets one line per inference request, at debug (warn for an
	// error response); nil: no logs.
	Logger *slog.Logger
}

// DefaultPool chooses sessions and threads for cores CPUs: two threads a
// session (they scale ~1.8x, see docs/ARCHITECTURE.md "Threads"), one
// session per pair of cores.
func DefaultPool(cores int) (sessions, threads int) {
	if cores < 2 {
		return 1, 1
	}
	return cores / 2, 2
}

// withDefaults fills in the zero values.
func (o Options) withDefaults() Options {
	s, t := DefaultPool(runtime.GOMAXPROCS(0))
	if o.Sessions == 0 {
		o.Sessions = s
	}
	if o.ThreadsPerSession == 0 {
		o.ThreadsPerSession = t
	}
	o.MaxBatch = max(o.MaxBatch, 1)
	if o.Queue == 0 {
		o.Queue = 4 * o.Sessions * o.MaxBatch
	}
	if o.BatchTimeout == 0 && o.MaxBatch > 1 {
		o.BatchTimeout = 2 * time.Millisecond
	}
	o.Queue = max(o.Queue, 0)
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Limits on Options, so a typo cannot spawn a million goroutines.
const (
	MaxSessions = 1024
	MaxQueue    = 1 << 16
	MaxBatch    = 256 // each session holds MaxBatch inputs and activations
)

// Places is how many requests per model are admitted at once, running
// or waiting: Sessions*MaxBatch + Queue, with the defaults filled in.
func (o Options) Places() int { return o.withDefaults().places() }

func (o Options) places() int { return o.Sessions*o.MaxBatch + o.Queue }

func (o Options) check() error {
	switch {
	case o.Sessions < 1 || o.Sessions > MaxSessions:
		return fmt.Errorf("serve: %d sessions, want 1 to %d", o.Sessions, MaxSessions)
	case o.ThreadsPerSession < 1 || o.ThreadsPerSession > edgeresnet.MaxThreads:
		return fmt.Errorf("serve: %d threads per session, want 1 to %d", o.ThreadsPerSession, edgeresnet.MaxThreads)
	case o.Queue > MaxQueue:
		return fmt.Errorf("serve: queue of %d, want at most %d", o.Queue, MaxQueue)
	case o.MaxBatch > MaxBatch:
		return fmt.Errorf("serve: MaxBatch %d, want at most %d", o.MaxBatch, MaxBatch)
	case o.BatchTimeout < 0 || o.BatchTimeout > time.Second:
		return fmt.Errorf("serve: batch timeout %v, want 0 to 1s", o.BatchTimeout)
	case o.Timeout < 0 || o.HeaderTimeout < 0:
		return fmt.Errorf("serve: timeout %v or header timeout %v is negative", o.Timeout, o.HeaderTimeout)
	case o.MaxBodyBytes < 0:
		return fmt.Errorf("serve: MaxBodyBytes %d is negative", o.MaxBodyBytes)
	}
	return nil
}

// Named is a model and the name and version it is served under.
type Named struct {
	Name string
	// Version is one of the name's versions ("": DefaultVersion). A
	// request that names no version runs on the name's greatest version
	// (see CompareVersions).
	Version string
	Model   *edgeresnet.Model
}

// DefaultVersion is the version of a model given without one.
const DefaultVersion = "1"

func (nm Named) version() string {
	if nm.Version == "" {
		return DefaultVersion
	}
	return nm.Version
}

// Server is an http.Handler serving named models. It owns its sessions
// (Close them with Close); the models stay the caller's.
type Server struct {
	opt      Options
	models   map[string]*model
	names    []string
	draining atomic.Bool
	metrics  *metrics
	mu       sync.Mutex // Reload against Close
	closed   bool
}

// New starts opt.Sessions sessions for each model.
func New(models []Named, opt Options) (*Server, error) {
	opt = opt.withDefaults()
	if err := opt.check(); err != nil {
		return nil, err
	}
	if len(models) == 0 {
		return nil, errors.New("serve: no models")
	}
	s := &Server{opt: opt, models: map[string]*model{}, metrics: newMetrics()}
	for _, nm := range models {
		if err := s.add(nm); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// add starts the sessions of a version of a model.
func (s *Server) add(nm Named) error {
	v := nm.version()
	if err := CheckName(nm.Name); err != nil {
		return err
	}
	if err := CheckVersion(v); err != nil {
		return err
	}
	md := s.models[nm.Name]
	if md == nil {
		md = &model{name: nm.Name, versions: map[string]*entry{}}
		s.models[nm.Name] = md
		s.names = append(s.names, nm.Name)
	}
	if md.versions[v] != nil {
		return fmt.Errorf("serve: model %q has two versions %q", nm.Name, v)
	}
	e := &entry{name: nm.Name, version: v, slots: make(chan struct{}, s.opt.places()), metrics: s.metrics.model(nm.Name, v)}
	m, err := newServed(nm, s.opt, e.metrics)
	if err != nil {
		return fmt.Errorf("serve: model %q version %q: %w", nm.Name, v, err)
	}
	e.cur.Store(m)
	md.add(e)
	return nil
}

// CheckName accepts model names that are one URL path segment as they
// are: letters, digits, '_', '-' and '.' (not "." or "..").
func CheckName(name string) error {
	if !pathSegment(name) {
		return fmt.Errorf("serve: model name %q: use 1 to 128 letters, digits, '_', '-' or '.'", name)
	}
	return nil
}

// CheckVersion accepts the versions CheckName accepts as names.
func CheckVersion(version string) error {
	if !pathSegment(version) {
		return fmt.Errorf("serve: model version %q: use 1 to 128 letters, digits, '_', '-' or '.'", version)
	}
	return nil
}

func pathSegment(s string) bool {
	ok := s != "" && s != "." && s != ".." && len(s) <= 128
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			ok = false
		}
	}
	return ok
}

// Names lists the served models in the order given to New.
func (s *Server) Names() []string { return s.names }

// Drain marks the server not ready (GET /v2/health/ready answers 503 and
// new inference requests 503) while requests in flight finish; use it
// before http.Server.Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Close closes every session, after waiting for runs in progress
// (models replaced by Reload close theirs when their last request ends).
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, md := range s.models {
		for _, e := range md.versions {
			v := e.cur.Load()
			v.retired.Store(true)
			v.shut()
		}
	}
}

// HTTPServer is an http.Server for s on addr with timeouts against slow
// clients: headers within HeaderTimeout (10 s), an inference request's
// body within the request Timeout from its admission (the handler sets
// that deadline), any other request within the request timeout plus
// 30 s, the response within twice that, idle connections closed after 2
// minutes, headers at most 64 KiB. A connection trickling its headers
// holds a goroutine and a descriptor, no place, until HeaderTimeout.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: s.opt.HeaderTimeout,
		ReadTimeout:       s.opt.Timeout + 30*time.Second,
		WriteTimeout:      2*s.opt.Timeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// ServeHTTP routes the protocol's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/v2":
		s.get(w, r, s.serverMetadata)
	case path == "/v2/health/live":
		s.get(w, r, func() (int, any) { return http.StatusOK, map[string]bool{"live": true} })
	case path == "/v2/health/ready":
		s.get(w, r, s.ready)
	case path == "/metrics":
		s.metrics.handler.ServeHTTP(w, r)
	case strings.HasPrefix(path, "/v2/models/"):
		s.model(w, r, strings.Split(strings.TrimPrefix(path, "/v2/models/"), "/"))
	default:
		writeError(w, errorf(http.StatusNotFound, "no endpoint %s (the protocol's are under /v2)", r.URL.Path))
	}
}

// model routes /v2/models/NAME[/versions/VERSION][/ready|/infer].
func (s *Server) model(w http.ResponseWriter, r *http.Request, parts []string) {
	version := ""
	if len(parts) >= 3 && parts[1] == "versions" {
		version, parts = parts[2], append(parts[:1:1], parts[3:]...)
	}
	e, err := s.lookup(parts[0], version)
	if err != nil {
		writeError(w, err)
		return
	}
	switch {
	case len(parts) == 1:
		s.get(w, r, func() (int, any) { return http.StatusOK, s.modelMetadata(e) })
	case len(parts) == 2 && parts[1] == "ready":
		s.get(w, r, func() (int, any) {
			return s.readyStatus(), map[string]any{"name": e.name, "ready": !s.draining.Load()}
		})
	case len(parts) == 2 && parts[1] == "infer":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, errorf(http.StatusMethodNotAllowed, "%s %s: inference takes POST", r.Method, r.URL.Path))
			return
		}
		s.infer(w, r, e)
	default:
		writeError(w, errorf(http.StatusNotFound, "no endpoint %s", r.URL.Path))
	}
}

// get answers a GET (or HEAD) endpoint with f's status and JSON body.
func (s *Server) get(w http.ResponseWriter, r *http.Request, f func() (int, any)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, errorf(http.StatusMethodNotAllowed, "%s %s: this endpoint takes GET", r.Method, r.URL.Path))
		return
	}
	status, body := f()
	writeJSON(w, status, body)
}

func (s *Server) serverMetadata() (int, any) {
	return http.StatusOK, map[string]any{"name": "edge-resnet", "version": edgeresnet.Version, "extensions": Extensions}
}

func (s *Server) ready() (int, any) {
	return s.readyStatus(), map[string]bool{"ready": !s.draining.Load()}
}

// readyStatus is 503 while draining, so that probes that read only the
// status (Kubernetes) take the server out of rotation.
func (s *Server) readyStatus() int {
	if s.draining.Load() {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// httpError is an error with its HTTP status; its text is the body's
// "error".
type httpError struct {
	status   int
	msg      string
	deadline bool // a 503 because the request's time ran out
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// writeError writes {"error": ...} with err's status (500 when it has
// none).
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.err = err
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil { // our own types: cannot happen, but never send half a body
		status, b = http.StatusInternalServerError, []byte(`{"error":"serve: encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
