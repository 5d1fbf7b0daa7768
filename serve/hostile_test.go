package serve_test

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/serve"
)

// serveHTTP serves the built-in model as modelName (newFixture: with
// the server's own http.Server) and returns the address.
func serveHTTP(t *testing.T, opt serve.Options) string {
	t.Helper()
	return strings.TrimPrefix(newFixture(t, opt).url, "http://")
}

// trickle dials addr, sends head at once and then a byte of filler
// every 10 ms until a write fails or stop closes; closed gets how long
// the connection lived once the server closed it (a read ended).
func trickle(t *testing.T, addr, head string, stop <-chan struct{}, closed chan<- time.Duration) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		closed <- 0
		return
	}
	start := time.Now()
	go func() {
		defer c.Close()
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		for tick := time.NewTicker(10 * time.Millisecond); ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{'a'}); err != nil {
				return
			}
		}
	}()
	go func() {
		io.Copy(io.Discard, c)
		closed <- time.Since(start)
	}()
}

// TestSlowloris: 100 connections trickle their headers a byte at a time
// (and reconnect when closed, for the whole test) and 8 trickle an infer
// body after complete headers, more than the 3 places. The server keeps
// answering: other GETs at once, inference once the trickled bodies'
// request timeout (2 s) freed the places; and it closes the slow
// connections itself, header tricklers after the header timeout (the
// first 100 closes), every body trickler after the request timeout
// (each checked against a generous 30 s).
func TestSlowloris(t *testing.T) {
	addr := serveHTTP(t, serve.Options{Sessions: 1, Queue: 2, Timeout: 2 * time.Second, HeaderTimeout: 300 * time.Millisecond})
	const headerConns, bodyConns = 100, 8
	stop := make(chan struct{})
	closed := make(chan time.Duration, 4*(headerConns+bodyConns))
	var attackers sync.WaitGroup
	defer func() { close(stop); attackers.Wait() }()
	for range headerConns { // reconnecting: a slowloris that never ends
		attackers.Go(func() {
			for {
				again := make(chan time.Duration, 1)
				trickle(t, addr, "POST /v2/models/"+modelName+"/infer HTTP/1.1\r\nHost: x\r\nX-Slow: ", stop, again)
				select {
				case d := <-again:
					select {
					case closed <- d:
					default: // counted enough already
					}
				case <-stop:
					return
				}
			}
		})
	}
	firstBody := make(chan time.Duration, bodyConns)
	for range bodyConns {
		trickle(t, addr, fmt.Sprintf("POST /v2/models/%s/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"inputs\": [", modelName), stop, firstBody)
	}
	closes := func(what string, n int, ch <-chan time.Duration) {
		for i := range n {
			select {
			case d := <-ch:
				if d > 30*time.Second {
					t.Errorf("a %s lived %v", what, d)
				}
			case <-time.After(time.Minute):
				t.Fatalf("%d of %d %ss closed after a minute", i, n, what)
			}
		}
	}
	closes("header trickler", headerConns, closed) // 100 closes, as many as tricklers
	closes("body trickler", bodyConns, firstBody)
	if resp, err := http.Get("http://" + addr + "/v2/health/live"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v2/health/live under slowloris: %v %v", resp, err)
	}
	body := fmt.Sprintf(`{"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [%s0]}]}`, strings.Repeat("0.5, ", 783))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Post("http://"+addr+"/v2/models/"+modelName+"/infer", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no inference answered under slowloris within 30 s (last: %v %v)", resp, err)
		}
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// allocated is the bytes this process allocated while f ran (MemStats'
// TotalAlloc: every allocation counts, freed or not, whatever the GC
// did, so a body read into memory shows however briefly it lived).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHugeBody: a 256 MiB body is refused with 413 without being read
// into memory: declared (Content-Length) at the default 64 MiB limit,
// the server refuses it before reading; chunked, it reads at most the
// limit (1 MiB here). The process (server and client) allocates under
// 16 MiB meanwhile, a sixteenth of the body.
func TestHugeBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		declared bool
		limit    int64
	}{{"declared", true, 0}, {"chunked", false, 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveHTTP(t, serve.Options{Sessions: 1, MaxBodyBytes: tc.limit})
			status := 0
			n := allocated(func() {
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v2/models/"+modelName+"/infer", io.LimitReader(zeros{}, 256<<20))
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = -1
				if tc.declared {
					req.ContentLength = 256 << 20
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
			})
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", status)
			}
			if n > 16<<20 {
				t.Errorf("%d MiB allocated while refusing a 256 MiB body, want under 16", n>>20)
			}
		})
	}
}

// pngChunk is a PNG chunk: length, type, data, CRC.
func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(append(b, typ...), data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// TestImageBomb: a 100-byte PNG that declares 60000x60000 RGB pixels
// (10 GiB decoded) is refused with 413 from its header, before decoding:
// the process allocates under 16 MiB meanwhile.
func TestImageBomb(t *testing.T) {
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 60000), 60000)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	png := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	png = append(png, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	png = append(png, pngChunk("IEND", nil)...)
	f := newFixture(t, serve.Options{Sessions: 1})
	body := mustJSON(t, map[string]any{"inputs": []any{map[string]any{"name": f.input, "shape": []int{1}, "datatype": "BYTES",
		"data": []string{base64.StdEncoding.EncodeToString(png)}}}})
	var status int
	var got map[string]any
	n := allocated(func() {
		resp := f.post(t, body, nil)
		status, got = resp.StatusCode, decodeObject(t, resp)
	})
	if msg, _ := got["error"].(string); status != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "60000") {
		t.Errorf("%d %v, want 413 naming the 60000x60000 pixels", status, got)
	}
	if n > 16<<20 {
		t.Errorf("%d MiB allocated while refusing the image, want under 16", n>>20)
	}
}
