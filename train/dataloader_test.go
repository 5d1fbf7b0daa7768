package train

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// memSet is a synthetic dataset.Set: sample i is a w x h gray (or RGB)
// image whose pixels depend on i, with label i%10. Samples in bad fail to
// decode, those in empty decode to an image with no pixels, and every
// Image call sleeps for delay.
type memSet struct {
	n, w, h int
	rgb     bool
	bad     map[int]bool
	empty   map[int]bool
	delay   time.Duration
}

func (s *memSet) Len() int              { return s.n }
func (s *memSet) Label(i int) int       { return i % 10 }
func (s *memSet) Name(i int) string     { return fmt.Sprintf("mem#%d", i) }
func (s *memSet) Classes() []string     { return nil }
func (s *memSet) Close() error          { return nil }
func (s *memSet) pix(i, x, y int) uint8 { return uint8(i*7 + x*3 + y*5) }

func (s *memSet) Image(i int) (image.Image, error) {
	time.Sleep(s.delay)
	if s.bad[i] {
		return nil, fmt.Errorf("%s: corrupt", s.Name(i))
	}
	if s.empty[i] {
		return image.NewGray(image.Rect(0, 0, 0, 0)), nil
	}
	r := image.Rect(0, 0, s.w, s.h)
	if !s.rgb {
		g := image.NewGray(r)
		for y := 0; y < s.h; y++ {
			for x := 0; x < s.w; x++ {
				g.SetGray(x, y, color.Gray{s.pix(i, x, y)})
			}
		}
		return g, nil
	}
	m := image.NewNRGBA(r)
	for y := 0; y < s.h; y++ {
		for x := 0; x < s.w; x++ {
			v := s.pix(i, x, y)
			m.SetNRGBA(x, y, color.NRGBA{v, v ^ 0x55, 255 - v, 255})
		}
	}
	return m, nil
}

func graySpec(n int) preprocess.Spec {
	return preprocess.Spec{Height: n, Width: n, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0.286}, Std: []float32{0.353}}
}

func rgbSpec(resize, n int) preprocess.Spec {
	return preprocess.Spec{Resize: resize, Height: n, Width: n, Channels: 3, Scale: 1.0 / 255,
		Mean: []float32{0.49, 0.48, 0.45}, Std: []float32{0.25, 0.24, 0.26}}
}

// epochBatches reads a whole epoch from a stream, copying each batch.
func epochBatches(t *testing.T, l *Loader, epoch int, batches [][]int) []Batch {
	t.Helper()
	s, err := l.Start(context.Background(), epoch, batches)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []Batch
	bufs := map[*float32]bool{}
	for {
		b, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		bufs[&b.X[:1][0]] = true
		out = append(out, Batch{Step: b.Step, Indices: slices.Clone(b.Indices), X: slices.Clone(b.X), Shape: b.Shape, Labels: slices.Clone(b.Labels)})
	}
	pre := l.Prefetch
	if pre == 0 {
		pre = 2
	}
	if len(bufs) > pre+1 {
		t.Errorf("%d batch buffers with prefetch %d", len(bufs), pre)
	}
	return out
}

func TestLoaderWorkers(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  *memSet
		spec preprocess.Spec
		aug  Augment
	}{
		{"gray", &memSet{n: 45, w: 12, h: 12}, graySpec(12), Augment{Pad: 2, Flip: true}},
		{"rgb-resize", &memSet{n: 30, w: 15, h: 11, rgb: true}, rgbSpec(10, 8), Augment{Pad: 1, Flip: true, MinScale: 0.5, MaxScale: 1}},
		{"none", &memSet{n: 20, w: 8, h: 8, rgb: true}, rgbSpec(0, 8), Augment{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batches := NewBatches(seq(tc.set.n), 8, 5)
			var ref []Batch
			for _, cfg := range [][2]int{{1, 1}, {4, 1}, {4, 2}, {2, 0}} {
				l := &Loader{Set: tc.set, Spec: tc.spec, Augment: tc.aug, Seed: 9, Workers: cfg[0], Prefetch: cfg[1]}
				got := epochBatches(t, l, 3, batches.Epoch(3))
				if len(got) != batches.Len() {
					t.Fatalf("%d batches, want %d", len(got), batches.Len())
				}
				if ref == nil {
					ref = got
					checkBatches(t, l, batches.Epoch(3), got)
					continue
				}
				for k := range got {
					if !slices.Equal(got[k].X, ref[k].X) || !slices.Equal(got[k].Labels, ref[k].Labels) || got[k].Step != k {
						t.Fatalf("%d workers, prefetch %d: batch %d differs from 1 worker's", cfg[0], cfg[1], k)
					}
				}
			}
			l := &Loader{Set: tc.set, Spec: tc.spec, Augment: tc.aug, Seed: 9, Workers: 3}
			other := epochBatches(t, l, 4, batches.Epoch(3))
			if changed := !slices.Equal(other[0].X, ref[0].X); changed != (tc.aug != Augment{}) {
				t.Errorf("same samples in epochs 3 and 4: augmentation changed %v", changed)
			}
		})
	}
}

