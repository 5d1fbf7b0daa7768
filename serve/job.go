package serve

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"

	edgeresnet "github.com/edge-resnet/edge-resnet"
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
}

// execute runs j on a held session, in chunks of the session's batch.
// Images are decoded here, one at a time, so that decoded images in
// memory are bounded by the sessions (each image within
// preprocess.MaxDecodeBytes), not by the requests admitted.
func execute(s *edgeresnet.Session, j *job) error {
	b := s.Batch()
	for off := 0; off < j.n; off += b {
		k := min(b, j.n-off)
		out, err := runChunk(s, j, off, k)
		if err != nil {
			return runError(err)
		}
		j.collect(s, out, off, k)
	}
	return nil
}

// runChunk runs samples off to off+k of j.
func runChunk(s *edgeresnet.Session, j *job, off, k int) ([]float32, error) {
	if j.images == nil {
		size := j.in.size
		return s.RunTensor(append([]int{k}, j.in.shape...), j.tensor[off*size:(off+k)*size])
	}
	for i := range k {
		img, err := preprocess.Decode(bytes.NewReader(j.images[off+i]), fmt.Sprintf("image %d", off+i))
		if err != nil {
			return nil, err
		}
		if err := s.PreprocessAt(i, img); err != nil {
			return nil, fmt.Errorf("image %d: %w", off+i, err)
		}
	}
	return s.RunBatch(k)
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

// collect copies the outputs of samples off..off+k out of the session,
// and their top-k.
func (j *job) collect(s *edgeresnet.Session, out []float32, off, k int) {
	for i, o := range s.Outputs() {
		per := len(o.Values) / k
		if j.outs == nil {
			j.outs = make([][]float32, len(s.Outputs()))
		}
		if j.outs[i] == nil {
			j.outs[i] = make([]float32, j.n*per)
		}
		copy(j.outs[i][off*per:], o.Values)
	}
	if j.topK == 0 {
		return
	}
	per := len(out) / k
	for i := range k {
		j.top = append(j.top, s.TopK(out[i*per:(i+1)*per], j.topK)...)
	}
}
