package serve

import (
	"context"
	"encoding/json"
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

// infer is POST /v2/models/NAME/infer: admission (429 at once when the
// model's sessions and queue are full), then the body, then the runner.
func (s *Server) infer(rw http.ResponseWriter, r *http.Request, e *entry) {
	w := &statusWriter{ResponseWriter: rw}
	defer func(start time.Time) {
		e.metrics.answered(w, start)
		s.logRequest(r, e.name, w, start)
	}(time.Now())
	// The body must come within the request's time, read or discarded
	// after a refusal: a trickled one holds a place or a connection no
	// longer (the error: not supported, as by a recorder).
	http.NewResponseController(rw).SetReadDeadline(time.Now().Add(s.opt.Timeout))
	if s.draining.Load() {
		writeError(w, errorf(http.StatusServiceUnavailable, "the server is shutting down"))
		return
	}
	if !e.admit() {
		writeError(w, errorf(http.StatusTooManyRequests, "model %q is busy: all %d places (sessions x batch + queue) are taken", e.name, s.opt.places()))
		return
	}
	defer e.leave()
	m := e.acquire() // the version this request runs on, whatever reloads come
	defer m.release()
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	resp, bin, err := s.inferBody(ctx, w, r, m)
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

// logRequest logs one line per inference request: at debug when it
// succeeded, at warn with the error when it did not.
func (s *Server) logRequest(r *http.Request, model string, w *statusWriter, start time.Time) {
	level := slog.LevelDebug
	if w.code() >= 400 {
		level = slog.LevelWarn
	}
	if !s.opt.Logger.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{slog.String("model", model), slog.Int("status", w.code()),
		slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr)}
	if w.err != nil {
		attrs = append(attrs, slog.String("error", w.err.Error()))
	}
	s.opt.Logger.LogAttrs(r.Context(), level, "inference", attrs...)
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
	j, err := m.newJob(req, bin, maxSamples)
	if err != nil {
		return nil, nil, err
	}
	if err := m.runner.run(ctx, j); err != nil {
		return nil, nil, err
	}
	outs, data, err := selectOutputs(req, m.results(j))
	if err != nil {
		return nil, nil, err
	}
	return &inferResponse{ModelName: m.name, ID: req.ID, Outputs: outs}, data, nil
}

// maxSamples bounds the samples of one request, and so its outputs.
const maxSamples = 1024

// inferResponse is $inference_response (no model_version: no versions).
type inferResponse struct {
	ModelName string           `json:"model_name"`
	ID        string           `json:"id,omitempty"`
	Outputs   []responseOutput `json:"outputs"`
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

// selectOutputs encodes the outputs the request asks for (all when it
// names none), each as JSON data or binary data as its binary_data
// parameter, or else the request's binary_data_output, says.
func selectOutputs(req *inferRequest, rs []result) ([]responseOutput, []byte, error) {
	defBin, _, err := req.Parameters.bool("binary_data_output")
	if err != nil {
		return nil, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	var picked []*result
	var asBin []bool
	for i := range rs {
		if len(req.Outputs) == 0 { // none named: all of them
			picked, asBin = append(picked, &rs[i]), append(asBin, defBin)
		}
	}
	for i, o := range req.Outputs {
		k := slices.IndexFunc(rs, func(r result) bool { return r.name == o.Name })
		if err := checkOutput(req.Outputs[:i], o.Name, k, rs); err != nil {
			return nil, nil, err
		}
		b, set, err := o.Parameters.bool("binary_data")
		if err != nil {
			return nil, nil, errorf(http.StatusBadRequest, "output %q: %v", o.Name, err)
		}
		picked, asBin = append(picked, &rs[k]), append(asBin, b || !set && defBin)
	}
	var outs []responseOutput
	var bin []byte
	for i, r := range picked {
		o := responseOutput{Name: r.name, Shape: r.shape, Datatype: r.datatype}
		if asBin[i] {
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
func checkOutput(before []requestOutput, name string, k int, rs []result) error {
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
	if slices.ContainsFunc(before, func(o requestOutput) bool { return o.Name == name }) {
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
