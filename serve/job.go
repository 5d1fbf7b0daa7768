package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// job is one request's samples and, after a runner ran it, its outputs.
type job struct {
	in     tensorInfo
	n      int
	tensor []float32 // n samples in the model's input layout, or
	images [][]byte  // n encoded images
	topK   int       // 0: no top-k

	outs [][]float32             // per model output, the n samples after each other
	top  []edgeresnet.Prediction // topK per sample, after each other

	// The batcher's: the request's context, when it was queued, whether
	// a worker took it off the queue, the samples already placed in a
	// batch (by the one worker that holds the job), and its end: err,
	// then done closed, once.
	ctx      context.Context
	arrived  time.Time
	taken    bool
	next     int
	err      error
	done     chan struct{}
	finished bool
}

// execute runs j on a held session, in chunks of the session's batch.
// Images are decoded here, one at a time, so that decoded images in
// memory are bounded by the sessions (each image within
// preprocess.MaxDecodeBytes), not by the requests admitted.
// observe gets the samples of each run.
func execute(s *edgeresnet.Session, j *job, observe func(float64)) error {
	b := s.Batch()
	for off := 0; off < j.n; off += b {
		k := min(b, j.n-off)
		if err := fill(s, j, off, k, 0); err != nil {
			return runError(err)
		}
		out, err := s.RunBatch(k)
		if err != nil {
			return runError(err)
		}
		observe(float64(k))
		j.collect(s, out, k, 0, off, k)
	}
	return nil
}

// fill writes samples off to off+k of j into the session's input from
// slot on, as RunTensor and Preprocess would (the same transposition and
// preprocessing, so the logits are theirs bit for bit).
func fill(s *edgeresnet.Session, j *job, off, k, slot int) error {
	if j.images == nil {
		size := j.in.size
		for i := range k {
			src, dst := j.tensor[(off+i)*size:(off+i+1)*size], s.Sample(slot+i)
			if s.InputLayout() == firmware.LayoutNHWC {
				copy(dst, src)
			} else if err := preprocess.NCHWToNHWC(j.in.shape, src, dst); err != nil {
				return fmt.Errorf("sample %d: %w", off+i, err)
			}
		}
		return nil
	}
	for i := range k {
		img, err := preprocess.Decode(bytes.NewReader(j.images[off+i]), fmt.Sprintf("image %d", off+i))
		if err != nil {
			return err
		}
		if err := s.PreprocessAt(slot+i, img); err != nil {
			return fmt.Errorf("image %d: %w", off+i, err)
		}
	}
	return nil
}

// runError gives a session's or decoder's error its HTTP status.
func runError(err error) error {
	switch {
	case errors.Is(err, edgeresnet.ErrClosed):
		return errorf(http.StatusServiceUnavailable, "the server is shutting down: %v", err)
	case errors.Is(err, preprocess.ErrOverBudget):
		return errorf(http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, edgeresnet.ErrBusy):
		return errorf(http.StatusInternalServerError, "%v", err)
	}
	return errorf(http.StatusBadRequest, "%v", err)
}

// collect copies the outputs of k samples, at slot of the session's last
// run of total samples, to samples off to off+k of j, and their top-k.
func (j *job) collect(s *edgeresnet.Session, out []float32, total, slot, off, k int) {
	outs := s.Outputs()
	if j.outs == nil {
		j.outs = make([][]float32, len(outs))
	}
	for i, o := range outs {
		per := len(o.Values) / total
		if j.outs[i] == nil {
			j.outs[i] = make([]float32, j.n*per)
		}
		copy(j.outs[i][off*per:(off+k)*per], o.Values[slot*per:(slot+k)*per])
	}
	if j.topK == 0 {
		return
	}
	per := len(out) / total
	for i := slot; i < slot+k; i++ {
		j.top = append(j.top, s.TopK(out[i*per:(i+1)*per], j.topK)...)
	}
}
