package serve

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The outputs the request parameter top_k adds.
const (
	TopKClasses       = "top_k_classes"       // INT64 [N,k], best first
	TopKProbabilities = "top_k_probabilities" // FP32 [N,k]
	TopKLabels        = "top_k_labels"        // BYTES [N,k], "" for a class without a label
)

// infer is POST /v2/models/NAME[/versions/VERSION]/infer: the request
// path both protocols share (admitted), with REST's body, read after
// admission, and its JSON or binary response.
func (s *Server) infer(rw http.ResponseWriter, r *http.Request, e *entry) {
	w := &statusWriter{ResponseWriter: rw}
	defer func(start time.Time) {
		code := w.code()
		e.metrics.answered(protoREST, strconv.Itoa(code), code >= 400, start)
		s.logRequest(r.Context(), e, slog.Int("status", code), code >= 400, w.err, r.RemoteAddr, start)
	}(time.Now())
	// The body must come within the request's time, read or discarded
	// after a refusal: a trickled one holds a place or a connection no
	// longer (the error: not supported, as by a recorder).
	http.NewResponseController(rw).SetReadDeadline(time.Now().Add(s.opt.Timeout))
	var resp *inferResponse
	var bin []byte
	err := s.admitted(r.Context(), e, func(ctx context.Context, m *served) (err error) {
		resp, bin, err = s.inferBody(ctx, w, r, m)
		return err
	})
	if err != nil {
		writeError(w, err)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		writeError(w, err)
		return
	}
	if bin != nil {
		w.Header().Set(HeaderContentLength, strconv.Itoa(len(b)))
		w.Header().Set("Content-Type", "application/octet-stream")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+len(bin)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	w.Write(bin)
}

// admitted is the request path both protocols share, up to the
// protocol's own work (do: decode, run, encode): a draining server
// answers 503, a version whose places are all taken 429 at once; then the
// model loaded now is held to the end, whatever reloads come, and the
// request gets Options.Timeout. A 503 of that timeout is marked as one
// (gRPC answers DeadlineExceeded).
func (s *Server) admitted(ctx context.Context, e *entry, do func(context.Context, *served) error) error {
	if s.draining.Load() {
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	if !e.admit() {
		return errorf(http.StatusTooManyRequests, "model %q version %q is busy: all %d places (sessions x batch + queue) are taken", e.name, e.version, s.opt.places())
	}
	defer e.leave()
	m := e.acquire()
	defer m.release()
	ctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	err := do(ctx, m)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusServiceUnavailable && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = &httpError{status: he.status, msg: he.msg, deadline: true}
	}
	return err
}

// logRequest logs one line per inference request: at debug when it
// succeeded, at warn with the error when it did not.
func (s *Server) logRequest(ctx context.Context, e *entry, status slog.Attr, failed bool, err error, remote string, start time.Time) {
	level := slog.LevelDebug
	if failed {
		level = slog.LevelWarn
	}
	if !s.opt.Logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("model", e.name), slog.String("version", e.version), status,
		slog.Duration("duration", time.Since(start)), slog.String("remote", remote)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.opt.Logger.LogAttrs(ctx, level, "inference", attrs...)
}

// inferBody reads, checks and runs a request and returns the response
// JSON and the binary data after it (nil when no output is binary).
func (s *Server) inferBody(ctx context.Context, w http.ResponseWriter, r *http.Request, m *served) (*inferResponse, []byte, error) {
	body, err := readBody(w, r, s.opt.MaxBodyBytes)
	if err != nil {
		return nil, nil, err
	}
	jsonPart, bin, err := splitBody(r.Header, body)
	if err != nil {
		return nil, nil, err
	}
	req, err := parseRequest(jsonPart)
	if err != nil {
		return nil, nil, err
	}
	in, err := restInput(req.Inputs[0], bin)
	if err != nil {
		return nil, nil, err
	}
	k, hasK, err := req.Parameters.int("top_k")
	if err != nil {
		return nil, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	var names []string
	for _, o := range req.Outputs {
		names = append(names, o.Name)
	}
	picked, err := m.run(ctx, in, topKParam{k, hasK}, names)
	if err != nil {
		return nil, nil, err
	}
	outs, data, err := encodeOutputs(req, picked)
	if err != nil {
		return nil, nil, err
	}
	return &inferResponse{ModelName: m.name, ModelVersion: m.modelVersion, ID: req.ID, Outputs: outs}, data, nil
}

// run is the inference both protocols share: it checks the input
// against the model, runs it and picks the outputs named (all when none
// is).
func (m *served) run(ctx context.Context, in *tensorInput, k topKParam, outputs []string) ([]*result, error) {
	j, err := m.newJob(in, k, maxSamples)
	if err != nil {
		return nil, err
	}
	if err := m.runner.run(ctx, j); err != nil {
		return nil, err
	}
	return pickOutputs(outputs, m.results(j))
}

// maxSamples bounds the samples of one request, and so its outputs.
const maxSamples = 1024

// inferResponse is $inference_response.
type inferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	ID           string           `json:"id,omitempty"`
	Outputs      []responseOutput `json:"outputs"`
}

// responseOutput is $response_output.
type responseOutput struct {
	Name       string         `json:"name"`
	Shape      []int          `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"`
}

// result is an output tensor before it is encoded.
type result struct {
	name, datatype string
	shape          []int
	f32            []float32
	i64            []int64
	strs           []string
}

// results lists j's outputs: the model's, then top-k's.
func (m *served) results(j *job) []result {
	var rs []result
	for i, o := range m.outs {
		rs = append(rs, result{name: o.name, datatype: "FP32", shape: append([]int{j.n}, o.shape...), f32: j.outs[i]})
	}
	if j.topK == 0 {
		return rs
	}
	shape := []int{j.n, j.topK}
	cls, prob, lab := make([]int64, len(j.top)), make([]float32, len(j.top)), make([]string, len(j.top))
	for i, p := range j.top {
		cls[i], prob[i], lab[i] = int64(p.Class), p.Prob, p.Label
	}
	return append(rs,
		result{name: TopKClasses, datatype: "INT64", shape: shape, i64: cls},
		result{name: TopKProbabilities, datatype: "FP32", shape: shape, f32: prob},
		result{name: TopKLabels, datatype: "BYTES", shape: shape, strs: lab})
}

// pickOutputs is the results named, in the order named (all of them
// when none is), each at most once.
func pickOutputs(names []string, rs []result) ([]*result, error) {
	var picked []*result
	for i := range rs {
		if len(names) == 0 {
			picked = append(picked, &rs[i])
		}
	}
	for i, name := range names {
		k := slices.IndexFunc(rs, func(r result) bool { return r.name == name })
		if err := checkOutput(names[:i], name, k, rs); err != nil {
			return nil, err
		}
		picked = append(picked, &rs[k])
	}
	return picked, nil
}

// encodeOutputs encodes REST's outputs, each as JSON data or binary data
// as its binary_data parameter, or else the request's
// binary_data_output, says.
func encodeOutputs(req *inferRequest, picked []*result) ([]responseOutput, []byte, error) {
	defBin, _, err := req.Parameters.bool("binary_data_output")
	if err != nil {
		return nil, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	var outs []responseOutput
	var bin []byte
	for i, r := range picked {
		asBin := defBin
		if len(req.Outputs) > 0 {
			b, set, err := req.Outputs[i].Parameters.bool("binary_data")
			if err != nil {
				return nil, nil, errorf(http.StatusBadRequest, "output %q: %v", r.name, err)
			}
			asBin = b || !set && defBin
		}
		o := responseOutput{Name: r.name, Shape: r.shape, Datatype: r.datatype}
		if asBin {
			b := r.binary()
			o.Parameters = map[string]any{"binary_data_size": len(b)}
			if bin == nil {
				bin = []byte{} // non-nil: the response is binary
			}
			bin = append(bin, b...)
		} else {
			o.Data = r.data()
		}
		outs = append(outs, o)
	}
	return outs, bin, nil
}

// checkOutput refuses a requested output that does not exist (index k <
// 0) or that is requested twice.
func checkOutput(before []string, name string, k int, rs []result) error {
	if k < 0 {
		if name == TopKClasses || name == TopKProbabilities || name == TopKLabels {
			return errorf(http.StatusBadRequest, "output %q needs the request parameter top_k", name)
		}
		var names []string
		for _, r := range rs {
			names = append(names, r.name)
		}
		return errorf(http.StatusBadRequest, "unknown output %q (outputs: %s)", name, strings.Join(names, ", "))
	}
	if slices.Contains(before, name) {
		return errorf(http.StatusBadRequest, "output %q requested twice", name)
	}
	return nil
}

// data is r's values for JSON.
func (r *result) data() any {
	switch {
	case r.i64 != nil:
		return r.i64
	case r.strs != nil:
		return r.strs
	}
	return r.f32
}

// binary is r's values as binary data: little-endian, BYTES elements as
// a 4-byte length and the bytes.
func (r *result) binary() []byte {
	var b []byte
	switch {
	case r.i64 != nil:
		for _, v := range r.i64 {
			b = binaryLE.AppendUint64(b, uint64(v))
		}
	case r.strs != nil:
		for _, s := range r.strs {
			b = append(binaryLE.AppendUint32(b, uint32(len(s))), s...)
		}
	default:
		b = make([]byte, 0, 4*len(r.f32))
		for _, v := range r.f32 {
			b = binaryLE.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b
}
