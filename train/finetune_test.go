package train_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"testing"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
	"github.com/edge-resnet/edge-resnet/train"
)

// darkBright is an in-memory set of 8x8 gray images in two classes that
// survive global pooling: dark (class 0) and bright (class 1), with a
// little texture.
type darkBright struct{ n int }

func (s darkBright) Len() int          { return s.n }
func (s darkBright) Label(i int) int   { return i % 2 }
func (s darkBright) Name(i int) string { return fmt.Sprintf("db#%d", i) }
func (s darkBright) Classes() []string { return []string{"dark", "bright"} }
func (s darkBright) Close() error      { return nil }
func (s darkBright) Image(i int) (image.Image, error) {
	g := image.NewGray(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			v := uint8((i*37 + x*11 + y*23) % 70)
			if i%2 == 1 {
				v += 140
			}
			g.SetGray(x, y, color.Gray{v})
		}
	}
	return g, nil
}

// tinyModel is a He-initialized CIFAR-style ResNet-8 of 3 classes on 8x8
// gray input, as a fused model image, written to dir/tiny.ern.
func tinyModel(t *testing.T, dir string) (*firmware.Model, string) {
	t.Helper()
	spec := preprocess.Spec{Height: 8, Width: 8, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0.5}, Std: []float32{0.5}}
	cfg := resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 8, InChannels: 1, Classes: 3}
	g, err := resnet.Build(cfg, resnet.HeInit(3))
	if err != nil {
		t.Fatal(err)
	}
	if g, err = graph.Fuse(g); err != nil {
		t.Fatal(err)
	}
	fm := &firmware.Model{Graph: g, Meta: firmware.Meta{Name: "tiny", Arch: cfg.Name(),
		Labels: []string{"a", "b", "c"}, Preprocess: spec, Output: firmware.OutputLogits}}
	path := filepath.Join(dir, "tiny.ern")
	if err := firmware.WriteFile(path, fm); err != nil {
		t.Fatal(err)
	}
	return fm, path
}

// TestFineTuneHead trains a new 2-class head on a frozen random backbone
// of 3 classes: the head learns the easy classes, and best.ern is the
// model's graph with the new classifier and labels, which classifies.
func TestFineTuneHead(t *testing.T) {
	dir := t.TempDir()
	_, path := tinyModel(t, dir)
	m, err := edgeresnet.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(dir, "run")
	cfg := train.Config{From: m.Image(), FreezeBackbone: true, Data: darkBright{n: 64}, ValSplit: 16,
		Epochs: 30, Batch: 16, LR: 5e-2, Seed: 1, Threads: 1, OutDir: out}
	res, err := edgeresnet.Train(context.Background(), cfg, train.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Best.ValAcc < 0.99 || res.Steps != 30*3 {
		t.Errorf("best validation %+v after %d steps: want accuracy 1 and 90 steps", res.Best, res.Steps)
	}
	best, err := edgeresnet.Load(res.BestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer best.Close()
	if got := strings.Join(best.Labels(), ","); got != "dark,bright" {
		t.Errorf("best.ern labels %s", got)
	}
	if got, want := len(best.Graph().Nodes), len(m.Graph().Nodes); got != want {
		t.Errorf("best.ern has %d nodes, the model %d", got, want)
	}
	ev, err := edgeresnet.Evaluate(best, darkBright{n: 64}, edgeresnet.EvalOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Top1 < 0.99 {
		t.Errorf("best.ern: top-1 %g on the images", ev.Top1)
	}
	if m.Graph().OutputShape().C != 3 {
		t.Errorf("the original graph changed: %v outputs", m.Graph().OutputShape())
	}
}

// TestFineTuneRefuses checks the configurations fine-tuning refuses.
func TestFineTuneRefuses(t *testing.T) {
	fm, _ := tinyModel(t, t.TempDir())
	base := train.Config{From: fm, FreezeBackbone: true, Data: darkBright{n: 32}, ValSplit: 8, Epochs: 1}
	tests := []struct {
		name, want string
		edit       func(*train.Config)
	}{
		{"both", "not both", func(c *train.Config) { c.Freeze = "layer1" }},
		{"freeze name", "layer1..layer3 (cifar-resnet8 has 3 stages)", func(c *train.Config) {
			c.FreezeBackbone, c.Freeze = false, "layer4"
			c.Backbone = func([]float32, int) ([]float32, error) { return nil, nil }
		}},
		{"no backbone", "Backbone", func(c *train.Config) {}},
		{"augment", "augmentation", func(c *train.Config) {
			c.Augment.Flip = true
			c.Backbone = func([]float32, int) ([]float32, error) { return nil, nil }
		}},
		{"freeze alone", "From", func(c *train.Config) { c.From = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.OutDir = t.TempDir()
			tc.edit(&cfg)
			_, err := train.Run(context.Background(), cfg, train.Callbacks{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestFineTuneResume interrupts a head fine-tuning mid-epoch and resumes
// it: the features are computed again, the head comes from state.gob, and
// the model images and metrics match an uninterrupted run's.
func TestFineTuneResume(t *testing.T) {
	fm, _ := tinyModel(t, t.TempDir())
	cfg := train.Config{From: fm, FreezeBackbone: true, Data: darkBright{n: 40}, ValSplit: 8,
		Epochs: 3, Batch: 8, LR: 5e-2, ValEvery: 3, Seed: 2, Threads: 1}
	a, b := t.TempDir(), t.TempDir()
	c := cfg
	c.OutDir = a
	if _, err := edgeresnet.Train(context.Background(), c, train.Callbacks{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.OutDir = b
	_, err := edgeresnet.Train(ctx, c, train.Callbacks{OnProgress: func(step, _ int) {
		if step == 6 {
			cancel()
		}
	}})
	if !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	c.Resume = true
	if _, err := edgeresnet.Train(context.Background(), c, train.Callbacks{}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, a, b, train.LatestFile)
	sameFile(t, a, b, train.BestFile)
	sameMetrics(t, readMetrics(t, filepath.Join(a, train.MetricsFile)), readMetrics(t, filepath.Join(b, train.MetricsFile)))
}
