package train_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
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

// randomBN is resnet.HeInit(seed) with random BatchNorm parameters and
// statistics and a random classifier bias, so that folding them is not
// the identity.
func randomBN(seed uint64) resnet.Weights {
	he := resnet.HeInit(seed)
	r := rand.New(rand.NewPCG(seed, 7))
	return func(name string, shape []int) ([]float32, error) {
		v, err := he(name, shape)
		if len(shape) != 1 || err != nil {
			return v, err
		}
		for i := range v {
			switch {
			case strings.HasSuffix(name, "running_var"):
				v[i] = 0.5 + r.Float32()
			case strings.HasSuffix(name, "weight"):
				v[i] = 0.5 + r.Float32()
			default:
				v[i] = 0.4 * (r.Float32() - 0.5)
			}
		}
		return v, nil
	}
}

// foldedModel is cfg built with w and fused: a model image as convert
// writes one.
func foldedModel(t *testing.T, name string, cfg resnet.Config, w resnet.Weights) *firmware.Model {
	t.Helper()
	g, err := resnet.Build(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	if g, err = graph.Fuse(g); err != nil {
		t.Fatal(err)
	}
	in := g.Input()
	return &firmware.Model{Graph: g, Meta: firmware.Meta{Name: name, Output: firmware.OutputLogits,
		Preprocess: edgeresnet.DefaultPreprocess(in)}}
}

// checkUnfold unfolds fm and checks that it is cfg and that the net in
// eval mode computes the model's logits on random inputs.
func checkUnfold(t *testing.T, fm *firmware.Model, want string) {
	t.Helper()
	cfg, w, err := train.Unfold(fm)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name() != want {
		t.Errorf("unfolded %s, want %s", cfg.Name(), want)
	}
	net, err := train.NewNet(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	m, err := edgeresnet.FromModel(fm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 3
	s, err := m.NewSession(edgeresnet.WithBatch(n), edgeresnet.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	x := s.Input()
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	got := append([]float32(nil), net.Forward(x, n, false)...)
	ref, err := s.RunBatch(n)
	if err != nil {
		t.Fatal(err)
	}
	var scale, diff float64
	for i := range ref {
		scale = max(scale, math.Abs(float64(ref[i])))
		diff = max(diff, math.Abs(float64(got[i]-ref[i])))
	}
	if len(got) != len(ref) || diff > 1e-4*max(scale, 1) {
		t.Errorf("%s: eval-mode net vs model: max |diff| %g over logits up to %g (%d vs %d values)", want, diff, scale, len(got), len(ref))
	}
	// Folding the unfolded net again gives the model's convs exactly.
	g, err := resnet.Build(cfg, net.Weights())
	if err == nil {
		g, err = graph.Fuse(g)
	}
	if err != nil {
		t.Fatal(err)
	}
	got32, want32 := convs(g), convs(fm.Graph)
	if len(got32) != len(want32) {
		t.Fatalf("%s: refolded %d convs, the model has %d", want, len(got32), len(want32))
	}
	for i, c := range got32 {
		if !equal32(c.Weight, want32[i].Weight) || !equal32(c.Bias, want32[i].Bias) {
			t.Errorf("%s: refolded conv %d differs from the model's", want, i)
		}
	}
}

// convs are the graph's convs in order.
func convs(g *graph.Graph) []*graph.Conv {
	var cs []*graph.Conv
	for _, n := range g.Nodes {
		if n.Conv != nil {
			cs = append(cs, n.Conv)
		}
	}
	return cs
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestUnfoldImageNetLayout unfolds small ImageNet-layout nets (basic, and
// bottleneck with the stride on the 3x3 and on the 1x1) and a CIFAR one,
// all with random BatchNorm statistics folded in.
func TestUnfoldImageNetLayout(t *testing.T) {
	for _, tc := range []struct {
		cfg  resnet.Config
		want string
	}{
		{resnet.Config{Blocks: []int{1, 2, 1, 1}, BaseWidth: 8, Height: 40, Width: 32, Classes: 5}, "resnet12"},
		{resnet.Config{Blocks: []int{1, 1}, Bottleneck: true, BaseWidth: 8, Height: 32, Classes: 4}, "resnet8"},
		{resnet.Config{Blocks: []int{2, 1}, Bottleneck: true, StrideOn1x1: true, BaseWidth: 4, InChannels: 1, Height: 32, Classes: 3}, "resnet11"},
		{resnet.Config{CIFAR: true, Depth: 14, BaseWidth: 4, Shortcut: resnet.ShortcutA, Height: 16, Classes: 3}, "cifar-resnet14"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			checkUnfold(t, foldedModel(t, tc.want, tc.cfg, randomBN(5)), tc.want)
		})
	}
}

// TestUnfoldRejects checks that models that are not such ResNets are
// refused with an error naming the model and the node.
func TestUnfoldRejects(t *testing.T) {
	cfg := resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, InChannels: 1, Classes: 3}
	tests := []struct {
		name string
		edit func(g *graph.Graph)
		want []string
	}{
		{"relu dropped", func(g *graph.Graph) { node(g, "layer1.0.conv1").Relu = false },
			[]string{"relu dropped", `"layer1.0.conv1" (Conv 3x3/1 4->4 -> 8x8x4) where layer1.0.conv1 (Conv 3x3/1 4->4 +relu -> 8x8x4) is expected`}},
		{"1x1", func(g *graph.Graph) { resize(node(g, "layer2.0.conv1").Conv, 1) },
			[]string{"1x1", `"layer2.0.conv1" (Conv 1x1/2 4->8 +relu -> 4x4x8) where layer2.0.conv1 (Conv 3x3/2 4->8 +relu -> 4x4x8) is expected`}},
		{"stem", func(g *graph.Graph) { resize(node(g, "conv1").Conv, 5) },
			[]string{"stem", `the stem "conv1" is a 5x5 conv`}},
		{"head", func(g *graph.Graph) { g.Output = len(g.Nodes) - 2 },
			[]string{"head", "not from a Dense"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fm := foldedModel(t, tc.name, cfg, randomBN(1))
			tc.edit(fm.Graph)
			_, _, err := train.Unfold(fm)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want one with %q", err, w)
				}
			}
		})
	}
}

// resize makes c a k x k conv (of zero weights) of the same output size.
func resize(c *graph.Conv, k int) {
	p := k / 2
	c.KH, c.KW, c.Pad = k, k, graph.Pads{Top: p, Left: p, Bottom: p, Right: p}
	c.Weight = make([]float32, k*k*c.Cin*c.Cout)
}

func node(g *graph.Graph, name string) *graph.Node {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	panic("no node " + name)
}

// tinyFolded is a CIFAR-style ResNet-8 of 3 classes on 8x8 gray input
// with random BatchNorms, folded, as fine-tuning's source.
func tinyFolded(t *testing.T) *firmware.Model {
	cfg := resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, InChannels: 1, Classes: 3}
	fm := foldedModel(t, "tiny", cfg, randomBN(3))
	fm.Meta.Preprocess = preprocess.Spec{Height: 8, Width: 8, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0.5}, Std: []float32{0.5}}
	fm.Meta.Labels = []string{"a", "b", "c"}
	return fm
}

