package serve

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a server's Prometheus metrics, in a registry of its own
// (not the global one), so that two servers (tests) never share counts.
// Labels are served model names and versions, the protocol ("rest",
// "grpc") and status codes only (HTTP statuses, gRPC code names): a
// request for an unknown model is not counted by its name, which the
// client chooses.
type metrics struct {
	handler  http.Handler
	requests *prometheus.CounterVec   // model, version, protocol, code
	errors   *prometheus.CounterVec   // model, version, protocol, code (HTTP 4xx and 5xx, gRPC not OK)
	latency  *prometheus.HistogramVec // model, version, protocol
	batch    *prometheus.HistogramVec // model, version: samples per session run
	queued   *prometheus.GaugeVec     // model, version: admitted, waiting to run
	inFlight *prometheus.GaugeVec     // model, version: admitted, until answered
}

// The protocol label's values.
const (
	protoREST = "rest"
	protoGRPC = "grpc"
)

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "edge_resnet", Name: name, Help: help}
	}
	mv, mvpc := []string{"model", "version"}, []string{"model", "version", "protocol", "code"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(f("inference_requests_total", "Inference requests answered, by model, version, protocol and status (HTTP status or gRPC code).")), mvpc),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts(f("inference_errors_total", "Inference requests answered with an HTTP 4xx or 5xx status or a gRPC code other than OK.")), mvpc),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "edge_resnet", Name: "inference_duration_seconds",
			Help:    "Time from a request's admission to its response, every status included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, mvpc[:3]),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "edge_resnet", Name: "batch_size",
			Help:    "Samples computed by one session run (several requests' when batching).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}, mv),
		queued:   prometheus.NewGaugeVec(prometheus.GaugeOpts(f("queue_depth", "Admitted requests waiting for a session or a batch.")), mv),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts(f("in_flight_requests", "Admitted inference requests not yet answered.")), mv),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.batch, m.queued, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// modelMetrics are one model version's series, resolved once (no label
// lookup per request, but for the status).
type modelMetrics struct {
	name, version string
	parent        *metrics
	latency       map[string]prometheus.Observer // by protocol
	batch         prometheus.Observer
	queued        prometheus.Gauge
	inFlight      prometheus.Gauge
	admitted      atomic.Int64 // inFlight's value, for the batcher to read
}

func (m *metrics) model(name, version string) *modelMetrics {
	return &modelMetrics{name: name, version: version, parent: m, batch: m.batch.WithLabelValues(name, version),
		latency: map[string]prometheus.Observer{
			protoREST: m.latency.WithLabelValues(name, version, protoREST),
			protoGRPC: m.latency.WithLabelValues(name, version, protoGRPC),
		},
		queued: m.queued.WithLabelValues(name, version), inFlight: m.inFlight.WithLabelValues(name, version)}
}

// answered counts a response of protocol with code (an HTTP status or a
// gRPC code name), failed or not, to a request begun at start.
func (mm *modelMetrics) answered(protocol, code string, failed bool, start time.Time) {
	mm.parent.requests.WithLabelValues(mm.name, mm.version, protocol, code).Inc()
	if failed {
		mm.parent.errors.WithLabelValues(mm.name, mm.version, protocol, code).Inc()
	}
	mm.latency[protocol].Observe(time.Since(start).Seconds())
}

// statusWriter remembers the status a handler wrote, and writeError's
// error.
type statusWriter struct {
	http.ResponseWriter
	status int
	err    error
}

// code is the status sent: 200 when the handler wrote nothing, as
// net/http does.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
