package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/stream"
)

const streamHelp = `classify --stream [-|FILE] (and classify - alone) reads a stream of
concatenated JPEG or PNG frames, MJPEG as rpicam-vid --codec mjpeg -o -,
libcamera-vid and ffmpeg -f image2pipe write it, from standard input ("-"
or nothing) or a file. The model is loaded once; a reader splits the
stream into frames while the model classifies the newest frame each time
it is free: when inference falls behind a live source, older waiting
frames are dropped and counted (only the latest is kept, never a queue).
A regular file (also as standard input, < video.mjpeg) is not live and
loses no frames; --no-drop makes a pipe wait for inference too (a recorded
video through ffmpeg). --every N classifies every Nth frame (0, N, 2N...)
and --fps F at most F frames a second (the newest when the time comes).
Frames are numbered from 0 in stream order; each must fit in
--max-frame-bytes. JPEG frames without Huffman tables (the MJPEG of USB
webcams, ffmpeg -f v4l2 -input_format mjpeg ... -c:v copy) get the
standard ones.

Each classified frame prints one line as soon as it is done, in frame
order; with --json:
  {"frame": 12, "top": [{"class": 9, "label": "Ankle boot", "prob": 0.99}], "ms": 1.2, "dropped": 3}
where dropped is the number of frames dropped so far. A frame that does
not decode, or is corrupt, truncated or too large, is reported on stderr
with its index and offset and counted as failed; data between frames that
is not a frame is reported and skipped. At the end of the stream, or on
Ctrl-C or SIGTERM, a summary goes to stderr: frames read, classified,
dropped, failed (and skipped by --every). The exit status is 1 when a
frame failed or data was skipped.`

const streamExamples = `  rpicam-vid -t 0 --codec mjpeg -o - | edge-resnet classify --stream --json -
  rpicam-vid -t 0 --codec mjpeg --width 640 --height 480 -o - | edge-resnet classify -m resnet18.ern -k 1 --fps 2 -
  ffmpeg -i video.mp4 -f image2pipe -c:v mjpeg - | edge-resnet classify --stream --no-drop --every 10 --json -
  edge-resnet classify --stream --json recording.mjpeg`

// addStreamFlags adds the flags of classify --stream.
func addStreamFlags(cmd *cobra.Command, f *classifyFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&f.stream, "stream", false, "read concatenated JPEG/PNG frames (MJPEG) from standard input or one file")
	fl.IntVar(&f.every, "every", 1, "with --stream: classify every Nth frame")
	fl.Float64Var(&f.fps, "fps", 0, "with --stream: classify at most this many frames a second (0: no cap)")
	fl.BoolVar(&f.noDrop, "no-drop", false, "with --stream: never drop frames; reading waits for inference (regular files never drop)")
	f.maxFrame = memoryFlag{n: stream.DefaultMaxFrameBytes, set: true}
	fl.Var(&f.maxFrame, "max-frame-bytes", "with --stream: the largest encoded frame held in memory")
}

// refuseStreamFlags fails when a --stream flag is given without --stream.
func refuseStreamFlags(cmd *cobra.Command) error {
	for _, name := range []string{"every", "fps", "no-drop", "max-frame-bytes"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s applies to --stream (classify --stream [-|FILE])", name)
		}
	}
	return nil
}

// checkStreamFlags refuses flag values and arguments classify --stream
// cannot take, naming them.
func checkStreamFlags(f classifyFlags, args []string) error {
	if err := checkIntFlags(intFlag{"--every", f.every, 1, 0, "classify every Nth frame"}); err != nil {
		return err
	}
	if !(f.fps >= 0) || math.IsInf(f.fps, 0) {
		return fmt.Errorf("--fps %v: must be a number >= 0 (0: no cap)", f.fps)
	}
	if f.maxFrame.n < 1<<10 || f.maxFrame.n > preprocess.MaxImageFileBytes {
		return fmt.Errorf("--max-frame-bytes %s: must be 1 KiB to %s (preprocess.MaxImageFileBytes, the most one encoded image may hold in memory)",
			edgeresnet.FormatBytes(f.maxFrame.n), edgeresnet.FormatBytes(preprocess.MaxImageFileBytes))
	}
	if len(args) > 1 {
		return fmt.Errorf("--stream reads one stream (- or a file), not %d: %s", len(args), strings.Join(args, " "))
	}
	if f.vote {
		return fmt.Errorf("--vote takes files, not --stream")
	}
	if f.model == "-" && (len(args) == 0 || args[0] == "-") {
		return fmt.Errorf("-m - and the stream cannot both be standard input: give the model as a file")
	}
	return nil
}

