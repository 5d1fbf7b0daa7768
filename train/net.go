package train

import (
	"fmt"
	"slices"

	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// Net is a trainable ResNet made of internal/grad's layers, laid out as
// resnet.Build lays out the inference graph: the stem (conv, BN, ReLU and,
// for the ImageNet layout, a 3x3 stride-2 max pool), the residual blocks
// (basic, or bottleneck with a grouped or widened 3x3 as ResNeXt and Wide
// ResNet; identity shortcuts, projections or option A with the zero
// channels split or at the end), a global average pool and the dense
// classifier. Its parameters carry Build's (torchvision) names, so
// resnet.Build(cfg, net.Weights()) is the inference graph of the trained
// net. Every resnet.Config that Build builds is supported.
//
// Forward and Backward work on batched NHWC float32 tensors; their
// results are buffers of the net's, valid until the next call.
type Net struct {
	// InputGrad makes Backward compute and return the gradient of the
	// input; without it the stem conv skips its dX and Backward returns
	// nil.
	InputGrad bool

	cfg     resnet.Config // normalized
	stem    *convBN
	pool    *grad.MaxPool // nil for the CIFAR layout
	blocks  []*block
	gap     grad.GlobalAvgPool
	fc      *grad.Dense
	tensors []tensor
	byName  map[string]int
}

// tensor is one named tensor of the net: a parameter with its gradient,
// or a BatchNorm running statistic (grad nil).
type tensor struct {
	name  string
	shape []int     // PyTorch's shape: OIHW, [out, in] or [C]
	value []float32 // the layer's own storage, in its layout
	grad  []float32
	decay bool
	kind  layout
}

// layout is how a tensor's values are ordered here relative to PyTorch.
type layout uint8

const (
	flat  layout = iota // same order
	hwio                // conv weight: HWIO here, OIHW in PyTorch
	inOut               // dense weight: In x Out here, Out x In in PyTorch
)

// NewNet builds the net of cfg (normalized as resnet.Build does) with the
// initial parameters and running statistics of w, which resnet.HeInit or
// an imported model's weights provide under Build's names.
func NewNet(cfg resnet.Config, w resnet.Weights) (*Net, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if err := checkTrainable(cfg); err != nil {
		return nil, err
	}
	n := &Net{cfg: cfg}
	stem, blocks, ch := netLayout(cfg)
	n.stem = stem.build()
	if !cfg.CIFAR {
		n.pool = &grad.MaxPool{K: 3, Stride: 2, Pad: 1}
	}
	for _, bs := range blocks {
		b := &block{name: bs.name, shortA: bs.shortA}
		for _, u := range bs.main {
			b.main = append(b.main, u.build())
		}
		if bs.proj != nil {
			b.proj = bs.proj.build()
		}
		n.blocks = append(n.blocks, b)
	}
	n.fc = grad.NewDense(ch, cfg.Classes)
	n.register()
	if err := n.load(w); err != nil {
		return nil, err
	}
	return n, nil
}

// checkTrainable returns an error for a normalized configuration that
// Net cannot train: an unknown shortcut, or a bottleneck whose 3x3 conv
// would have no channels (planes*WidthPerGroup/64 rounds down to 0).
func checkTrainable(cfg resnet.Config) error {
	switch cfg.Shortcut {
	case resnet.ShortcutA, resnet.ShortcutB, resnet.ShortcutAEnd:
	default:
		return fmt.Errorf("train: %s: unknown shortcut %d (want resnet.ShortcutA, ShortcutB or ShortcutAEnd)", cfg.Name(), cfg.Shortcut)
	}
	if cfg.Bottleneck && bottleneckWidth(cfg, cfg.BaseWidth) < 1 {
		return fmt.Errorf("train: %s: base width %d with width per group %d leaves the first stage's grouped 3x3 conv no channels",
			cfg.Name(), cfg.BaseWidth, cfg.WidthPerGroup)
	}
	return nil
}

// bottleneckWidth is the width of the grouped 3x3 conv of a bottleneck
// with the given planes, as resnet.Build (torchvision) computes it.
func bottleneckWidth(cfg resnet.Config, planes int) int {
	return planes * cfg.WidthPerGroup / 64 * cfg.Groups
}

// unitSpec is a conv+BN unit before it is allocated: a k x k conv of the
// given stride, padding and groups, without or with a bias, followed by a
// BatchNorm and, if relu, a ReLU (fused into the BatchNorm).
type unitSpec struct {
	convName, bnName                  string
	cin, cout, k, stride, pad, groups int
	bias, relu                        bool
}

// conv is the unit's convolution.
func (u unitSpec) conv() grad.ConvConfig {
	return grad.ConvConfig{Cin: u.cin, Cout: u.cout, KH: u.k, KW: u.k, StrideH: u.stride, StrideW: u.stride,
		PadTop: u.pad, PadLeft: u.pad, PadBottom: u.pad, PadRight: u.pad, Groups: u.groups, Bias: u.bias}
}

func (u unitSpec) build() *convBN {
	bn := grad.NewBatchNorm(u.cout)
	bn.Relu = u.relu
	return &convBN{convName: u.convName, bnName: u.bnName, conv: grad.NewConv(u.conv()), bn: bn}
}

// blockSpec is a residual block before it is allocated.
type blockSpec struct {
	name   string
	main   []unitSpec
	proj   *unitSpec       // a projection shortcut, or nil
	shortA *grad.ShortcutA // option A, or nil
}

// netLayout is the net of cfg (normalized) before any allocation: the stem's
// unit, the blocks, and the channels of the classifier's input.
func netLayout(cfg resnet.Config) (unitSpec, []blockSpec, int) {
	stem := unitSpec{convName: "conv1", bnName: "bn1", cin: cfg.InChannels, cout: cfg.BaseWidth,
		k: 7, stride: 2, pad: 3, groups: 1, bias: cfg.ConvBias, relu: true}
	if cfg.CIFAR {
		stem.k, stem.stride, stem.pad = 3, 1, 1
	}
	var blocks []blockSpec
	ch := cfg.BaseWidth
	for s, nb := range cfg.Blocks {
		planes := cfg.BaseWidth << s
		for i := range nb {
			stride := 1
			if s > 0 && i == 0 {
				stride = 2
			}
			b, cout := blockLayout(cfg, fmt.Sprintf("layer%d.%d", s+1, i), ch, planes, stride)
			blocks = append(blocks, b)
			ch = cout
		}
	}
	return stem, blocks, ch
}

// blockLayout returns block name from cin channels with the given planes
// and stride, and its output channels, as resnet.Build's block.
func blockLayout(cfg resnet.Config, name string, cin, planes, stride int) (blockSpec, int) {
	b := blockSpec{name: name}
	unit := func(suffix string, cin, cout, k, stride, groups int, relu bool) unitSpec {
		return unitSpec{convName: name + ".conv" + suffix, bnName: name + ".bn" + suffix, cin: cin, cout: cout,
			k: k, stride: stride, pad: k / 2, groups: groups, bias: cfg.ConvBias, relu: relu}
	}
	cout := planes
	if cfg.Bottleneck {
		cout = planes * 4
		s1, s3 := 1, stride
		if cfg.StrideOn1x1 {
			s1, s3 = stride, 1
		}
		width := bottleneckWidth(cfg, planes)
		b.main = []unitSpec{unit("1", cin, width, 1, s1, 1, true), unit("2", width, width, 3, s3, cfg.Groups, true),
			unit("3", width, cout, 1, 1, 1, false)}
	} else {
		b.main = []unitSpec{unit("1", cin, planes, 3, stride, 1, true), unit("2", planes, planes, 3, 1, 1, false)}
	}
	if stride != 1 || cin != cout {
		if cfg.Shortcut == resnet.ShortcutB {
			b.proj = &unitSpec{convName: name + ".downsample.0", bnName: name + ".downsample.1", cin: cin, cout: cout,
				k: 1, stride: stride, groups: 1, bias: cfg.ConvBias}
		} else { // the stages only widen, so cout >= cin as option A needs
			b.shortA = &grad.ShortcutA{Cout: cout, Stride: stride, PadEnd: cfg.Shortcut == resnet.ShortcutAEnd}
		}
	}
	return b, cout
}

// register lists the net's tensors under Build's names, in the order of
// a PyTorch state dict.
func (n *Net) register() {
	units := n.units()
	add := func(name string, shape []int, value, grad []float32, decay bool, kind layout) {
		n.tensors = append(n.tensors, tensor{name: name, shape: shape, value: value, grad: grad, decay: decay, kind: kind})
	}
	for _, u := range units {
		c := u.conv
		add(u.convName+".weight", []int{c.Cout, c.Cin / c.Groups, c.KH, c.KW}, c.W, c.GradW, true, hwio)
		if c.Bias {
			add(u.convName+".bias", []int{c.Cout}, c.B, c.GradB, false, flat)
		}
		bn := u.bn
		add(u.bnName+".weight", []int{bn.C}, bn.Gamma, bn.DGamma, false, flat)
		add(u.bnName+".bias", []int{bn.C}, bn.Beta, bn.DBeta, false, flat)
		add(u.bnName+".running_mean", []int{bn.C}, bn.RunningMean, nil, false, flat)
		add(u.bnName+".running_var", []int{bn.C}, bn.RunningVar, nil, false, flat)
	}
	add("fc.weight", []int{n.fc.Out, n.fc.In}, n.fc.W, n.fc.GradW, true, inOut)
	add("fc.bias", []int{n.fc.Out}, n.fc.B, n.fc.GradB, false, flat)
	n.byName = make(map[string]int, len(n.tensors))
	for i, t := range n.tensors {
		n.byName[t.name] = i
	}
}

// units returns the net's conv+BN units in order: the stem's, then each
// block's.
func (n *Net) units() []*convBN {
	units := []*convBN{n.stem}
	for _, b := range n.blocks {
		units = append(units, b.units()...)
	}
	return units
}

// load copies every tensor's initial value from w.
func (n *Net) load(w resnet.Weights) error {
	for _, t := range n.tensors {
		v, err := w(t.name, slices.Clone(t.shape))
		if err != nil {
			return fmt.Errorf("train: weight %s: %w", t.name, err)
		}
		if len(v) != len(t.value) {
			return fmt.Errorf("train: weight %s has %d values, want %v", t.name, len(v), t.shape)
		}
		t.fromTorch(v)
	}
	return nil
}

// toTorch returns a copy of v (in the tensor's layout here) in PyTorch's.
func (t *tensor) toTorch(v []float32) []float32 {
	out := make([]float32, len(v))
	switch t.kind {
	case hwio:
		o, i, kk := t.shape[0], t.shape[1], t.shape[2]*t.shape[3]
		for p := range kk {
			for ci := range i {
				for co := range o {
					out[(co*i+ci)*kk+p] = v[(p*i+ci)*o+co]
				}
			}
		}
	case inOut:
		o, i := t.shape[0], t.shape[1]
		for r := range i {
			for c := range o {
				out[c*i+r] = v[r*o+c]
			}
		}
	default:
		copy(out, v)
	}
	return out
}

// fromTorch sets the tensor's value from v in PyTorch's layout.
func (t *tensor) fromTorch(v []float32) {
	switch t.kind {
	case hwio:
		o, i, kk := t.shape[0], t.shape[1], t.shape[2]*t.shape[3]
		for p := range kk {
			for ci := range i {
				for co := range o {
					t.value[(p*i+ci)*o+co] = v[(co*i+ci)*kk+p]
				}
			}
		}
	case inOut:
		o, i := t.shape[0], t.shape[1]
		for r := range i {
			for c := range o {
				t.value[r*o+c] = v[c*i+r]
			}
		}
	default:
		copy(t.value, v)
	}
}

// Config returns the net's configuration, normalized.
func (n *Net) Config() resnet.Config { return n.cfg }

// Forward runs the net on n images (NHWC, the configuration's height,
// width and input channels) and returns the logits, [n, classes]. With
// train the BatchNorms normalize with the batch statistics and update
// their running statistics; without it they use the running statistics,
// as inference does.
func (n *Net) Forward(x []float32, batch int, train bool) []float32 {
	s := grad.Shape{N: batch, H: n.cfg.Height, W: n.cfg.Width, C: n.cfg.InChannels}
	if batch < 1 || len(x) != s.Size() {
		panic(fmt.Sprintf("train: Net.Forward: %d values for %d images of %dx%dx%d", len(x), batch, s.H, s.W, s.C))
	}
	y, s := n.stem.forward(x, s, train)
	if n.pool != nil {
		y, s = n.pool.Forward(y, s)
	}
	for _, b := range n.blocks {
		y, s = b.forward(y, s, train)
	}
	y, s = n.gap.Forward(y, s)
	y, _ = n.fc.Forward(y, s)
	return y
}

// Backward takes the loss gradient of the last Forward's logits, adds
// every parameter's gradient (to what ZeroGrad left) and returns the
// input's gradient with InputGrad, else nil. dlogits is not changed.
func (n *Net) Backward(dlogits []float32) []float32 {
	dy := n.gap.Backward(n.fc.Backward(dlogits))
	for i := len(n.blocks) - 1; i >= 0; i-- {
		dy = n.blocks[i].backward(dy)
	}
	if n.pool != nil {
		dy = n.pool.Backward(dy)
	}
	n.stem.conv.NoInputGrad = !n.InputGrad
	return n.stem.backward(dy)
}

// Params returns the trainable parameters under Build's names, their
// values and gradients being the layers' own storage: conv weights HWIO,
// the dense weight In x Out. Conv and dense weights decay, BatchNorm
// parameters and biases do not.
func (n *Net) Params() []Param {
	var ps []Param
	for _, t := range n.tensors {
		if t.grad != nil {
			ps = append(ps, Param{Name: t.name, Value: t.value, Grad: t.grad, Decay: t.decay})
		}
	}
	return ps
}

// ZeroGrad clears every parameter gradient.
func (n *Net) ZeroGrad() {
	for _, t := range n.tensors {
		clear(t.grad)
	}
}

// SetThreads sets the threads every layer runs on (n < 1 means 1): the
// convolutions, BatchNorms, ReLUs and residual adds.
func (n *Net) SetThreads(threads int) {
	n.stem.setThreads(threads)
	for _, b := range n.blocks {
		for _, u := range b.units() {
			u.setThreads(threads)
		}
		b.merge.Threads, b.threads = threads, threads
	}
}

// Weights serves the net's current parameters and BatchNorm running
// statistics under Build's names and in PyTorch's layouts (copies), so
// that resnet.Build(net.Config(), net.Weights()) builds the trained net's
// inference graph, Build folding each BatchNorm into an affine.
func (n *Net) Weights() resnet.Weights {
	return func(name string, shape []int) ([]float32, error) {
		i, ok := n.byName[name]
		if !ok {
			return nil, fmt.Errorf("train: the net has no tensor %s", name)
		}
		t := &n.tensors[i]
		if !slices.Equal(shape, t.shape) {
			return nil, fmt.Errorf("train: %s has shape %v, asked for %v", name, t.shape, shape)
		}
		return t.toTorch(t.value), nil
	}
}
