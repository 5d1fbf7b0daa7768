package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// Loader turns batches of sample indices of a dataset.Set into input
// tensors: each image is decoded, preprocessed with Spec.Apply (the
// function inference uses, so training and inference see the same input)
// and then augmented (Augment; its zero value does nothing, for
// validation).
//
// Results are deterministic: image i of epoch e is augmented with
// random numbers seeded from (Seed, e, i) alone, and every image has its
// own place in the batch, so the tensors are the same whatever the number
// of workers and however they are scheduled.
type Loader struct {
	Set     dataset.Set
	Spec    preprocess.Spec // the model's preprocessing
	Augment Augment
	Seed    uint64
	// Workers decode and preprocess the images of a batch in parallel; 0
	// means GOMAXPROCS.
	Workers int
	// Prefetch is how many batches a Stream prepares ahead of the one the
	// caller holds (queued or being decoded); 0 means 2. A Stream holds
	// Prefetch+1 batches in memory, never the whole set.
	Prefetch int
}

// Batch is a batch of samples as the model's input.
type Batch struct {
	Step    int       // its place in the epoch's batches
	Indices []int     // the samples, in the order of X's images
	X       []float32 // NHWC images: Shape[0] x H x W x C
	Shape   [4]int    // [batch, height, width, channels]
	Labels  []int     // class of each sample
}

// worker is one decoding goroutine's state.
type worker struct {
	scr preprocess.Scratch
	pcg *rand.PCG
	rng *rand.Rand
	tmp []float32
}

// check validates the loader's settings.
func (l *Loader) check() error {
	if l.Set == nil {
		return errors.New("train: loader without a dataset")
	}
	if err := l.Spec.Validate(); err != nil {
		return err
	}
	if l.Workers < 0 || l.Prefetch < 0 {
		return fmt.Errorf("train: loader with %d workers, prefetch %d (want >= 0)", l.Workers, l.Prefetch)
	}
	return l.Augment.Validate()
}

func (l *Loader) workers() []*worker {
	n := l.Workers
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	ws := make([]*worker, n)
	for i := range ws {
		pcg := rand.NewPCG(0, 0)
		ws[i] = &worker{pcg: pcg, rng: rand.New(pcg)}
	}
	return ws
}

// padFill is the preprocessed value of a black pixel in each channel:
// what torchvision's zero padding of the image becomes after ToTensor and
// Normalize (0 scaled is 0, then (0 - mean) / std).
func (l *Loader) padFill() []float32 {
	fill := make([]float32, l.Spec.Channels)
	for c := range fill {
		fill[c] = (0 - l.Spec.Mean[c]) / l.Spec.Std[c]
	}
	return fill
}

// Load decodes one batch of epoch's samples indices synchronously (for
// validation, or a single step).
func (l *Loader) Load(ctx context.Context, epoch int, indices []int) (*Batch, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	b := new(Batch)
	return b, l.fill(ctx, epoch, indices, b, l.workers(), l.padFill())
}

// fill decodes the samples indices into b on the workers, image j of the
// batch by whichever worker takes it. Its error is ctx's when ctx is done,
// else that of the first failing image in the batch's order.
func (l *Loader) fill(ctx context.Context, epoch int, indices []int, b *Batch, ws []*worker, pad []float32) error {
	h, w, c := l.Spec.Height, l.Spec.Width, l.Spec.Channels
	per, n := h*w*c, len(indices)
	if cap(b.X) < n*per {
		b.X = make([]float32, n*per)
	}
	b.X = b.X[:n*per]
	b.Labels = append(b.Labels[:0], make([]int, n)...)
	b.Indices = append(b.Indices[:0], indices...)
	b.Shape = [4]int{n, h, w, c}
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, wk := range ws[:min(len(ws), n)] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= n || ctx.Err() != nil {
					return
				}
				b.Labels[j], errs[j] = l.sample(wk, epoch, indices[j], b.X[j*per:(j+1)*per], pad)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sample decodes, preprocesses and augments sample i into dst and returns
// its label. Errors name the sample.
func (l *Loader) sample(wk *worker, epoch, i int, dst, pad []float32) (int, error) {
	img, err := l.Set.Image(i)
	if err == nil {
		err = l.Spec.Apply(img, dst, &wk.scr)
	}
	if err != nil {
		if name := l.Set.Name(i); !strings.Contains(err.Error(), name) {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return -1, err
	}
	label := l.Set.Label(i)
	if label < 0 {
		return -1, fmt.Errorf("%s: unlabeled sample", l.Set.Name(i))
	}
	if l.Augment != (Augment{}) {
		if len(wk.tmp) < len(dst) {
			wk.tmp = make([]float32, len(dst))
		}
		wk.pcg.Seed(mix(l.Seed, uint64(epoch), uint64(i)), streamAugment)
		l.Augment.Apply(dst, l.Spec.Height, l.Spec.Width, l.Spec.Channels, pad, wk.rng, wk.tmp)
	}
	return label, nil
}

// Stream delivers an epoch's batches in order while its workers decode
// the next ones (at most Loader.Prefetch ahead) in parallel with whatever
// the caller does with the current one.
type Stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	free   chan *Batch // buffers the producer may fill
	ready  chan loaded
	done   chan struct{}
	held   *Batch // the batch the caller has, recycled by the next Next
	err    error  // the error that ended the stream
}

type loaded struct {
	b   *Batch
	err error
}

// Start begins decoding batches (e.g. Batches.Epoch(epoch)) in the
// background. The caller must Close the stream.
func (l *Loader) Start(ctx context.Context, epoch int, batches [][]int) (*Stream, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	pre := l.Prefetch
	if pre == 0 {
		pre = 2
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		ctx: ctx, cancel: cancel,
		free:  make(chan *Batch, pre+1),
		ready: make(chan loaded, pre),
		done:  make(chan struct{}),
	}
	for range pre + 1 {
		s.free <- new(Batch)
	}
	go s.produce(l, epoch, batches)
	return s, nil
}

func (s *Stream) produce(l *Loader, epoch int, batches [][]int) {
	defer close(s.done)
	defer close(s.ready)
	ws, pad := l.workers(), l.padFill()
	for k, idx := range batches {
		var b *Batch
		select {
		case b = <-s.free:
		case <-s.ctx.Done():
			return
		}
		err := l.fill(s.ctx, epoch, idx, b, ws, pad)
		b.Step = k
		select {
		case s.ready <- loaded{b, err}:
		case <-s.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next batch, io.EOF after the last one, or the error
// that ended the stream (a sample's, naming it, or the context's). The
// batch is valid until the next call to Next or Close, which recycle its
// memory.
func (s *Stream) Next() (*Batch, error) {
	if s.held != nil {
		s.free <- s.held // never blocks: free has room for every buffer
		s.held = nil
	}
	if s.err == nil {
		s.err = s.ctx.Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	select {
	case r, ok := <-s.ready:
		switch {
		case !ok && s.ctx.Err() != nil:
			s.err = s.ctx.Err()
		case !ok:
			s.err = io.EOF
		default:
			s.err = r.err
		}
		if s.err != nil {
			return nil, s.err
		}
		s.held = r.b
		return r.b, nil
	case <-s.ctx.Done():
		s.err = s.ctx.Err()
		return nil, s.err
	}
}

// Each calls f on every batch of the stream in order, until the stream
// ends (nil) or it or f fails (that error). A batch is valid only during
// its call.
func (s *Stream) Each(f func(*Batch) error) error {
	for {
		b, err := s.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f(b); err != nil {
			return err
		}
	}
}

// Close stops the workers and waits for them. It may be called at any
// time, more than once.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}
