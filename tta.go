package edgeresnet

import (
	"fmt"
	"image"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// Test-time augmentation: an image is classified by the mean class
// probabilities of several views of it (mirror, corner crops; see
// preprocess.View and preprocess.ParseViews), run as one batch.

// PreprocessViews writes the views of img, preprocessed as the model's
// metadata says, as images 0 to len(views)-1 of the batch, for RunViews.
// The session's batch must hold them all (WithBatch(len(views))).
func (s *Session) PreprocessViews(img image.Image, views []preprocess.View) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return s.preprocessViews(img, views)
}

func (s *Session) preprocessViews(img image.Image, views []preprocess.View) error {
	if len(views) < 1 || len(views) > s.plan.Batch {
		return fmt.Errorf("%w: %d views need a session of batch %d or more (WithBatch), this one's is %d",
			ErrInput, len(views), max(len(views), 1), s.plan.Batch)
	}
	if err := s.takesImages(); err != nil {
		return err
	}
	dst := s.exec.Input()[:len(views)*s.plan.InputShape().Size()]
	if err := s.m.meta.Preprocess.ApplyViews(img, views, dst, &s.scratch); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	return nil
}

// RunViews runs the first n images of the batch (the views PreprocessViews
// wrote) in one pass and returns the mean of their class probabilities
// (the softmax of each output, or the output itself for models that end in
// a softmax): a session buffer valid until the next RunViews or Close.
// Take its top classes with TopKProbs, not TopK.
func (s *Session) RunViews(n int) ([]float32, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	return s.runViews(n)
}

func (s *Session) runViews(n int) ([]float32, error) {
	if n < 1 || n > s.plan.Batch {
		return nil, fmt.Errorf("%w: RunViews(%d): the session's batch is %d", ErrInput, n, s.plan.Batch)
	}
	out, err := s.checked(s.exec.RunN(n))
	if err != nil {
		return nil, err
	}
	per := len(s.mean)
	clear(s.mean)
	for i := range n {
		for c, p := range s.probabilities(out[i*per : (i+1)*per]) {
			s.mean[c] += p
		}
	}
	for c := range s.mean {
		s.mean[c] /= float32(n)
	}
	return s.mean, nil
}

// TopKProbs returns the k most probable classes of class probabilities
// (such as RunViews' mean), best first, ties broken by lower class index.
// The slice is reused by the next call. It returns nil when the session is
// busy or closed, or when probs does not hold one value per class.
func (s *Session) TopKProbs(probs []float32, k int) []Prediction {
	if len(probs) != len(s.probs) || s.acquire() != nil {
		return nil
	}
	defer s.release()
	return s.topOf(probs, k)
}

// ClassifyViews classifies img by test-time augmentation: its views run
// as one batch (the session's batch must hold them, WithBatch) and the top
// k classes come from their mean probabilities (a slice reused by the next
// call). ClassifyViews(img, []preprocess.View{{}}, k) is Classify.
func (s *Session) ClassifyViews(img image.Image, views []preprocess.View, k int) ([]Prediction, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if err := s.preprocessViews(img, views); err != nil {
		return nil, err
	}
	mean, err := s.runViews(len(views))
	if err != nil {
		return nil, err
	}
	return s.topOf(mean, k), nil
}
