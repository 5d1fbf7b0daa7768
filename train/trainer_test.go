package train_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
	"github.com/edge-resnet/edge-resnet/train"
)

// twoClass is an in-memory dataset.Set of n 8x8 gray images in two easy
// classes: class 0 is bright on the left half, class 1 on the right, with
// a little per-image texture.
type twoClass struct{ n int }

func (s twoClass) Len() int          { return s.n }
func (s twoClass) Label(i int) int   { return i % 2 }
func (s twoClass) Name(i int) string { return fmt.Sprintf("two#%d", i) }
func (s twoClass) Classes() []string { return []string{"left", "right"} }
func (s twoClass) Close() error      { return nil }
func (s twoClass) Image(i int) (image.Image, error) {
	g := image.NewGray(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			v := uint8((i*37 + x*11 + y*23) % 60)
			if (x < 4) == (i%2 == 0) {
				v += 180
			}
			g.SetGray(x, y, color.Gray{v})
		}
	}
	return g, nil
}

func tinyConfig(dir string) train.Config {
	return train.Config{
		Arch:     resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4},
		Data:     twoClass{n: 80},
		ValSplit: 16,
		Spec:     preprocess.Spec{Height: 8, Width: 8, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0.5}, Std: []float32{0.5}},
		Epochs:   4,
		Batch:    16,
		LR:       1e-2,
		ValEvery: 2,
		Keep:     2,
		Seed:     7,
		Threads:  2,
		OutDir:   dir,
	}
}

