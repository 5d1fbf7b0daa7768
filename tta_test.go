package edgeresnet

import (
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

// ttaImages are Fashion-MNIST samples (28x28: the corner crops shift into
// the padding) and, when the shared data is there, a 451x300 photo (resized
// to 42x28: the corner crops sit at the image's left and right edges).
func ttaImages(t *testing.T) map[string]image.Image {
	t.Helper()
	paths, _ := filepath.Glob("testdata/samples/*.png")
	if len(paths) < 3 {
		t.Fatalf("want testdata/samples/*.png, found %d", len(paths))
	}
	paths = paths[:3]
	if p := "../shared/data/images/skimage/chelsea.png"; fileExists(p) {
		paths = append(paths, p)
	}
	imgs := map[string]image.Image{}
	for _, p := range paths {
		img, err := preprocess.DecodeFile(p)
		if err != nil {
			t.Fatal(err)
		}
		imgs[filepath.Base(p)] = img
	}
	return imgs
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestTTAMatchesSeparateViews checks that the batched test-time
// augmentation equals the mean of the views' probabilities, each view
// preprocessed alone and run alone through a batch-1 session.
func TestTTAMatchesSeparateViews(t *testing.T) {
	m, one := defaultSession(t, WithThreads(1))
	spec := m.Meta().Preprocess
	imgs := ttaImages(t)
	for _, tc := range []struct {
		name  string
		views int
	}{{"flip", 2}, {"crop", 5}, {"flip,crop", 10}} {
		views, err := preprocess.ParseViews(tc.name)
		if err != nil || len(views) != tc.views {
			t.Fatalf("%s: %d views, %v", tc.name, len(views), err)
		}
		s, err := m.NewSession(WithThreads(1), WithBatch(len(views)))
		if err != nil {
			t.Fatal(err)
		}
		changed := false
		for name, img := range imgs {
			want := make([]float64, len(one.probs))
			for _, v := range views {
				if err := spec.ApplyViews(img, []preprocess.View{v}, one.Input(), nil); err != nil {
					t.Fatal(err)
				}
				out, err := one.Run(nil)
				if err != nil {
					t.Fatal(err)
				}
				for c, p := range one.Probabilities(out) {
					want[c] += float64(p) / float64(len(views))
				}
			}
			top, err := s.ClassifyViews(img, views, 3)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, name, err)
			}
			for c, p := range s.mean {
				if math.Abs(float64(p)-want[c]) > 1e-6 {
					t.Errorf("%s %s: class %d: batched mean %v, separate views %v", tc.name, name, c, p, want[c])
				}
			}
			if float64(top[0].Prob) != float64(s.mean[top[0].Class]) || top[0].Class != argmax(want) {
				t.Errorf("%s %s: top-1 %+v, want class %d of the mean", tc.name, name, top[0], argmax(want))
			}
			// The views must matter, or this test could not fail.
			plain, _ := s.Classify(img, 1)
			changed = changed || math.Abs(float64(plain[0].Prob)-want[plain[0].Class]) > 1e-4
		}
		if !changed {
			t.Errorf("%s: the mean of the views equals the plain prediction on every image", tc.name)
		}
		s.Close()
	}
}

// defaultSession is a session of the built-in model, closed with the test.
func defaultSession(t *testing.T, opts ...SessionOption) (*Model, *Session) {
	t.Helper()
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return m, s
}

func TestTTAErrors(t *testing.T) {
	_, s := defaultSession(t, WithThreads(1))
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	views, _ := preprocess.ParseViews("flip")
	if _, err := s.ClassifyViews(img, views, 1); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "2 views need a session of batch 2") {
		t.Errorf("2 views on a batch-1 session: %v", err)
	}
	if _, err := s.ClassifyViews(img, nil, 1); !errors.Is(err, ErrInput) {
		t.Errorf("no views: %v", err)
	}
	if _, err := s.RunViews(2); !errors.Is(err, ErrInput) {
		t.Errorf("RunViews(2) on a batch-1 session: %v", err)
	}
	if top := s.TopKProbs(make([]float32, 3), 1); top != nil {
		t.Errorf("TopKProbs of 3 values for 10 classes: %v, want nil", top)
	}
}

// TestEvaluateViews checks that Evaluate with views predicts what
// ClassifyViews does, sample by sample, on real Fashion-MNIST test images.
func TestEvaluateViews(t *testing.T) {
	dir := sharedData(t)
	views, _ := preprocess.ParseViews("flip,crop")
	m, s := defaultSession(t, WithThreads(1), WithBatch(len(views)))
	set, err := dataset.Open(filepath.Join(dir, "images/fashion_mnist/t10k-images-idx3-ubyte.gz"), m.Labels())
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	n := 60
	if testing.Short() {
		n = 12 // 10 views each; emulated runs are 10-50x slower
	}
	res, err := Evaluate(m, set, EvalOptions{Workers: 2, Limit: n, Views: views, KeepOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		img, err := set.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		top, err := s.ClassifyViews(img, views, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res.Predictions[i] != top[0].Class || res.Outputs[i*10+top[0].Class] != top[0].Prob {
			t.Errorf("sample %d: Evaluate predicts %d, ClassifyViews %+v", i, res.Predictions[i], top[0])
		}
	}
	if res.Top1 < 0.8 {
		t.Errorf("top-1 %.3f with 10-crop on %d images", res.Top1, n)
	}
}
