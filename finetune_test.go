package edgeresnet

import (
	"context"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/train"
)

// classSubset is the samples of some classes of a set, at most perClass of
// each, relabeled 0, 1, ... in the order of names.
type classSubset struct {
	dataset.Set
	names  []string
	idx    []int
	labels []int
}

func newClassSubset(t *testing.T, s dataset.Set, names []string, perClass int) *classSubset {
	t.Helper()
	sub := &classSubset{Set: s, names: names}
	count := make([]int, len(names))
	for i := range s.Len() {
		k := slices.Index(names, s.Classes()[s.Label(i)])
		if k >= 0 && count[k] < perClass {
			count[k]++
			sub.idx, sub.labels = append(sub.idx, i), append(sub.labels, k)
		}
	}
	if slices.Min(count) == 0 {
		t.Fatalf("no samples of some of %v in %d", names, s.Len())
	}
	return sub
}

func (s *classSubset) Len() int                         { return len(s.idx) }
func (s *classSubset) Label(i int) int                  { return s.labels[i] }
func (s *classSubset) Name(i int) string                { return s.Set.Name(s.idx[i]) }
func (s *classSubset) Image(i int) (image.Image, error) { return s.Set.Image(s.idx[i]) }
func (s *classSubset) Classes() []string                { return s.names }

// frozenFeatures runs the backbone of fm (its graph cut at the classifier)
// on every image of set.
func frozenFeatures(t *testing.T, fm *firmware.Model, set dataset.Set) (x [][]float64, y []int) {
	t.Helper()
	g, err := train.BackboneGraph(fm.Graph)
	if err != nil {
		t.Fatal(err)
	}
	bb, done, err := backbone(fm, g, 0, backboneBatch, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	m, err := FromModel(&firmware.Model{Graph: fm.Graph, Meta: fm.Meta})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range set.Len() {
		img, err := set.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Preprocess(img); err != nil {
			t.Fatal(err)
		}
		f, err := bb.run(s.Input(), 1)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]float64, len(f))
		for j, v := range f {
			row[j] = float64(v)
		}
		x, y = append(x, row), append(y, set.Label(i))
	}
	return x, y
}

// logisticRegression fits a binary logistic regression (float64,
// full-batch gradient descent) on the training features and returns its
// accuracy on the validation features.
func logisticRegression(xt [][]float64, yt []int, xv [][]float64, yv []int, iters int, lr float64) float64 {
	f := len(xt[0])
	w := make([]float64, f+1) // bias last
	g := make([]float64, f+1)
	score := func(x []float64) float64 {
		z := w[f]
		for j, v := range x {
			z += w[j] * v
		}
		return z
	}
	for range iters {
		clear(g)
		for i, x := range xt {
			d := 1/(1+math.Exp(-score(x))) - float64(yt[i])
			for j, v := range x {
				g[j] += d * v
			}
			g[f] += d
		}
		for j := range w {
			w[j] -= lr * g[j] / float64(len(xt))
		}
	}
	correct := 0
	for i, x := range xv {
		if (score(x) > 0) == (yv[i] == 1) {
			correct++
		}
	}
	return float64(correct) / float64(len(xv))
}

// TestFineTuneCIFARHead is issue 10's fine-tuning check: from the
// pretrained CIFAR-10 ResNet-20 (safetensors, through the family
// builder), the head retrained on cat vs dog (the 50 + 50 training JPEGs
// of the calibration zip) with the backbone frozen reaches at least the
// validation accuracy (test JPEGs) of a logistic regression on the same
// frozen features, less one point, and best.ern classifies as validated.
func TestFineTuneCIFARHead(t *testing.T) {
	dir := sharedData(t)
	start := time.Now()
	model := pretrainedResNet20(t, dir)
	classes := []string{"cat", "dog"}
	perVal := 300
	if testing.Short() {
		perVal = 50
	}
	trainSet := openSubset(t, filepath.Join(dir, "images/cifar10_train_calib500_jpeg.zip"), classes, 50)
	valSet := openSubset(t, filepath.Join(dir, "images/cifar10_test_jpeg.zip"), classes, perVal)
	xt, yt := frozenFeatures(t, model.Image(), trainSet)
	xv, yv := frozenFeatures(t, model.Image(), valSet)
	lrAcc := logisticRegression(xt, yt, xv, yv, 500, 0.1)

	res, err := Train(context.Background(), train.Config{From: model.Image(), FreezeBackbone: true,
		Data: trainSet, Val: valSet, Epochs: 20, Batch: 25, LR: 1e-2, Seed: 1, OutDir: t.TempDir()}, train.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cat vs dog, 100 training images, %d validation: fine-tuned head %.2f%% (last), %.2f%% (best, step %d); logistic regression %.2f%%; %v",
		valSet.Len(), 100*res.Last.ValAcc, 100*res.Best.ValAcc, res.Best.Step, 100*lrAcc, time.Since(start).Round(time.Millisecond))
	if res.Last.ValAcc < lrAcc-0.01 {
		t.Errorf("fine-tuned head %.2f%% < logistic regression %.2f%% - 1", 100*res.Last.ValAcc, 100*lrAcc)
	}
	best, err := Load(res.BestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer best.Close()
	ev, err := Evaluate(best, valSet, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(best.Labels()) != "[cat dog]" || math.Abs(ev.Top1-res.Best.ValAcc) > 1.5/float64(valSet.Len()) {
		t.Errorf("best.ern: labels %v, top-1 %.4f, validated %.4f", best.Labels(), ev.Top1, res.Best.ValAcc)
	}
}

// pretrainedResNet20 is the pretrained CIFAR-10 ResNet-20 of the shared
// data dir (safetensors, through the family builder), closed at the
// test's end.
func pretrainedResNet20(t *testing.T, dir string) *Model {
	t.Helper()
	cfg, err := ParseArch("cifar-resnet20")
	if err != nil {
		t.Fatal(err)
	}
	imported, err := ImportSafetensorsFile(filepath.Join(dir, "models/cifar10_resnet20.safetensors"), cfg, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	model, err := FromModel(imported)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model.Close() })
	return model
}

func openSubset(t *testing.T, path string, classes []string, perClass int) *classSubset {
	t.Helper()
	s, err := dataset.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newClassSubset(t, s, classes, perClass)
}
