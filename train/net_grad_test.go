package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestNetGradients checks Backward through whole nets (training mode, BN
// on batch statistics, softmax cross-entropy) against float64 central
// finite differences of the float32 forward, on a few values of every
// parameter tensor and of the input. A ReLU kink near the point bends a
// difference quotient (the rounding of the float32 loss bends the small
// steps), so each value takes the closest of three steps, within 2e-3 of
// the largest gradient plus 1% of the value.
func TestNetGradients(t *testing.T) {
	per := 3
	if testing.Short() {
		per = 1
	}
	cases := []netCase{ // few pixels: fewer ReLU kinks near the point
		{"cifar8-A", resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 6, Classes: 5, Shortcut: resnet.ShortcutA}},
		{"cifar8-B", resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 6, Width: 4, Classes: 5, InChannels: 2}},
		netCases[3],
		namedNetCase("resnext"),
		{"resnext-1x1-AEnd", resnet.Config{Blocks: []int{1, 1}, Bottleneck: true, StrideOn1x1: true, BaseWidth: 2, Groups: 2,
			WidthPerGroup: 64, Shortcut: resnet.ShortcutAEnd, Height: 6, Classes: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			net := newTestNet(t, c.cfg, 11)
			net.InputGrad = true
			x, labels := testBatch(net, 2, 12)
			dx := slices.Clone(net.Backward(slices.Clone(lastDlogits(net, x, labels))))
			loss := func() float64 { return netLoss(net, x, labels) }
			r := rand.New(rand.NewPCG(13, 0))
			worst, checked := 0.0, 0
			scale := maxAbs(dx)
			for _, p := range net.Params() {
				scale = max(scale, maxAbs(p.Grad))
			}
			check := func(what string, v []float32, analytic []float32) {
				for range per {
					i := r.IntN(len(v))
					num, d := 0.0, math.Inf(1)
					for _, h := range []float64{3e-4, 1e-4, 3e-5} { // a ReLU kink may sit within h
						n := centralDiff(loss, v, i, h)
						if e := math.Abs(n - float64(analytic[i])); e < d {
							num, d = n, e
						}
					}
					worst = max(worst, d/(scale+math.Abs(num)))
					checked++
					if !(d <= 2e-3*scale+1e-2*math.Abs(num)) {
						t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", what, i, analytic[i], num)
					}
				}
			}
			check("input", x, dx)
			for _, p := range net.Params() {
				check(p.Name, p.Value, slices.Clone(p.Grad))
			}
			t.Logf("%d values, worst |analytic - numeric| / (largest gradient %.3g + |numeric|) %.3g", checked, scale, worst)
		})
	}
}

// lastDlogits reruns the training forward of net on the batch and returns
// the loss gradient of the logits (gradients zeroed, Backward left to the
// caller).
func lastDlogits(net *Net, x []float32, labels []int) []float32 {
	net.ZeroGrad()
	var ce grad.SoftmaxCrossEntropy
	logits := net.Forward(x, len(labels), true)
	ce.Forward(logits, grad.Shape{N: len(labels), H: 1, W: 1, C: net.Config().Classes}, labels)
	return ce.Backward()
}

// netLoss is the training-mode softmax cross-entropy of net on the batch.
func netLoss(net *Net, x []float32, labels []int) float64 {
	var ce grad.SoftmaxCrossEntropy
	logits := net.Forward(x, len(labels), true)
	loss, _ := ce.Forward(logits, grad.Shape{N: len(labels), H: 1, W: 1, C: net.Config().Classes}, labels)
	return loss
}

// centralDiff is the central difference of loss in v[i] with step h,
// divided by the distance between the two float32 points; v[i] is
// restored.
func centralDiff(loss func() float64, v []float32, i int, h float64) float64 {
	old := v[i]
	hi, lo := float32(float64(old)+h), float32(float64(old)-h)
	v[i] = hi
	fp := loss()
	v[i] = lo
	fm := loss()
	v[i] = old
	return (fp - fm) / (float64(hi) - float64(lo))
}

// maxAbs is the largest |v[i]|, at least 1e-6.
func maxAbs(v []float32) float64 {
	m := 1e-6
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}
