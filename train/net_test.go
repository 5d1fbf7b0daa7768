package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// netCase is a small configuration of each layout Net supports.
type netCase struct {
	name string
	cfg  resnet.Config
}

var netCases = []netCase{
	{"cifar8-A", resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Classes: 5, Shortcut: resnet.ShortcutA}},
	{"cifar8-B", resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 6, Classes: 5, InChannels: 2}},
	{"basic", resnet.Config{Blocks: []int{1, 2}, BaseWidth: 4, Height: 16, Classes: 3}},
	{"bottleneck", resnet.Config{Blocks: []int{1, 1}, Bottleneck: true, BaseWidth: 2, Height: 16, Classes: 3, ConvBias: true}},
	{"bottleneck-1x1", resnet.Config{Blocks: []int{2, 1}, Bottleneck: true, StrideOn1x1: true, BaseWidth: 2, Height: 13, Width: 18, Classes: 4}},
	// ResNeXt: 4 groups of 1 channel (depthwise) in layer1, of 2 in layer2.
	{"resnext", resnet.Config{Blocks: []int{2, 1}, Bottleneck: true, BaseWidth: 4, Groups: 4, WidthPerGroup: 16, Height: 16, Classes: 3}},
	// Wide ResNet: the 3x3 convs twice as wide as the planes.
	{"wide", resnet.Config{Blocks: []int{1, 1}, Bottleneck: true, BaseWidth: 2, WidthPerGroup: 128, Height: 16, Classes: 3, ConvBias: true}},
	// Grouped, widened and option A to the end in one, stride on the 1x1.
	{"resnext-1x1-AEnd", resnet.Config{Blocks: []int{1, 2}, Bottleneck: true, StrideOn1x1: true, BaseWidth: 2, Groups: 2, WidthPerGroup: 64,
		Shortcut: resnet.ShortcutAEnd, Height: 12, Width: 14, Classes: 4}},
	{"cifar8-AEnd", resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 3, Height: 8, Classes: 5, Shortcut: resnet.ShortcutAEnd}},
	{"basic-A", resnet.Config{Blocks: []int{1, 1}, BaseWidth: 4, Height: 15, Classes: 3, Shortcut: resnet.ShortcutA, InChannels: 1}},
}

// namedNetCase returns the netCases entry of the given name.
func namedNetCase(name string) netCase {
	for _, c := range netCases {
		if c.name == name {
			return c
		}
	}
	panic("no net case " + name)
}

// perturbedInit is resnet.HeInit with BatchNorm parameters and running
// statistics, and conv biases, away from their trivial initial values, so
// that every term of the BN and its folding is exercised.
func perturbedInit(seed uint64) resnet.Weights {
	he := resnet.HeInit(seed)
	r := rand.New(rand.NewPCG(seed, 77))
	return func(name string, shape []int) ([]float32, error) {
		v, err := he(name, shape)
		if err != nil || len(shape) != 1 || name == "fc.bias" {
			return v, err
		}
		for i := range v {
			u := float32(2*r.Float64() - 1)
			switch {
			case strings.HasSuffix(name, "running_var"):
				v[i] = 1 + 0.5*u
			case strings.HasSuffix(name, "running_mean"):
				v[i] = 0.3 * u
			case strings.Contains(name, "conv") || strings.Contains(name, "downsample.0"): // conv bias
				v[i] = 0.1 * u
			case strings.HasSuffix(name, ".weight"): // BN gamma
				v[i] = 1 + 0.3*u
			default: // BN beta
				v[i] = 0.2 * u
			}
		}
		return v, nil
	}
}

// newTestNet builds the net of cfg with perturbedInit(seed), failing t on
// an error.
func newTestNet(t *testing.T, cfg resnet.Config, seed uint64) *Net {
	t.Helper()
	net, err := NewNet(cfg, perturbedInit(seed))
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// testBatch returns n random images for net and their labels.
func testBatch(net *Net, n int, seed uint64) ([]float32, []int) {
	c := net.Config()
	r := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n*c.Height*c.Width*c.InChannels)
	for i := range x {
		x[i] = float32(2*r.Float64() - 1)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(c.Classes)
	}
	return x, labels
}

