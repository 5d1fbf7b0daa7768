package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

func TestParseModelArgs(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a=b.ern") // a file whose name has '='
	if err := os.WriteFile(odd, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		name string
		want string
		err  string
	}{
		{nil, "", "[{  }]", ""},
		{nil, "fm", "[{fm  }]", ""},
		{[]string{"x.ern"}, "x1", "[{x1  x.ern}]", ""},
		{[]string{"x.ern", "b=y.onnx"}, "", "[{  x.ern} {b  y.onnx}]", ""},
		{[]string{"a=x.ern"}, "", "[{a  x.ern}]", ""},
		{[]string{"a=x.ern", "a@2=y.ern", "a@v3.1=z.ern"}, "", "[{a  x.ern} {a 2 y.ern} {a v3.1 z.ern}]", ""},
		{[]string{"a@=x.ern", "a@b@c=y.ern", "@2=z.ern"}, "", "[{  a@=x.ern} {  a@b@c=y.ern} {  @2=z.ern}]", ""},
		{[]string{odd}, "", "[{  " + odd + "}]", ""},
		{[]string{"a=x.ern"}, "n", "", "already names"},
	} {
		got, err := parseModelArgs(tc.args, tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v --name %q: error %v, want %q", tc.args, tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("%v --name %q: %v %v, want %s", tc.args, tc.name, got, err, tc.want)
		}
	}
}

// startServe runs `edge-resnet serve` as a child process and returns it
// with the address it listens on, its exit status when it exits, and its
// stderr so far.
func startServe(t *testing.T, args ...string) (*os.Process, string, <-chan int, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// --tune off here and in classifyLogits: the tests compare served
	// logits with classify's bit for bit, and tuned fp32 plans of other
	// batch sizes or thread counts may pick other algorithms, equal only
	// to rounding (TestTuneCache covers tuning).
	cmd := cliCommand(ctx, ".", append([]string{"serve", "--tune", "off", "--addr", "127.0.0.1:0"}, args...), nil)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			// Under qemu-user (CI's ARM steps) the kernel cannot run this
			// ARM binary as a child; the native test step runs these tests.
			t.Skipf("this test binary cannot start itself as a server here (%v): an emulated run", err)
		}
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	addr := ""
	logs := &syncBuffer{} // from the startup line on
	for addr == "" && sc.Scan() {
		if _, a, ok := strings.Cut(sc.Text(), " addr=http://"); ok { // the text log's startup line
			addr, _, _ = strings.Cut(a, " ")
			fmt.Fprintln(logs, sc.Text())
		}
	}
	if addr == "" {
		cmd.Process.Kill()
		t.Fatalf("serve printed no address")
	}
	exit := make(chan int, 1)
	go func() {
		io.Copy(logs, stderr)
		cmd.Wait()
		exit <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd.Process, addr, exit, logs
}

// TestServeSIGTERMDrains: requests in flight when SIGTERM comes are
// answered, with the logits `classify --logits` prints for the same
// tensor, with and without batching, and the server exits 0.
func TestServeSIGTERMDrains(t *testing.T) {
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(math.Cos(float64(i)*0.11)) * 1.5
	}
	want := classifyLogits(t, "", x)
	for _, tc := range []struct {
		name     string
		args     []string
		inFlight int // requests that fill every place
	}{
		{"unbatched", nil, 1},
		{"batched", []string{"--max-batch", "2", "--batch-timeout", "50ms"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc, addr, exit, _ := startServe(t, append([]string{"--sessions", "1", "--threads-per-session", "1", "--queue", "0"}, tc.args...)...)
			var conns []net.Conn
			for range tc.inFlight {
				conns = append(conns, startRequest(t, addr, x))
			}
			// Probing for a 429 while the requests are being admitted could
			// take a place at the moment one of them asks: wait for them
			// in /metrics, then probe once.
			waitMetric(t, "http://"+addr+"/metrics", fmt.Sprintf(`edge_resnet_in_flight_requests{model="resnet20-fashion-mnist",version="1"} %d`, tc.inFlight))
			resp, err := http.Post("http://"+addr+"/v2/models/resnet20-fashion-mnist/infer", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("a request past the places: status %d, want 429", resp.StatusCode)
			}
			if err := proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // let the signal land before the rest of the bodies
			for _, c := range conns {
				got := finishRequest(t, c, x)
				if !slices.EqualFunc(got, want, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
					t.Errorf("serve's logits %v, classify --logits %v", got, want)
				}
			}
			select {
			case code := <-exit:
				if code != 0 {
					t.Errorf("exit status %d after SIGTERM, want 0", code)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not exit after SIGTERM")
			}
		})
	}
}

// classifyLogits is what `classify --logits` prints for x (1x28x28) on
// model ("": the built-in one).
func classifyLogits(t *testing.T, model string, x []float32) []float32 {
	t.Helper()
	npy := filepath.Join(t.TempDir(), "x.npy")
	var buf bytes.Buffer
	if err := preprocess.WriteNPY(&buf, []int{1, 1, 28, 28}, x); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(npy, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"classify", "--tune", "off", "--logits", "--json", npy}
	if model != "" {
		args = append(args, "-m", model)
	}
	out, _, err := run(t, args...)
	var want struct{ Logits []float32 }
	if err != nil || json.Unmarshal([]byte(out), &want) != nil {
		t.Fatalf("classify: %v %s", err, out)
	}
	return want.Logits
}

// inferBody is an infer request of x for the built-in model.
func inferBody(x []float32) []byte {
	body, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{1, 1, 28, 28}, "datatype": "FP32", "data": x}}})
	return body
}

