package train

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// updateNetStep regenerates the golden files of netStepCases with PyTorch.
var updateNetStep = flag.Bool("update-net-step", false, "rerun testdata/net_step.py with "+python+" and rewrite its golden outputs")

// netStepResult is net_step.py's output: the loss and logits of the
// training-mode forward, every parameter's gradient and the state after
// the step (parameters and BN running statistics), PyTorch layouts.
type netStepResult struct {
	Loss   float64              `json:"loss"`
	Logits []float32            `json:"logits"`
	Grads  map[string][]float32 `json:"grads"`
	State  map[string][]float32 `json:"state"`
}

// netStepCase is one training step that TestOneStepMatchesPyTorch
// compares with PyTorch's: the net, the batch, the optimizer (SGD with
// momentum, or Adam with PyTorch's betas and the given eps; L2 weight
// decay on the conv and dense weights) and PyTorch's result, as testdata/net_step.py
// printed it.
type netStepCase struct {
	name           string
	cfg            resnet.Config
	golden         string
	batch          int
	seed, dataSeed uint64
	lr, decay      float64
	momentum       float64 // SGD's
	adam           bool
	adamEps        float64
}

var netStepCases = []netStepCase{
	// A CIFAR ResNet-8 of width 4 on 8x8 images, option-A shortcuts, SGD.
	{name: "cifar8-sgd", cfg: resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Classes: 10, Shortcut: resnet.ShortcutA},
		golden: "testdata/net_step.golden.json", batch: 4, seed: 21, dataSeed: 22, lr: 0.1, decay: 5e-4, momentum: 0.9},
	// The ImageNet layout (7x7 stride-2 stem, max pool) on 32x32 images
	// with ResNeXt bottlenecks (4 groups of 2 channels in layer1, of 4 in
	// layer2; projections in layerS.0, an identity in layer1.1), Adam.
	// Its eps is 1e-3, not 1e-8: in this layout the gradient of the stem
	// BN's beta is zero but for rounding (every max-pool window keeps a
	// live ReLU output, and 1x1 convs into training-mode BNs follow, whose
	// input gradients sum to zero), and Adam's first step, g/(|g|+eps),
	// would turn that rounding into a step of up to lr.
	{name: "resnext-adam", cfg: resnet.Config{Blocks: []int{2, 1}, Bottleneck: true, BaseWidth: 4, Groups: 4, WidthPerGroup: 32,
		Height: 32, Classes: 5}, golden: "testdata/net_step_resnext_adam.golden.json", batch: 3, seed: 23, dataSeed: 24,
		lr: 1e-2, decay: 5e-4, adam: true, adamEps: 1e-3},
}

// optimizer returns the case's optimizer.
func (c netStepCase) optimizer() Optimizer {
	if c.adam {
		a := NewAdam(c.decay)
		a.Eps = c.adamEps
		return a
	}
	return NewSGD(c.momentum, false, c.decay)
}

// TestOneStepMatchesPyTorch runs one training step of every netStepCases
// net (BN in training mode, cross-entropy) on the initial weights and
// batch that PyTorch ran it on (testdata/net_step.py, whose output is
// committed as the case's golden file, so the test needs no PyTorch), and
// compares the loss, the logits, every gradient, the updated parameters
// and the running statistics: each tensor within 1e-4 of its largest
// value. -update-net-step reruns the script and rewrites the golden files.
func TestOneStepMatchesPyTorch(t *testing.T) {
	for _, c := range netStepCases {
		t.Run(c.name, func(t *testing.T) { checkNetStep(t, c) })
	}
}

// checkNetStep runs the step of c and compares it with its golden file.
func checkNetStep(t *testing.T, c netStepCase) {
	net := newTestNet(t, c.cfg, c.seed)
	x, labels := testBatch(net, c.batch, c.dataSeed)
	if *updateNetStep {
		writeNetStepGolden(t, c, net, x, labels)
	}
	data, err := os.ReadFile(c.golden)
	if err != nil {
		t.Fatal(err)
	}
	var want netStepResult
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", c.golden, err)
	}
	net.ZeroGrad()
	var ce grad.SoftmaxCrossEntropy
	logits := net.Forward(x, c.batch, true)
	loss, _ := ce.Forward(logits, grad.Shape{N: c.batch, H: 1, W: 1, C: net.Config().Classes}, labels)
	worst := map[string]float64{}
	cmp := func(what string, got, want []float32) {
		d, scale := maxDiff(got, want)
		if len(got) != len(want) || !(d <= 1e-4*scale) {
			t.Errorf("%s: max difference from PyTorch %.3g of largest %.3g (%d values, PyTorch %d)", what, d, scale, len(got), len(want))
		}
		kind := what[strings.LastIndex(what, " ")+1:] // logits, gradient, or the tensor name
		if kind != "logits" && kind != "gradient" {
			kind = "state"
		}
		worst[kind] = max(worst[kind], d/max(scale, 1e-30))
	}
	cmp("logits", logits, want.Logits)
	if d := math.Abs(loss-want.Loss) / want.Loss; !(d <= 1e-5) {
		t.Errorf("loss %.8g, PyTorch %.8g", loss, want.Loss)
	}
	net.Backward(ce.Backward())
	for _, tn := range net.tensors {
		if tn.grad != nil {
			cmp(tn.name+" gradient", tn.toTorch(tn.grad), want.Grads[tn.name])
		}
	}
	c.optimizer().Step(net.Params(), c.lr)
	for _, tn := range net.tensors {
		cmp(tn.name, tn.toTorch(tn.value), want.State[tn.name])
	}
	if len(want.State) != len(net.tensors) {
		t.Errorf("PyTorch has %d tensors, the net %d", len(want.State), len(net.tensors))
	}
	t.Logf("loss %.8g (PyTorch %.8g); worst max |Go - PyTorch| / max |PyTorch| of a tensor: logits %.3g, gradients %.3g, state after the step %.3g",
		loss, want.Loss, worst["logits"], worst["gradient"], worst["state"])
}

// writeNetStepGolden writes net's initial state, the batch and the step of
// c as JSON, runs testdata/net_step.py on it and writes its output to the
// case's golden file.
func writeNetStepGolden(t *testing.T, c netStepCase, net *Net, x []float32, labels []int) {
	cfg := net.Config()
	state, shapes := map[string][]float32{}, map[string][]int{}
	for _, tn := range net.tensors {
		state[tn.name], shapes[tn.name] = tn.toTorch(tn.value), slices.Clone(tn.shape)
	}
	opt := "sgd"
	if c.adam {
		opt = "adam"
	}
	writeGolden(t, "net_step.py", map[string]any{
		"blocks": cfg.Blocks, "width": cfg.BaseWidth, "in_channels": cfg.InChannels, "classes": cfg.Classes,
		"imagenet": !cfg.CIFAR, "bottleneck": cfg.Bottleneck, "groups": cfg.Groups, "width_per_group": cfg.WidthPerGroup,
		"state": state, "shapes": shapes, "x": x, "n": len(labels), "h": cfg.Height, "w": cfg.Width,
		"labels": labels, "lr": c.lr, "momentum": c.momentum, "weight_decay": c.decay, "optimizer": opt, "eps": c.adamEps,
	}, c.golden)
}