// foldedConvs are the convs of a model image written by Build and
// Fuse, by Build's names.
func foldedConvs(fm *firmware.Model) map[string]*graph.Conv {
	cs := map[string]*graph.Conv{}
	for _, n := range fm.Graph.Nodes {
		if n.Conv != nil {
			cs[n.Name] = n.Conv
		}
	}
	return cs
}

// TestFineTunePartialFreeze fine-tunes the tiny model with its stem and
// first stage frozen, with augmentation, for a few steps: the frozen
// layers of latest.ern are bit for bit the model's, every trained tensor
// changed, the classifier has the data's 2 classes, and an interrupted
// and resumed run ends with the same model images.
func TestFineTunePartialFreeze(t *testing.T) {
	fm := tinyFolded(t)
	cfg := train.Config{From: fm, Freeze: "layer1", Data: darkBright{n: 40}, ValSplit: 8,
		Augment: train.Augment{Pad: 1, Flip: true}, Epochs: 2, Batch: 8, LR: 1e-2, Seed: 4, Threads: 1,
		ValEvery: 3, OutDir: t.TempDir()}
	res, err := edgeresnet.Train(context.Background(), cfg, train.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 8 {
		t.Errorf("%d steps, want 8", res.Steps)
	}
	latest, err := edgeresnet.Load(filepath.Join(cfg.OutDir, train.LatestFile))
	if err != nil {
		t.Fatal(err)
	}
	defer latest.Close()
	if got := strings.Join(latest.Labels(), ","); got != "dark,bright" {
		t.Errorf("latest.ern labels %s", got)
	}
	before, after := foldedConvs(fm), foldedConvs(latest.Image())
	for name, c := range after {
		frozen := name == "conv1" || strings.HasPrefix(name, "layer1.")
		same := equal32(c.Weight, before[name].Weight) && equal32(c.Bias, before[name].Bias)
		if frozen != same {
			t.Errorf("%s: frozen %v, weights and bias unchanged %v", name, frozen, same)
		}
	}
	if d := latest.Graph().Nodes[latest.Graph().Output].Dense; d.Out != 2 || equal32(d.Bias, fm.Graph.Nodes[fm.Graph.Output].Dense.Bias[:2]) {
		t.Errorf("classifier %d classes, bias %v", d.Out, d.Bias)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := cfg
	c.OutDir = t.TempDir()
	_, err = edgeresnet.Train(ctx, c, train.Callbacks{OnProgress: func(step, _ int) {
		if step == 5 {
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
	sameFile(t, cfg.OutDir, c.OutDir, train.LatestFile)
	sameFile(t, cfg.OutDir, c.OutDir, train.BestFile)
}

// TestFineTuneFull fine-tunes every layer of the tiny model (same class
// count: its classifier is kept) for a few steps: every tensor changes,
// and the labels are the data's.
func TestFineTuneFull(t *testing.T) {
	fm := tinyFolded(t)
	data := darkBright{n: 24}
	cfg := train.Config{From: fm, Data: data, ValSplit: 8, Labels: []string{"x", "y", "z"},
		Epochs: 1, Batch: 8, LR: 1e-2, Seed: 4, Threads: 1, OutDir: t.TempDir()}
	res, err := train.Run(context.Background(), cfg, train.Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	best, err := edgeresnet.Load(res.BestPath)
	if err != nil {
		t.Fatal(err)
	}
	defer best.Close()
	if got := strings.Join(best.Labels(), ","); got != "x,y,z" {
		t.Errorf("best.ern labels %s", got)
	}
	if best.Meta().Preprocess.Mean[0] != 0.5 {
		t.Errorf("best.ern preprocessing %+v, not the model's", best.Meta().Preprocess)
	}
	before, after := foldedConvs(fm), foldedConvs(best.Image())
	for name, c := range after {
		if equal32(c.Weight, before[name].Weight) || equal32(c.Bias, before[name].Bias) {
			t.Errorf("%s did not change", name)
		}
	}
}

// TestCalibrateUnfolded calibrates unfolded nets (random BatchNorms folded
// in) on a batch of random inputs: the net in eval mode still computes
// the model's logits, refolding gives the model's convs within rounding,
// and in training mode on that batch (BatchNorm on the batch statistics)
// it computes the model's logits too. Without the calibration, training mode does not.
func TestCalibrateUnfolded(t *testing.T) {
	for _, tc := range []struct {
		cfg  resnet.Config
		want string
	}{
		{resnet.Config{Blocks: []int{1, 1, 1, 1}, BaseWidth: 8, Height: 40, Width: 32, Classes: 5}, "resnet10"},
		{resnet.Config{Blocks: []int{1, 1}, Bottleneck: true, BaseWidth: 8, Height: 32, Classes: 4}, "resnet8"},
		{resnet.Config{CIFAR: true, Depth: 14, BaseWidth: 4, Shortcut: resnet.ShortcutA, Height: 16, Classes: 3}, "cifar-resnet14"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			fm := foldedModel(t, tc.want, tc.cfg, randomBN(9))
			cfg, w, err := train.Unfold(fm)
			if err != nil {
				t.Fatal(err)
			}
			const n = 6
			in := fm.Graph.Input()
			x := make([]float32, n*in.Size())
			r := rand.New(rand.NewPCG(3, 4))
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			ref := modelLogits(t, fm, x, n)
			identity, err := train.NewNet(cfg, w)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(identity.Forward(x, n, true), ref); d < 1e-2 {
				t.Errorf("without calibration, training mode is the model's function (max |diff| %g)", d)
			}
			net, err := train.NewNet(cfg, w)
			if err != nil {
				t.Fatal(err)
			}
			c := train.NewCalibrator(net)
			if err := c.Apply(); err == nil {
				t.Error("Apply without batches: no error")
			}
			c.Add(x[:2*in.Size()], 2)
			c.Add(x[2*in.Size():], n-2)
			if err := c.Apply(); err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(net.Forward(x, n, false), ref); d > 1e-4 {
				t.Errorf("eval mode vs the model: max |diff| %g", d)
			}
			g, err := resnet.Build(cfg, net.Weights())
			if err == nil {
				g, err = graph.Fuse(g)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range convs(g) {
				m := convs(fm.Graph)[i]
				if d := max(maxDiff(c.Weight, m.Weight), maxDiff(c.Bias, m.Bias)); d > 1e-5 {
					t.Errorf("refolded conv %d differs from the model's by %g", i, d)
				}
			}
			if d := maxDiff(net.Forward(x, n, true), ref); d > 1e-3 {
				t.Errorf("training mode on the calibration batch vs the model: max |diff| %g", d)
			}
		})
	}
}

// modelLogits runs fm on the inference engine on n inputs x.
func modelLogits(t *testing.T, fm *firmware.Model, x []float32, n int) []float32 {
	t.Helper()
	m, err := edgeresnet.FromModel(fm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewSession(edgeresnet.WithBatch(n), edgeresnet.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	copy(s.Input(), x)
	out, err := s.RunBatch(n)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out...)
}

// maxDiff is the largest |a[i]-b[i]|, +Inf when the lengths differ.
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
