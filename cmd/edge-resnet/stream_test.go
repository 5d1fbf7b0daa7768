package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// runIO executes the CLI with stdin and ctx; stdout and stderr are
// written to out and errw.
func runIO(ctx context.Context, stdin io.Reader, out, errw io.Writer, args ...string) error {
	root := newRootCmd()
	root.SetIn(stdin)
	root.SetOut(out)
	root.SetErr(errw)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// syncBuffer is a bytes.Buffer that a test may read while the CLI writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 20 s (qemu is slow).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sampleJPEGs re-encodes the built-in model's samples as JPEG files in
// dir, at 28x28 and scaled up 8x (a frame that preprocessing resizes),
// and returns their paths and bytes.
func sampleJPEGs(t *testing.T, dir string) ([]string, [][]byte) {
	t.Helper()
	pngs, err := filepath.Glob("../../testdata/samples/*.png")
	if err != nil || len(pngs) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	var paths []string
	var data [][]byte
	for i, p := range pngs {
		img, err := preprocess.DecodeFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, scale := range []int{1, 8} {
			var b bytes.Buffer
			if err := jpeg.Encode(&b, scaleUp(img, scale), &jpeg.Options{Quality: 90}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("%02d_x%d.jpg", i, scale))
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			paths, data = append(paths, path), append(data, b.Bytes())
		}
	}
	return paths, data
}

// scaleUp enlarges img s times by pixel repetition.
func scaleUp(img image.Image, s int) image.Image {
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx()*s, b.Dy()*s))
	for y := range b.Dy() * s {
		for x := range b.Dx() * s {
			out.Set(x, y, img.At(b.Min.X+x/s, b.Min.Y+y/s))
		}
	}
	return out
}

// fileClasses classifies the files as files: the top-1 class of each.
func fileClasses(t *testing.T, paths []string) []int {
	t.Helper()
	out, _, err := run(t, append([]string{"classify", "--json", "-k", "1"}, paths...)...)
	if err != nil {
		t.Fatal(err)
	}
	var classes []int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r jsonResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		classes = append(classes, r.Top[0].Class)
	}
	if len(classes) != len(paths) {
		t.Fatalf("%d results for %d files", len(classes), len(paths))
	}
	return classes
}

// streamLines parses classify --stream --json output.
func streamLines(t *testing.T, out string) []streamResult {
	t.Helper()
	var rs []streamResult
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r streamResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		rs = append(rs, r)
	}
	return rs
}

func streamFrameCount() int {
	if testing.Short() {
		return 30
	}
	return 300
}

// TestStreamClassify pipes concatenated JPEG frames through classify
// --stream and classify -: one result per frame, in order, each the class
// of the same image classified as a file; a regular file as the stream
// loses no frame without --no-drop.
func TestStreamClassify(t *testing.T) {
	dir := t.TempDir()
	paths, data := sampleJPEGs(t, dir)
	classes := fileClasses(t, paths)
	n := streamFrameCount()
	var all bytes.Buffer
	for i := range n {
		b := data[i%len(data)]
		if i%7 == 3 {
			b = withoutTables(b) // as USB webcams send MJPEG
		}
		all.Write(b)
	}
	mjpeg := filepath.Join(dir, "frames.mjpeg")
	if err := os.WriteFile(mjpeg, all.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"classify", "--stream", "--no-drop", "--json", "-k", "1", "-"},
		{"classify", "--no-drop", "--json", "-k", "1", "-"},
		{"classify", "--stream", "--json", "-k", "1", mjpeg},
	} {
		var out, errb bytes.Buffer
		if err := runIO(context.Background(), bytes.NewReader(all.Bytes()), &out, &errb, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errb.String())
		}
		rs := streamLines(t, out.String())
		if len(rs) != n {
			t.Fatalf("%v: %d results for %d frames\n%s", args, len(rs), n, errb.String())
		}
		for i, r := range rs {
			if r.Frame != i || r.Dropped != 0 || len(r.Top) != 1 || r.Top[0].Class != classes[i%len(classes)] || r.Ms <= 0 {
				t.Fatalf("%v: line %d: %+v, want frame %d of class %d", args, i, r, i, classes[i%len(classes)])
			}
		}
		want := fmt.Sprintf("%d frames read, %d classified, 0 dropped, 0 failed", n, n)
		if !strings.Contains(errb.String(), want) {
			t.Errorf("%v: summary %q lacks %q", args, errb.String(), want)
		}
	}
}

// withoutTables removes the Huffman tables from a JPEG that Go's encoder
// wrote (one DHT segment, of the standard tables).
func withoutTables(b []byte) []byte {
	d := bytes.Index(b, []byte{0xFF, 0xC4})
	end := d + 2 + (int(b[d+2])<<8 | int(b[d+3]))
	return append(b[:d:d], b[end:]...)
}

// slowWriter is a consumer that takes its time over each line.
type slowWriter struct {
	d time.Duration
	w io.Writer
}

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.d)
	return s.w.Write(p)
}