// streamSource is the stream argument: standard input ("-" or none) or
// a file. regular is a regular file, which cannot fall behind.
type streamSource struct {
	name    string
	stdin   io.Reader // nil: open path
	path    string
	regular bool
}

// streamSourceOf checks the stream argument without opening it: opening
// a named pipe waits for its writer, which the reader does, so that
// Ctrl-C still ends the run.
func streamSourceOf(stdin io.Reader, args []string) (streamSource, error) {
	if len(args) == 0 || args[0] == "-" {
		src := streamSource{name: "stdin", stdin: stdin}
		if f, ok := stdin.(*os.File); ok {
			st, err := f.Stat()
			src.regular = err == nil && st.Mode().IsRegular()
		}
		return src, nil
	}
	st, err := os.Stat(args[0])
	if err != nil {
		return streamSource{}, err
	}
	if st.IsDir() {
		return streamSource{}, fmt.Errorf("%s: is a directory: --stream reads one stream (a file, a pipe or -); classify DIR classifies its files", args[0])
	}
	return streamSource{name: args[0], path: args[0], regular: st.Mode().IsRegular()}, nil
}

// open opens the source; closeFn closes it.
func (s streamSource) open() (r io.Reader, closeFn func(), err error) {
	if s.stdin != nil {
		return s.stdin, func() {}, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// streamFrame is a frame on its way from the reader to the classifier.
type streamFrame struct {
	index   int
	offset  int64
	format  string // "jpeg" or "png"
	data    []byte
	dropped int64 // frames dropped before this one
}

// streamStats are a stream's counts, updated by the reader and the
// classifier as they go.
type streamStats struct {
	frames, classified, dropped, failed, every, garbage atomic.Int64
}

// streamRun is one classify --stream: a reader goroutine splits frames
// into a one-frame slot, the classifier takes them from it.
type streamRun struct {
	f       classifyFlags
	ss      *batchSessions
	enc     *json.Encoder
	stdout  io.Writer
	stderr  *lockedWriter
	name    string
	drop    bool
	slot    chan streamFrame
	st      streamStats
	readErr error // set by the reader before it closes slot
}

// runStream classifies the frames of one stream and prints the summary.
func runStream(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, f classifyFlags, args []string) error {
	if err := checkStreamFlags(f, args); err != nil {
		return err
	}
	src, err := streamSourceOf(stdin, args)
	if err != nil {
		return err
	}
	m, ss, err := openClassifier(f)
	if err != nil {
		return err
	}
	defer m.Close()
	defer ss.close()
	// Decoding one frame, and three frames held: being split, waiting, being decoded.
	limitHeap(preprocess.MaxDecodeBytes + 3*f.maxFrame.n)

	// Cancelled on return, so that a reader waiting to offer a frame ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &streamRun{f: f, ss: ss, enc: json.NewEncoder(stdout), stdout: stdout, stderr: &lockedWriter{w: stderr},
		name: src.name, drop: !f.noDrop && !src.regular, slot: make(chan streamFrame, 1)}
	go r.read(ctx, src)
	interrupted, err := r.classifyLoop(ctx)
	r.summary(interrupted)
	switch {
	case err != nil:
		return err
	case !interrupted && r.readErr != nil:
		return r.readErr
	case r.st.failed.Load() > 0 || r.st.garbage.Load() > 0:
		return errReported
	}
	return nil
}

// read opens the stream, splits it and offers each frame to the
// classifier, until the stream ends, fails, or ctx is done.
func (r *streamRun) read(ctx context.Context, src streamSource) {
	defer close(r.slot)
	in, closeFn, err := src.open()
	if err != nil {
		r.readErr = err
		return
	}
	defer closeFn()
	sp := stream.NewSplitter(in, r.f.maxFrame.n)
	for ctx.Err() == nil {
		fr, err := sp.Next()
		var skip *stream.SkipError
		switch {
		case errors.As(err, &skip):
			r.skipped(skip)
			continue
		case err == io.EOF:
			return
		case err != nil:
			r.readErr = fmt.Errorf("%s: %w", r.name, err)
			return
		}
		i := int(r.st.frames.Add(1) - 1)
		if i%r.f.every != 0 {
			r.st.every.Add(1)
			continue
		}
		if !r.offer(ctx, streamFrame{index: i, offset: fr.Offset, format: fr.Format, data: fr.Data}) {
			return
		}
	}
}

// skipped reports bytes the splitter skipped: a bad frame is a failed
// frame with its index; other data is counted apart.
func (r *streamRun) skipped(skip *stream.SkipError) {
	if skip.Frame {
		i := r.st.frames.Add(1) - 1
		r.st.failed.Add(1)
		r.stderr.printf("edge-resnet: %s frame %d: %v\n", r.name, i, skip)
		return
	}
	r.st.garbage.Add(skip.Bytes)
	r.stderr.printf("edge-resnet: %s: %v\n", r.name, skip)
}

// offer puts a frame in the slot: without dropping, it waits until the
// classifier has taken the last one; else it replaces a frame still
// waiting there, which is dropped.
func (r *streamRun) offer(ctx context.Context, fr streamFrame) bool {
	if !r.drop {
		select {
		case r.slot <- fr:
			return true
		case <-ctx.Done():
			return false
		}
	}
	select {
	case <-r.slot:
		r.st.dropped.Add(1)
	default:
	}
	// Only this goroutine sends: the slot is empty now, so the send
	// cannot block, and every frame dropped so far came before this one.
	fr.dropped = r.st.dropped.Load()
	r.slot <- fr
	return true
}

// classifyLoop classifies the frames the reader offers until it closes
// the slot (interrupted false) or ctx is done (true); an error is a
// failure to write the results.
func (r *streamRun) classifyLoop(ctx context.Context) (interrupted bool, err error) {
	var next time.Time // --fps: when the next frame may be taken
	for {
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return true, nil
			}
		}
		var fr streamFrame
		var ok bool
		select {
		case fr, ok = <-r.slot:
		case <-ctx.Done():
			return true, nil
		}
		if !ok {
			return false, nil
		}
		if r.f.fps > 0 {
			next = time.Now().Add(time.Duration(float64(time.Second) / r.f.fps))
		}
		if err := r.classifyFrame(fr); err != nil {
			return false, err
		}
	}
}

