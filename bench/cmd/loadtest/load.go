package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/serve"
)

// runMode serves m on 127.0.0.1 with batching off (batch 1) or on,
// prints a row per concurrency and returns their throughputs.
func runMode(stdout, stderr io.Writer, m *edgeresnet.Model, o options, batch int) ([]float64, error) {
	opt := serve.Options{Sessions: o.sessions, ThreadsPerSession: o.threads, Queue: o.queue, MaxBatch: batch, BatchTimeout: o.batchWait}
	if o.queue == 0 {
		opt.Queue = -1 // serve's "none"
	}
	srv, err := serve.New([]serve.Named{{Name: "m", Model: m}}, opt)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := srv.HTTPServer(ln.Addr().String())
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String() + "/v2/models/m"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}, Timeout: 2 * time.Minute}
	req, err := newRequest(client, base)
	if err != nil {
		return nil, err
	}
	mode := "off"
	if batch > 1 {
		mode = fmt.Sprintf("on (max %d, %v)", batch, o.batchWait)
	}
	fmt.Fprintf(stderr, "loadtest: batching %s: warming up\n", mode)
	cell(client, req, max(1, batch), 4*max(1, batch), o.maxTime)
	var rates []float64
	for _, c := range o.concurrency {
		fmt.Fprintf(stderr, "loadtest: batching %s, concurrency %d\n", mode, c)
		runs0, samples0 := batchSums(client, ln.Addr().String())
		r := cell(client, req, c, o.requests, o.maxTime)
		runs1, samples1 := batchSums(client, ln.Addr().String())
		r.meanBatch = (samples1 - samples0) / (runs1 - runs0)
		fmt.Fprintln(stdout, r.row(mode, c, o.requests))
		rates = append(rates, float64(len(r.ok))/r.elapsed.Seconds())
	}
	return rates, nil
}

// batchSums reads the server's batch size histogram from /metrics: the
// session runs and the samples they computed so far (NaN when absent).
func batchSums(client *http.Client, addr string) (runs, samples float64) {
	runs, samples = math.NaN(), math.NaN()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return runs, samples
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return runs, samples
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		switch {
		case err != nil:
		case strings.HasPrefix(f[0], "edge_resnet_batch_size_count{"):
			runs = v
		case strings.HasPrefix(f[0], "edge_resnet_batch_size_sum{"):
			samples = v
		}
	}
	return runs, samples
}

// request is one infer request: URL, body and headers.
type request struct {
	url    string
	body   []byte
	header http.Header
}

// newRequest builds a one-sample FP32 request in binary tensor data for
// the model's input, as its metadata describes it.
func newRequest(client *http.Client, base string) (request, error) {
	resp, err := client.Get(base)
	if err != nil {
		return request{}, err
	}
	defer resp.Body.Close()
	var meta struct {
		Inputs []struct {
			Name  string
			Shape []int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil || len(meta.Inputs) != 1 {
		return request{}, fmt.Errorf("model metadata: %v", err)
	}
	in := meta.Inputs[0]
	shape, size := append([]int{1}, in.Shape[1:]...), 1
	for _, d := range shape {
		size *= d
	}
	var data []byte
	for i := range size {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(math.Sin(float64(i)*0.37))))
	}
	head, err := json.Marshal(map[string]any{
		"inputs":     []any{map[string]any{"name": in.Name, "shape": shape, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": len(data)}}},
		"parameters": map[string]any{"binary_data_output": true},
	})
	if err != nil {
		return request{}, err
	}
	h := http.Header{}
	h.Set(serve.HeaderContentLength, strconv.Itoa(len(head)))
	h.Set("Content-Type", "application/octet-stream")
	return request{url: base + "/infer", body: append(head, data...), header: h}, nil
}

// result is one cell's measurements.
type result struct {
	sent      int
	ok        []time.Duration
	errs      map[string]int // by status, or "transport"
	errLat    []time.Duration
	elapsed   time.Duration
	capped    bool    // the time cap ended the cell
	meanBatch float64 // samples per session run, from the server's metrics
}

// cell sends n requests (or until maxTime) from c clients at once.
func cell(client *http.Client, req request, c, n int, maxTime time.Duration) result {
	var next atomic.Int64
	deadline := time.Now().Add(maxTime)
	var mu sync.Mutex
	r := result{errs: map[string]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && time.Now().Before(deadline) {
				t0 := time.Now()
				status := post(client, req)
				d := time.Since(t0)
				mu.Lock()
				r.sent++
				if status == "200" {
					r.ok = append(r.ok, d)
				} else {
					r.errs[status]++
					r.errLat = append(r.errLat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.capped = r.sent < n
	return r
}

// post sends req and returns the status ("transport" when there is
// none); a 200 must carry a body.
func post(client *http.Client, req request) string {
	hr, err := http.NewRequest(http.MethodPost, req.url, bytes.NewReader(req.body))
	if err != nil {
		return "transport"
	}
	hr.Header = req.header.Clone()
	resp, err := client.Do(hr)
	if err != nil {
		return "transport"
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode == http.StatusOK && got == 0 {
		return "transport"
	}
	return strconv.Itoa(resp.StatusCode)
}

// percentile is the q-quantile of d (sorted in place), in milliseconds.
func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	slices.Sort(d)
	return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
}

func (r result) row(mode string, c, n int) string {
	errs := "none"
	if len(r.errs) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.errs)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.errs[k]))
		}
		errs = strings.Join(parts, ", ")
	}
	sent := strconv.Itoa(r.sent)
	if r.capped {
		sent += fmt.Sprintf(" (time cap, of %d)", n)
	}
	errP99 := "–"
	if len(r.errLat) > 0 {
		errP99 = fmt.Sprintf("%.1f", percentile(r.errLat, 0.99))
	}
	return fmt.Sprintf("| %s | %d | %s | %.1f | %.1f | %.1f | %s | %s | %.2f |", mode, c, sent,
		float64(len(r.ok))/r.elapsed.Seconds(), percentile(r.ok, 0.5), percentile(r.ok, 0.99), errs, errP99, r.meanBatch)
}