func readMetrics(t *testing.T, path string) []map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// TestRunLearns trains a ResNet-8 on the two easy classes: the loss falls,
// validation reaches 100%, metrics.jsonl has every field, Keep leaves
// that many checkpoints and best.ern classifies the training images with
// the root package.
func TestRunLearns(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(dir)
	var calls, lastStep, total int
	res, err := train.Run(context.Background(), cfg, train.Callbacks{
		OnMetrics:  func(train.Metrics) { calls++ },
		OnProgress: func(step, n int) { lastStep, total = step, n },
	})
	if err != nil {
		t.Fatal(err)
	}
	if lastStep != 16 || total != 16 || res.Steps != 16 {
		t.Errorf("progress %d/%d, result %d steps: want 16 (4 epochs of 4 batches)", lastStep, total, res.Steps)
	}
	ms := readMetrics(t, filepath.Join(dir, train.MetricsFile))
	if len(ms) != 8 || calls != 8 {
		t.Fatalf("%d metrics lines, %d callbacks: want 8 (every 2 steps)", len(ms), calls)
	}
	for _, k := range []string{"epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"} {
		if _, ok := ms[0][k]; !ok {
			t.Errorf("metrics.jsonl lacks %q: %v", k, ms[0])
		}
	}
	first, last := ms[0]["train_loss"], ms[len(ms)-1]["train_loss"]
	if !(last < first/2) {
		t.Errorf("train loss %g -> %g: did not fall", first, last)
	}
	if res.Best.ValAcc < 0.99 {
		t.Errorf("best validation accuracy %g, want 1", res.Best.ValAcc)
	}
	ckpts, _ := filepath.Glob(filepath.Join(dir, "ckpt-*.ern"))
	if len(ckpts) != 2 {
		t.Errorf("checkpoints %v, want Keep=2 of them", ckpts)
	}
	for _, f := range []string{train.BestFile, train.LatestFile, train.StateFile, train.PlotFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	m, err := edgeresnet.Load(res.BestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ev, err := edgeresnet.Evaluate(m, twoClass{n: 80}, edgeresnet.EvalOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Top1 < 0.99 || m.Labels()[1] != "right" {
		t.Errorf("best.ern: top-1 %g on the training images, labels %v", ev.Top1, m.Labels())
	}
}

// TestRunDeterministicAndResumable runs the same configuration three
// times: uninterrupted twice (best.ern byte for byte the same), and
// interrupted after k steps then resumed, which must end with the same
// state and model images as the uninterrupted run.
func TestRunDeterministicAndResumable(t *testing.T) {
	cfg := tinyConfig("")
	cfg.Epochs = 2
	cfg.Augment = train.Augment{Pad: 1, Flip: true}
	run := func(dir string) {
		t.Helper()
		c := cfg
		c.OutDir = dir
		if _, err := train.Run(context.Background(), c, train.Callbacks{}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := t.TempDir(), t.TempDir()
	run(a)
	run(b)
	sameFile(t, a, b, train.BestFile)
	for _, k := range []int{3, 4, 5} { // mid-epoch after a validation, at the epoch's end, mid-epoch
		t.Run(fmt.Sprint("interrupt@", k), func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			c := cfg
			c.OutDir = dir
			_, err := train.Run(ctx, c, train.Callbacks{OnProgress: func(step, _ int) {
				if step == k {
					cancel()
				}
			}})
			if !errors.Is(err, train.ErrInterrupted) || !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			c.Resume = true
			if _, err := train.Run(context.Background(), c, train.Callbacks{}); err != nil {
				t.Fatal(err)
			}
			sameFile(t, a, dir, train.LatestFile)
			sameFile(t, a, dir, train.BestFile)
			sameFile(t, a, dir, train.PlotFile) // the plot holds no times: the whole history, resumed
			sameMetrics(t, readMetrics(t, filepath.Join(a, train.MetricsFile)), readMetrics(t, filepath.Join(dir, train.MetricsFile)))
		})
	}
}

// sameMetrics compares two metrics.jsonl files but for the seconds.
func sameMetrics(t *testing.T, a, b []map[string]float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d metrics lines, want %d", len(b), len(a))
	}
	for i := range a {
		for k, v := range a[i] {
			if k != "seconds" && b[i][k] != v {
				t.Errorf("metrics line %d: %s %v, want %v", i, k, b[i][k], v)
			}
		}
	}
}

func sameFile(t *testing.T, a, b, name string) {
	t.Helper()
	x, err := os.ReadFile(filepath.Join(a, name))
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(b, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s differs between %s and %s", name, a, b)
	}
}

// TestRunRefuses checks configuration errors and that a directory holding
// a run is not overwritten without Resume.
func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(dir)
	cfg.Epochs = 1
	if _, err := train.Run(context.Background(), cfg, train.Callbacks{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*train.Config)
	}{
		{"existing run", func(*train.Config) {}},
		{"no validation", func(c *train.Config) { c.ValSplit, c.OutDir = 0, t.TempDir() }},
		{"no epochs", func(c *train.Config) { c.Epochs, c.OutDir = 0, t.TempDir() }},
		{"optimizer", func(c *train.Config) { c.Optimizer, c.OutDir = "rmsprop", t.TempDir() }},
		{"decay without steps", func(c *train.Config) { c.DecayRate, c.OutDir = 0.5, t.TempDir() }},
		{"resume another run", func(c *train.Config) { c.Resume, c.Seed = true, 8 }},
		{"resume nothing", func(c *train.Config) { c.Resume, c.OutDir = true, t.TempDir() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			tc.edit(&c)
			if _, err := train.Run(context.Background(), c, train.Callbacks{}); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestRunGroupedLearns trains a tiny ResNeXt (ImageNet layout, 2 groups
// of 4 and of 8 channels in the bottlenecks' 3x3 convs) on the two easy
// classes: best.ern keeps the grouped convs (the fused graph has convs of
// 2 groups) and classifies the training images.
func TestRunGroupedLearns(t *testing.T) {
	cfg := tinyConfig(t.TempDir())
	cfg.Arch = resnet.Config{Blocks: []int{1, 1}, Bottleneck: true, BaseWidth: 4, Groups: 2, WidthPerGroup: 64}
	res, err := train.Run(context.Background(), cfg, train.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := edgeresnet.Load(res.BestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	grouped := 0
	for _, n := range m.Graph().Nodes {
		if n.Conv != nil && n.Conv.Group == 2 {
			grouped++
		}
	}
	ev, err := edgeresnet.Evaluate(m, twoClass{n: 80}, edgeresnet.EvalOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: best validation accuracy %g, top-1 %g on the training images", m.Meta().Arch, res.Best.ValAcc, ev.Top1)
	if grouped != 2 || m.Meta().Arch != "resnext8_2x64d" || ev.Top1 < 0.95 {
		t.Errorf("best.ern: %d convs of 2 groups (want 2), arch %q, top-1 %g on the training images", grouped, m.Meta().Arch, ev.Top1)
	}
}