// checkBatches checks shapes and labels, and that each image is the
// preprocessed sample (what eval feeds the model) augmented with the
// randomness of (seed, epoch, index), by a synchronous Load.
func checkBatches(t *testing.T, l *Loader, want [][]int, got []Batch) {
	t.Helper()
	sp := l.Spec
	per := sp.Height * sp.Width * sp.Channels
	plain := *l
	plain.Augment = Augment{}
	for k, b := range got {
		if !slices.Equal(b.Indices, want[k]) || b.Shape != [4]int{len(want[k]), sp.Height, sp.Width, sp.Channels} || len(b.X) != len(want[k])*per {
			t.Fatalf("batch %d: indices %v shape %v, want %v", k, b.Indices, b.Shape, want[k])
		}
		one, err := l.Load(context.Background(), 3, want[k])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one.X, b.X) {
			t.Errorf("batch %d: Load and Stream differ", k)
		}
		for j, i := range want[k] {
			if b.Labels[j] != l.Set.Label(i) {
				t.Errorf("batch %d image %d: label %d, want %d", k, j, b.Labels[j], l.Set.Label(i))
			}
		}
		img, _ := l.Set.Image(want[k][0])
		pre := make([]float32, per)
		if err := sp.Apply(img, pre, nil); err != nil {
			t.Fatal(err)
		}
		p, _ := plain.Load(context.Background(), 3, want[k][:1])
		if !slices.Equal(p.X, pre) {
			t.Errorf("batch %d: without augmentation, not Spec.Apply's tensor", k)
		}
	}
}

// TestLoaderIDX loads a small IDX pair written here through dataset.Open,
// as training on Fashion-MNIST's files does.
func TestLoaderIDX(t *testing.T) {
	const n, h, w = 12, 6, 5
	dir := t.TempDir()
	img := binary.BigEndian.AppendUint32(nil, 0x803)
	img = binary.BigEndian.AppendUint32(img, n)
	img = binary.BigEndian.AppendUint32(img, h)
	img = binary.BigEndian.AppendUint32(img, w)
	lab := binary.BigEndian.AppendUint32(nil, 0x801)
	lab = binary.BigEndian.AppendUint32(lab, n)
	for i := 0; i < n; i++ {
		for p := 0; p < h*w; p++ {
			img = append(img, uint8(i*20+p))
		}
		lab = append(lab, uint8(9-i%10))
	}
	p := filepath.Join(dir, "t-images-idx3-ubyte")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t-labels-idx1-ubyte"), lab, 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := dataset.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	spec := preprocess.Spec{Height: h, Width: w, Channels: 1, Scale: 1, Mean: []float32{0}, Std: []float32{1}}
	l := &Loader{Set: set, Spec: spec, Workers: 3}
	got := epochBatches(t, l, 0, [][]int{{11, 0, 5}})
	for j, i := range []int{11, 0, 5} {
		if got[0].Labels[j] != 9-i%10 {
			t.Errorf("sample %d: label %d, want %d", i, got[0].Labels[j], 9-i%10)
		}
		for q := 0; q < h*w; q++ {
			if v := got[0].X[j*h*w+q]; v != float32(uint8(i*20+q)) {
				t.Fatalf("sample %d pixel %d: %g, want %d", i, q, v, uint8(i*20+q))
			}
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestLoaderCancel(t *testing.T) {
	set := &memSet{n: 2000, w: 8, h: 8, delay: 2 * time.Millisecond}
	batches := NewBatches(seq(set.n), 100, 1).Epoch(0)
	for _, when := range []string{"before", "after one batch"} {
		ctx, cancel := context.WithCancel(context.Background())
		l := &Loader{Set: set, Spec: graySpec(8), Augment: Augment{Flip: true}, Workers: 2}
		s, err := l.Start(ctx, 0, batches)
		if err != nil {
			t.Fatal(err)
		}
		if when != "before" {
			if _, err := s.Next(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		start := time.Now()
		_, err = s.Next()
		s.Close()
		if d := time.Since(start); !errors.Is(err, context.Canceled) || d > time.Second {
			t.Errorf("cancel %s: %v after %v, want context.Canceled at once", when, err, d)
		}
		if _, err := s.Next(); !errors.Is(err, context.Canceled) {
			t.Errorf("cancel %s: then %v", when, err)
		}
	}
	// Close in the middle of an epoch stops the workers promptly.
	l := &Loader{Set: set, Spec: graySpec(8), Workers: 2}
	s, _ := l.Start(context.Background(), 0, batches)
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestLoaderBadImage(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  *memSet
		want string
	}{
		{"decode", &memSet{n: 40, w: 8, h: 8, bad: map[int]bool{13: true}}, "mem#13: corrupt"},
		{"preprocess", &memSet{n: 40, w: 8, h: 8, empty: map[int]bool{13: true, 30: true}}, "mem#13: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Loader{Set: tc.set, Spec: graySpec(8), Workers: 4}
			s, err := l.Start(context.Background(), 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Next(); err != io.EOF {
				t.Fatalf("no batches: %v, want io.EOF", err)
			}
			s.Close()
			s, _ = l.Start(context.Background(), 0, [][]int{seq(10), seq(40)[10:20], seq(40)[20:40]})
			defer s.Close()
			for k := 0; k < 1; k++ {
				if _, err := s.Next(); err != nil {
					t.Fatalf("batch %d: %v", k, err)
				}
			}
			_, err = s.Next()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want one starting %q", err, tc.want)
			}
			if _, again := s.Next(); again != err {
				t.Errorf("then %v", again)
			}
		})
	}
}

// BenchmarkLoader decodes, preprocesses and augments 28x28 gray images
// (Fashion-MNIST's shape) from a synthetic in-memory set, batch 128, with
// GOMAXPROCS workers.
func BenchmarkLoader(b *testing.B) {
	set := &memSet{n: 128 * 16, w: 28, h: 28}
	l := &Loader{Set: set, Spec: graySpec(28), Augment: Augment{Pad: 2, Flip: true}, Seed: 1}
	batches := NewBatches(seq(set.n), 128, 1)
	images := 0
	b.ResetTimer()
	for e := 0; b.Loop(); e++ {
		s, err := l.Start(context.Background(), e, batches.Epoch(e))
		if err != nil {
			b.Fatal(err)
		}
		for {
			bt, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			images += bt.Shape[0]
		}
		s.Close()
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}