// TestStreamThrottled: when inference (or its consumer) falls behind,
// frames are dropped, counted in each line and the summary with no gap:
// every frame before a line is classified or dropped, and the last
// frame is classified. --every N classifies frames 0, N, 2N...
func TestStreamThrottled(t *testing.T) {
	_, data := sampleJPEGs(t, t.TempDir())
	n := 30
	var all bytes.Buffer
	for i := range n {
		all.Write(data[i%len(data)])
	}
	for _, tc := range []struct {
		name  string
		args  []string
		slow  time.Duration
		every int
	}{
		{"fps", []string{"--fps", "20"}, 0, 1},
		{"slow consumer", nil, 30 * time.Millisecond, 1},
		{"every 4", []string{"--every", "4", "--no-drop"}, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			var w io.Writer = &out
			if tc.slow > 0 {
				w = slowWriter{tc.slow, &out}
			}
			args := append([]string{"classify", "--stream", "--json", "-k", "1"}, append(tc.args, "-")...)
			if err := runIO(context.Background(), bytes.NewReader(all.Bytes()), w, &errb, args...); err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			rs := streamLines(t, out.String())
			checkStreamAccounting(t, rs, n, tc.every, errb.String())
		})
	}
}

// checkStreamAccounting checks the lines and summary of a stream of n
// good frames: in order, each line's dropped count is exactly the frames
// before it that were not classified, and the counts add up.
func checkStreamAccounting(t *testing.T, rs []streamResult, n, every int, stderr string) {
	t.Helper()
	if len(rs) == 0 || rs[len(rs)-1].Frame != (n-1)/every*every {
		t.Fatalf("the last frame offered was not classified: %+v", rs)
	}
	for j, r := range rs {
		offered := (r.Frame + every - 1) / every // frames offered before this one
		if r.Frame%every != 0 || r.Dropped != int64(offered-j) || j > 0 && r.Frame <= rs[j-1].Frame {
			t.Fatalf("line %d: %+v: out of order, or dropped is not the %d offered frames before it less the %d classified", j, r, offered, j)
		}
	}
	dropped := rs[len(rs)-1].Dropped
	want := fmt.Sprintf("%d frames read, %d classified, %d dropped, 0 failed", n, len(rs), dropped)
	if every > 1 {
		want += fmt.Sprintf(", %d skipped by --every %d", n-(n+every-1)/every, every)
	} else if dropped == 0 {
		t.Errorf("nothing dropped")
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("summary %q lacks %q", stderr, want)
	}
}

