package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

// TestSessionWaitTimeout: a request that waits for a session longer than
// Options.Timeout gets 503, and the server serves once a session is free.
func TestSessionWaitTimeout(t *testing.T) {
	m, err := edgeresnet.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv, err := New([]Named{{Name: "m", Model: m}}, Options{Sessions: 1, ThreadsPerSession: 1, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	p := srv.models["m"].latest().cur.Load().pool
	s := <-p.idle // as if a long run held it
	in := srv.models["m"].latest().cur.Load().in.name
	body := `{"inputs":[{"name":"` + in + `","shape":[1,1,28,28],"datatype":"FP32","data":[` + strings.Repeat("0,", 783) + `0]}]}`
	for _, want := range []int{http.StatusServiceUnavailable, http.StatusOK} {
		start := time.Now()
		resp, err := http.Post(hs.URL+"/v2/models/m/infer", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d after %v, want %d", resp.StatusCode, time.Since(start), want)
		}
		if want == http.StatusServiceUnavailable {
			p.idle <- s
		}
	}
}