// startRequest sends an infer request's headers and half its body: in
// flight, holding a place.
func startRequest(t *testing.T, addr string, x []float32) net.Conn {
	t.Helper()
	var meta struct{ Inputs []struct{ Name string } }
	getJSON(t, "http://"+addr+"/v2/models/resnet20-fashion-mnist", &meta)
	if meta.Inputs[0].Name != "input" {
		t.Fatalf("the model's input is %q", meta.Inputs[0].Name)
	}
	body := inferBody(x)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /v2/models/resnet20-fashion-mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2])
	return c
}

// finishRequest sends the rest of startRequest's body and returns the
// response's logits.
func finishRequest(t *testing.T, c net.Conn, x []float32) []float32 {
	t.Helper()
	body := inferBody(x)
	c.Write(body[len(body)/2:])
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Outputs []struct{ Data []float32 } }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || len(got.Outputs) == 0 {
		t.Fatalf("in-flight request: %d %v %+v", resp.StatusCode, err, got)
	}
	return got.Outputs[0].Data
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
}

// waitMetric reads url (/metrics) until it has the line want.
func waitMetric(t *testing.T, url, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "\n"+want+"\n") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no line %q within 10 s", url, want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		want          string // in the line logged at warn; "" for no line
		err           string
	}{
		{"text", "info", "level=WARN msg=x k=1", ""},
		{"json", "debug", `"level":"WARN","msg":"x","k":1`, ""},
		{"json", "error", "", ""},
		{"xml", "info", "", "--log-format"},
		{"text", "loud", "", "--log-level"},
	} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, tc.format, tc.level)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want %q", tc.format, tc.level, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		log.Warn("x", "k", 1)
		if got := buf.String(); tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s %s: logged %q, want %q", tc.format, tc.level, got, tc.want)
		}
	}
}

// replaceFile puts src's bytes at dst as a model is deployed: written
// beside it, then renamed over it.
func replaceFile(t *testing.T, dst string, data []byte) {
	t.Helper()
	if err := os.WriteFile(dst+".new", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		t.Fatal(err)
	}
}

// TestServeReload swaps a served model file between the fp32 and int8
// built-in models while a client sends requests without pause: SIGHUP
// (and, with --watch-models, the change alone) brings the other model's
// logits (`classify --logits`'s), a broken file keeps the old model and
// logs why, and no request fails.
func TestServeReload(t *testing.T) {
	fp32, err := os.ReadFile("../../models/resnet20_fashion_mnist.ern")
	if err != nil {
		t.Fatal(err)
	}
	quantized, err := os.ReadFile("../../testdata/int8/resnet20_fashion_mnist_int8.ern")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.23)) * 1.2
	}
	want32 := classifyLogits(t, "../../models/resnet20_fashion_mnist.ern", x)
	want8 := classifyLogits(t, "../../testdata/int8/resnet20_fashion_mnist_int8.ern", x)
	if sameFloats(want32, want8) {
		t.Fatal("the fp32 and int8 models give the same logits: the test cannot tell them apart")
	}
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch %v", watch), func(t *testing.T) {
			model := filepath.Join(t.TempDir(), "m.ern")
			replaceFile(t, model, fp32)
			args := []string{"-m", "fm=" + model, "--sessions", "1", "--threads-per-session", "1", "--queue", "8"}
			if watch {
				args = append(args, "--watch-models", "--watch-interval", "20ms")
			}
			proc, addr, _, logs := startServe(t, args...)
			url := "http://" + addr + "/v2/models/fm/infer"
			stop := hammer(url, x)
			defer stop()
			expect := func(want []float32, what string) {
				t.Helper()
				if !watch {
					proc.Signal(syscall.SIGHUP)
				}
				for deadline := time.Now().Add(10 * time.Second); !sameFloats(postLogits(url, x), want); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the served logits are not %v within 10 s; log:\n%s", what, want, logs.String())
					}
				}
			}
			expect(want32, "start")
			replaceFile(t, model, quantized)
			expect(want8, "int8 file")
			replaceFile(t, model, []byte("not a model"))
			if !watch {
				proc.Signal(syscall.SIGHUP)
			}
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "reload failed"); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no reload error logged for a broken file; log:\n%s", logs.String())
				}
			}
			if got := postLogits(url, x); !sameFloats(got, want8) {
				t.Errorf("after a failed reload: %v, want the int8 model's %v", got, want8)
			}
			replaceFile(t, model, fp32)
			expect(want32, "fp32 file again")
			if n := stop(); n != 0 {
				t.Errorf("%d requests failed during reloads", n)
			}
		})
	}
}

func sameFloats(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// postLogits posts x and returns the logits (nil on any failure).
func postLogits(url string, x []float32) []float32 {
	resp, err := http.Post(url, "application/json", bytes.NewReader(inferBody(x)))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var got struct{ Outputs []struct{ Data []float32 } }
	if json.NewDecoder(resp.Body).Decode(&got) != nil || resp.StatusCode != 200 || len(got.Outputs) == 0 {
		return nil
	}
	return got.Outputs[0].Data
}

// hammer posts x to url one request after another until stop, counting
// the requests that fail; stop returns after the last one.
func hammer(url string, x []float32) (stop func() int64) {
	var failures atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			if postLogits(url, x) == nil {
				failures.Add(1)
			}
		}
	}()
	var once sync.Once
	return func() int64 {
		once.Do(func() { close(quit); <-done })
		return failures.Load()
	}
}
