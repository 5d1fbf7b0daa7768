package serve

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a server's Prometheus metrics, in a registry of its own
// (not the global one), so that two servers (tests) never share counts.
// Labels are served model names and status codes only: a request for an
// unknown model is not counted by its name, which the client chooses.
type metrics struct {
	handler  http.Handler
	requests *prometheus.CounterVec   // model, code
	errors   *prometheus.CounterVec   // model, code (4xx and 5xx)
	latency  *prometheus.HistogramVec // model
	batch    *prometheus.HistogramVec // model: samples per session run
	queued   *prometheus.GaugeVec     // model: admitted, waiting to run
	inFlight *prometheus.GaugeVec     // model: admitted, until answered
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "edge_resnet", Name: name, Help: help}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(f("inference_requests_total", "Inference requests answered, by model and HTTP status.")), []string{"model", "code"}),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts(f("inference_errors_total", "Inference requests answered with a 4xx or 5xx status, by model and status.")), []string{"model", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "edge_resnet", Name: "inference_duration_seconds",
			Help:    "Time from a request's admission to its response, every status included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"model"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "edge_resnet", Name: "batch_size",
			Help:    "Samples computed by one session run (several requests' when batching).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}, []string{"model"}),
		queued:   prometheus.NewGaugeVec(prometheus.GaugeOpts(f("queue_depth", "Admitted requests waiting for a session or a batch.")), []string{"model"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts(f("in_flight_requests", "Admitted inference requests not yet answered.")), []string{"model"}),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.batch, m.queued, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// modelMetrics are one model's series, resolved once (no label lookup
// per request).
type modelMetrics struct {
	name     string
	parent   *metrics
	latency  prometheus.Observer
	batch    prometheus.Observer
	queued   prometheus.Gauge
	inFlight prometheus.Gauge
	admitted atomic.Int64 // inFlight's value, for the batcher to read
}

func (m *metrics) model(name string) *modelMetrics {
	return &modelMetrics{name: name, parent: m, latency: m.latency.WithLabelValues(name), batch: m.batch.WithLabelValues(name),
		queued: m.queued.WithLabelValues(name), inFlight: m.inFlight.WithLabelValues(name)}
}

// answered counts the response w wrote, begun at start.
func (mm *modelMetrics) answered(w *statusWriter, start time.Time) {
	status := w.code()
	code := strconv.Itoa(status)
	mm.parent.requests.WithLabelValues(mm.name, code).Inc()
	if status >= 400 {
		mm.parent.errors.WithLabelValues(mm.name, code).Inc()
	}
	mm.latency.Observe(time.Since(start).Seconds())
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