// lossAndGrad runs a training-mode forward and backward of net on the
// batch with softmax cross-entropy (gradients zeroed first) and returns
// the loss.
func lossAndGrad(net *Net, x []float32, labels []int) float64 {
	net.ZeroGrad()
	var ce grad.SoftmaxCrossEntropy
	logits := net.Forward(x, len(labels), true)
	loss, _ := ce.Forward(logits, grad.Shape{N: len(labels), H: 1, W: 1, C: net.Config().Classes}, labels)
	net.Backward(ce.Backward())
	return loss
}

// trainSteps runs steps SGD steps (momentum 0.9, weight decay 5e-4) of lr
// on the batch.
func trainSteps(net *Net, opt Optimizer, x []float32, labels []int, steps int, lr float64) {
	for range steps {
		lossAndGrad(net, x, labels)
		opt.Step(net.Params(), lr)
	}
}

// TestNetExportMatchesEval trains every netCases net for two steps, then
// compares its eval-mode Forward with graph.Eval of resnet.Build on the
// net's Weights (BN folded by Build): within 1e-4 of the largest logit.
func TestNetExportMatchesEval(t *testing.T) {
	for _, c := range netCases {
		t.Run(c.name, func(t *testing.T) {
			net := newTestNet(t, c.cfg, 1)
			x, labels := testBatch(net, 3, 2)
			trainSteps(net, NewSGD(0.9, false, 5e-4), x, labels, 2, 0.05)
			got := slices.Clone(net.Forward(x, 3, false))
			g, err := resnet.Build(c.cfg, net.Weights())
			if err != nil {
				t.Fatal(err)
			}
			want, err := g.Eval(x)
			if err != nil {
				t.Fatal(err)
			}
			d, scale := maxDiff(got, want)
			t.Logf("max |net - graph| %.3g, largest logit %.3g", d, scale)
			if len(got) != len(want) || !(d <= 1e-4*scale) {
				t.Errorf("eval-mode logits differ from the exported graph's by %.3g (largest %.3g; %d vs %d values)", d, scale, len(got), len(want))
			}
		})
	}
}

// maxDiff returns the largest |a-b| and the largest |b|.
func maxDiff(a, b []float32) (d, scale float64) {
	for i := range min(len(a), len(b)) {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return d, scale
}

// TestNetErrors checks the configurations Net refuses.
func TestNetErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  resnet.Config
		want string
	}{
		{resnet.Config{CIFAR: true, Depth: 7}, "6n+2"},
		{resnet.Config{CIFAR: true, Depth: 8, Shortcut: resnet.ShortcutAEnd + 1}, "unknown shortcut"},
		{resnet.Config{Blocks: []int{1}, Bottleneck: true, BaseWidth: 2, Groups: 2, WidthPerGroup: 16}, "no channels"},
		{resnet.Config{Depth: 18, Groups: 2}, "need bottleneck"},
	} {
		if _, err := NewNet(c.cfg, resnet.HeInit(1)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.cfg, err, c.want)
		}
	}
	net := newTestNet(t, netCases[0].cfg, 1)
	if _, err := net.Weights()("fc.weight", []int{5, 3}); err == nil {
		t.Error("Weights: no error for a wrong shape")
	}
	if _, err := net.Weights()("layer9.0.conv1.weight", []int{1}); err == nil {
		t.Error("Weights: no error for an unknown name")
	}
}

// TestNetDeterministic runs the same two steps on two nets built alike
// (a plain and a grouped bottleneck net), with 1 and with 2 threads: the
// parameters and running statistics are bit-identical for a thread count.
func TestNetDeterministic(t *testing.T) {
	for _, threads := range []int{1, 2} {
		for _, c := range []netCase{netCases[3], namedNetCase("resnext")} {
			checkDeterministic(t, c, threads)
		}
	}
}

// checkDeterministic runs two Adam steps on two nets of c built alike,
// with the given threads, and compares their tensors bit for bit.
func checkDeterministic(t *testing.T, c netCase, threads int) {
	t.Helper()
	var runs [2][]tensor
	for k := range runs {
		net := newTestNet(t, c.cfg, 5)
		net.SetThreads(threads)
		x, labels := testBatch(net, 4, 6)
		trainSteps(net, NewAdam(1e-4), x, labels, 2, 1e-3)
		for _, tn := range net.tensors {
			runs[k] = append(runs[k], tensor{name: tn.name, value: slices.Clone(tn.value)})
		}
	}
	for i, a := range runs[0] {
		if !slices.Equal(a.value, runs[1][i].value) {
			t.Errorf("%s, %d threads: %s differs between two identical runs", c.name, threads, a.name)
		}
	}
}
