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

// updateNetStep regenerates testdata/net_step.golden.json with PyTorch.
var updateNetStep = flag.Bool("update-net-step", false, "rerun testdata/net_step.py with "+python+" and rewrite its golden output")

// netStepGolden is PyTorch's result for TestOneStepMatchesPyTorch, as
// testdata/net_step.py printed it.
const netStepGolden = "testdata/net_step.golden.json"

// netStepResult is net_step.py's output: the loss and logits of the
// training-mode forward, every parameter's gradient and the state after
// the step (parameters and BN running statistics), PyTorch layouts.
type netStepResult struct {
	Loss   float64              `json:"loss"`
	Logits []float32            `json:"logits"`
	Grads  map[string][]float32 `json:"grads"`
	State  map[string][]float32 `json:"state"`
}

// The step of TestOneStepMatchesPyTorch: a CIFAR ResNet-8 of width 4 on
// 8x8 images, batch 4, SGD with momentum 0.9, weight decay 5e-4 on the conv
// and dense weights, learning rate 0.1.
var (
	netStepConfig                = resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Classes: 10, Shortcut: resnet.ShortcutA}
	netStepLR, netStepMomentum   = 0.1, 0.9
	netStepDecay, netStepBatch   = 5e-4, 4
	netStepSeed, netStepDataSeed = uint64(21), uint64(22)
)

// TestOneStepMatchesPyTorch runs one training step of netStepConfig (BN
// in training mode, cross-entropy) on the initial weights and batch that
// PyTorch ran it on (testdata/net_step.py, whose output is committed as
// netStepGolden, so the test needs no PyTorch), and compares the loss,
// the logits, every gradient, the updated parameters and the running
// statistics: each tensor within 1e-4 of its largest value.
// -update-net-step reruns the script and rewrites the golden file.
func TestOneStepMatchesPyTorch(t *testing.T) {
	net := newTestNet(t, netStepConfig, netStepSeed)
	x, labels := testBatch(net, netStepBatch, netStepDataSeed)
	if *updateNetStep {
		writeNetStepGolden(t, net, x, labels)
	}
	data, err := os.ReadFile(netStepGolden)
	if err != nil {
		t.Fatal(err)
	}
	var want netStepResult
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", netStepGolden, err)
	}
	net.ZeroGrad()
	var ce grad.SoftmaxCrossEntropy
	logits := net.Forward(x, netStepBatch, true)
	loss, _ := ce.Forward(logits, grad.Shape{N: netStepBatch, H: 1, W: 1, C: 10}, labels)
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
	NewSGD(netStepMomentum, false, netStepDecay).Step(net.Params(), netStepLR)
	for _, tn := range net.tensors {
		cmp(tn.name, tn.toTorch(tn.value), want.State[tn.name])
	}
	if len(want.State) != len(net.tensors) {
		t.Errorf("PyTorch has %d tensors, the net %d", len(want.State), len(net.tensors))
	}
	t.Logf("loss %.8g (PyTorch %.8g); worst max |Go - PyTorch| / max |PyTorch| of a tensor: logits %.3g, gradients %.3g, state after the step %.3g",
		loss, want.Loss, worst["logits"], worst["gradient"], worst["state"])
}

// writeNetStepGolden writes net's initial state and the batch as JSON,
// runs testdata/net_step.py on it and writes its output to netStepGolden.
func writeNetStepGolden(t *testing.T, net *Net, x []float32, labels []int) {
	cfg := net.Config()
	state, shapes := map[string][]float32{}, map[string][]int{}
	for _, tn := range net.tensors {
		state[tn.name], shapes[tn.name] = tn.toTorch(tn.value), slices.Clone(tn.shape)
	}
	writeGolden(t, "net_step.py", map[string]any{
		"blocks": cfg.Blocks, "width": cfg.BaseWidth, "in_channels": cfg.InChannels, "classes": cfg.Classes,
		"state": state, "shapes": shapes, "x": x, "n": len(labels), "h": cfg.Height, "w": cfg.Width,
		"labels": labels, "lr": netStepLR, "momentum": netStepMomentum, "weight_decay": netStepDecay,
	}, netStepGolden)
}