// streamResult is one frame's JSON line.
type streamResult struct {
	Frame   int                     `json:"frame"`
	Top     []edgeresnet.Prediction `json:"top"`
	Ms      float64                 `json:"ms"`
	Dropped int64                   `json:"dropped"`
	Views   int                     `json:"views,omitempty"`
	Logits  []float32               `json:"logits,omitempty"`
}

// classifyFrame decodes and classifies one frame and prints its line; a
// frame that fails is reported and counted, and only a failure to write
// the line is returned.
func (r *streamRun) classifyFrame(fr streamFrame) error {
	name := fmt.Sprintf("%s frame %d (offset %d)", r.name, fr.index, fr.offset)
	if fr.format == "jpeg" {
		fr.data, _ = stream.WithDefaultHuffman(fr.data) // USB webcams' MJPEG
	}
	img, err := preprocess.Decode(bytes.NewReader(fr.data), name)
	var res []sampleResult
	var dt time.Duration
	if err == nil {
		res, dt, err = classifyImage(r.ss, name, img, r.f.k)
	}
	if err != nil {
		r.st.failed.Add(1)
		r.stderr.printf("edge-resnet: %v\n", err)
		return nil
	}
	r.st.classified.Add(1)
	top := res[0]
	if r.f.json {
		jr := streamResult{Frame: fr.index, Top: top.top, Ms: ms(dt), Dropped: fr.dropped, Views: top.views}
		if r.f.logits {
			jr.Logits = top.out
		}
		err = r.enc.Encode(jr) // one Write per line: a pipe sees it at once
	} else {
		var line strings.Builder
		fmt.Fprintf(&line, "frame %d:", fr.index)
		for i, p := range top.top {
			sep := " "
			if i > 0 {
				sep = ", "
			}
			fmt.Fprintf(&line, "%s%s %.2f%%", sep, predName(p), 100*p.Prob)
		}
		fmt.Fprintf(&line, "  (%.1f ms, %d dropped)\n", ms(dt), fr.dropped)
		if r.f.logits {
			fmt.Fprintf(&line, "  logits: %v\n", top.out)
		}
		_, err = io.WriteString(r.stdout, line.String())
	}
	if err != nil {
		return fmt.Errorf("writing the result of %s: %w", name, err)
	}
	return nil
}

// summary prints the counts on stderr.
func (r *streamRun) summary(interrupted bool) {
	st := &r.st
	var b strings.Builder
	fmt.Fprintf(&b, "edge-resnet: %s: %d frames read, %d classified, %d dropped, %d failed",
		r.name, st.frames.Load(), st.classified.Load(), st.dropped.Load(), st.failed.Load())
	if n := st.every.Load(); n > 0 {
		fmt.Fprintf(&b, ", %d skipped by --every %d", n, r.f.every)
	}
	if n := st.garbage.Load(); n > 0 {
		fmt.Fprintf(&b, "; %d bytes between frames skipped", n)
	}
	if interrupted {
		b.WriteString(" (interrupted)")
	}
	r.stderr.printf("%s\n", b.String())
}

// lockedWriter serializes the messages of the reader and the classifier.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}
