package train

import (
	"github.com/edge-resnet/edge-resnet/internal/grad"
)

// convBN is a convolution, its BatchNorm and optionally a ReLU: the unit
// every ResNet layer is made of. Its names are the torchvision names of
// the conv and the BN (conv1/bn1, layer2.0.downsample.0/.1).
type convBN struct {
	convName, bnName string

	conv *grad.Conv
	bn   *grad.BatchNorm // with Relu set for a unit with an activation
}

// forward runs conv, BN (batch statistics if train, else running ones)
// and the ReLU; the output belongs to the unit until its next forward.
func (u *convBN) forward(x []float32, s grad.Shape, train bool) ([]float32, grad.Shape) {
	y, s := u.conv.Forward(x, s)
	if train {
		y = u.bn.Forward(y, s)
	} else {
		y = u.bn.ForwardEval(y, s)
	}
	return y, s
}

// backward returns dx for dy (which it may change in place), adding the
// parameter gradients.
func (u *convBN) backward(dy []float32) []float32 {
	return u.conv.Backward(u.bn.Backward(dy))
}

// setThreads sets the threads of the unit's layers.
func (u *convBN) setThreads(threads int) {
	u.conv.Threads, u.bn.Threads = threads, threads
}

// zeroGrad clears the unit's gradients.
func (u *convBN) zeroGrad() {
	u.conv.ZeroGrad()
	u.bn.ZeroGrad()
}

// block is a residual block: the main path (two 3x3 units, or 1x1-3x3-1x1
// for a bottleneck, the last without ReLU), the shortcut (identity, a
// projection unit or option A), their sum and a ReLU.
type block struct {
	name    string          // layerS.I
	main    []*convBN       // conv1/bn1, conv2/bn2[, conv3/bn3]
	proj    *convBN         // downsample.0/.1, or nil
	shortA  *grad.ShortcutA // option A, or nil
	merge   grad.AddReLU    // the sum of both paths and the block's ReLU
	threads int             // of the gradient sum of the block's input
}

// forward runs the block on x (shape s), which it keeps unchanged.
func (b *block) forward(x []float32, s grad.Shape, train bool) ([]float32, grad.Shape) {
	y, ys := x, s
	for _, u := range b.main {
		y, ys = u.forward(y, ys, train)
	}
	short := x
	switch {
	case b.proj != nil:
		short, _ = b.proj.forward(x, s, train)
	case b.shortA != nil:
		short, _ = b.shortA.Forward(x, s)
	}
	return b.merge.Forward(y, short, ys), ys
}

// backward returns the gradient of the block's input: the main path's
// plus the shortcut's.
func (b *block) backward(dy []float32) []float32 {
	dmain, dshort := b.merge.Backward(dy) // the same slice: no one below changes it in place
	for i := len(b.main) - 1; i >= 0; i-- {
		dmain = b.main[i].backward(dmain)
	}
	switch {
	case b.proj != nil:
		dshort = b.proj.backward(dshort)
	case b.shortA != nil:
		dshort = b.shortA.Backward(dshort)
	}
	grad.AddToThreads(dmain, dshort, b.threads)
	return dmain
}

// units returns the block's conv+BN units, the main path's first.
func (b *block) units() []*convBN {
	if b.proj == nil {
		return b.main
	}
	return append(b.main[:len(b.main):len(b.main)], b.proj)
}