// TestStreamBadInput: data between frames, a frame that does not decode,
// a truncated last frame and a frame over --max-frame-bytes are each
// reported with the frame's index or the offset, counted, and the stream
// goes on; the exit status is 1.
func TestStreamBadInput(t *testing.T) {
	_, data := sampleJPEGs(t, t.TempDir())
	small, big := data[0], data[1] // 28x28, 224x224
	if len(small) >= 1<<10 || len(big) <= 1<<10 {
		t.Fatalf("frames of %d and %d bytes: want one under 1 KiB and one over", len(small), len(big))
	}
	badCRC := func() []byte {
		b, err := os.ReadFile("../../testdata/samples/0000_ankle_boot.png")
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-13]++ // the last chunk's CRC before IEND
		return b
	}()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	junk := []byte("--boundary\r\nContent-Type: image/jpeg\r\n\r\n")
	for _, tc := range []struct {
		name                       string
		data                       []byte
		args                       []string
		frames, classified, failed int
		stderr                     []string
	}{
		{"garbage between frames", cat(junk, small, junk, small), nil, 2, 2, 0, []string{
			fmt.Sprintf("stdin: offset 0: skipped %d bytes: not a JPEG or PNG frame", len(junk)),
			fmt.Sprintf("stdin: offset %d: skipped %d bytes", len(junk)+len(small), len(junk)),
			fmt.Sprintf("; %d bytes between frames skipped", 2*len(junk))}},
		{"frame that does not decode", cat(small, badCRC, small), nil, 3, 2, 1, []string{
			fmt.Sprintf("stdin frame 1 (offset %d)", len(small)), "checksum"}},
		{"truncated last frame", cat(small, small, big[:len(big)/2]), nil, 3, 2, 1, []string{
			fmt.Sprintf("stdin frame 2: offset %d: skipped %d bytes of a frame: truncated: the stream ends inside the jpeg frame", 2*len(small), len(big)/2)}},
		{"frame over the bound", cat(small, big, small), []string{"--max-frame-bytes", "1KiB"}, 3, 2, 1, []string{
			"stdin frame 1: offset " + fmt.Sprint(len(small)), "larger than the bound of 1024 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append(append([]string{"classify", "--stream", "--no-drop", "--json", "-k", "1"}, tc.args...), "-")
			err := runIO(context.Background(), bytes.NewReader(tc.data), &out, &errb, args...)
			if !errors.Is(err, errReported) {
				t.Fatalf("want exit status 1, got %v\n%s", err, errb.String())
			}
			if rs := streamLines(t, out.String()); len(rs) != tc.classified {
				t.Errorf("%d results, want %d", len(rs), tc.classified)
			}
			want := fmt.Sprintf("%d frames read, %d classified, 0 dropped, %d failed", tc.frames, tc.classified, tc.failed)
			for _, w := range append(tc.stderr, want) {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

// TestStreamFlagErrors: bad flag values and misuse are refused naming the
// flag.
func TestStreamFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--stream", "--every", "0", "-"}, "--every 0: must be >= 1"},
		{[]string{"--stream", "--fps", "-1", "-"}, "--fps -1: must be a number >= 0"},
		{[]string{"--stream", "--max-frame-bytes", "100", "-"}, "--max-frame-bytes 100 B: must be 1 KiB to"},
		{[]string{"--stream", "a.mjpeg", "b.mjpeg"}, "--stream reads one stream (- or a file), not 2"},
		{[]string{"--stream", "--vote", "-"}, "--vote takes files"},
		{[]string{"-m", "-", "-"}, "-m - and the stream cannot both be standard input"},
		{[]string{"--every", "2", "x.jpg"}, "--every applies to --stream"},
		{[]string{"x.jpg", "-"}, "- (standard input) is a stream of frames"},
		{[]string{"--stream", dir}, "is a directory: --stream reads one stream"},
		{nil, "classify needs FILE|DIR..., or --stream"},
	} {
		err := runIO(context.Background(), strings.NewReader(""), io.Discard, io.Discard, append([]string{"classify"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestStreamInterrupt: cancelling (Ctrl-C, SIGTERM) a stream that is
// still open ends it at once with the summary, and status 0.
func TestStreamInterrupt(t *testing.T) {
	_, data := sampleJPEGs(t, t.TempDir())
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- runIO(ctx, pr, &out, &errb, "classify", "--stream", "--no-drop", "--json", "-") }()
	for i := range 3 {
		if _, err := pw.Write(data[i]); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 results", func() bool { return strings.Count(out.String(), "\n") == 3 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end when cancelled")
	}
	if !strings.Contains(errb.String(), "3 frames read, 3 classified, 0 dropped, 0 failed (interrupted)") {
		t.Errorf("summary: %q", errb.String())
	}
}

// TestWatch: watch classifies a file written after it starts once the
// file is complete, leaves the files already there alone, and ends when
// cancelled; --once classifies what is there and exits.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	paths, data := sampleJPEGs(t, src)
	classes := fileClasses(t, paths[:3])
	if err := os.WriteFile(filepath.Join(dir, "before.jpg"), data[0], 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runIO(ctx, nil, &out, &errb, "watch", "--json", "-k", "1", "--interval", "20ms", "--settle", "300ms", dir)
	}()
	waitFor(t, "watch to start", func() bool { return strings.Contains(errb.String(), "watching") })
	// Written in two parts with a pause: it must not be read half-done.
	f, err := os.Create(filepath.Join(dir, "new.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data[1][:100])
	time.Sleep(100 * time.Millisecond)
	f.Write(data[1][100:])
	f.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image"), 0o644)
	waitFor(t, "a result", func() bool { return strings.Contains(out.String(), "\n") })
	time.Sleep(100 * time.Millisecond) // room for a wrong second line
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var r jsonResult
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &r) != nil || filepath.Base(r.File) != "new.jpg" || r.Top[0].Class != classes[1] {
		t.Fatalf("want one result for new.jpg of class %d:\n%s\n%s", classes[1], out.String(), errb.String())
	}

	// --once: the files there, then exit.
	once := t.TempDir()
	for i := range 3 {
		os.WriteFile(filepath.Join(once, fmt.Sprintf("%d.jpg", i)), data[2*i%len(data)], 0o644)
	}
	os.WriteFile(filepath.Join(once, "broken.png"), []byte("\x89PNG\r\n\x1a\nbroken"), 0o644)
	var o, e bytes.Buffer
	err = runIO(context.Background(), nil, &o, &e, "watch", "--once", "--json", "-k", "1", "--interval", "10ms", "--settle", "30ms", once)
	if !errors.Is(err, errReported) || !strings.Contains(e.String(), "broken.png") || strings.Count(o.String(), "\n") != 3 {
		t.Fatalf("watch --once: %v\n%s\n%s", err, o.String(), e.String())
	}
	for _, bad := range [][]string{{"--interval", "1ms", once}, {"--settle", "-1s", once}, {filepath.Join(once, "0.jpg")}} {
		if err := runIO(context.Background(), nil, io.Discard, io.Discard, append([]string{"watch"}, bad...)...); err == nil {
			t.Errorf("watch %v accepted", bad)
		}
	}
}

// TestStreamHelp: the help of classify and watch shows the camera pipe.
func TestStreamHelp(t *testing.T) {
	for _, cmd := range []string{"classify", "watch"} {
		out, _, err := run(t, cmd, "-h")
		if err != nil || !strings.Contains(out, "rpicam-") || !strings.Contains(out, "--json") {
			t.Errorf("%s -h: %v\n%s", cmd, err, out)
		}
	}
	if out, _, _ := run(t, "classify", "-h"); !strings.Contains(out, "rpicam-vid -t 0 --codec mjpeg -o - | edge-resnet classify --stream --json -") {
		t.Errorf("classify -h lacks the rpicam-vid example:\n%s", out)
	}
}
