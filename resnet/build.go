package resnet

import (
	"fmt"
	"github.com/edge-resnet/edge-resnet/graph"
	"math"
	"math/rand/v2"
)

// Shortcut is how a block's input reaches its output when shapes change.
type Shortcut uint8

const (
	// ShortcutB projects with a 1x1 strided conv + BatchNorm (torchvision).
	ShortcutB Shortcut = iota
	// ShortcutA subsamples (x[::s, ::s]) and zero-pads the new channels,
	// half before and half after the identity channels, as the CIFAR
	// ResNets of He et al. are usually written in PyTorch (F.pad).
	ShortcutA
	// ShortcutAEnd is option A with all zero channels after the identity
	// ones (TensorFlow-style tf.pad).
	ShortcutAEnd
)

// Config selects a member of the ResNet family (He et al. 2015).
type Config struct {
	// Depth picks the standard block counts: 18, 34 (basic), 50, 101, 152
	// (bottleneck) for the ImageNet layout; 6n+2 (20, 32, 44, 56, 110...)
	// for the CIFAR layout. Ignored when Blocks is set.
	Depth int
	// CIFAR selects the CIFAR layout: 3x3 stem, no max-pool, three stages of
	// BaseWidth, 2x, 4x filters, basic blocks.
	CIFAR bool
	// Blocks overrides the number of blocks per stage.
	Blocks []int
	// Bottleneck selects 1x1-3x3-1x1 blocks with expansion 4.
	Bottleneck bool
	// StrideOn1x1 puts a bottleneck's stride on its first 1x1 conv (the
	// original paper and TensorFlow); false puts it on the 3x3
	// (torchvision, "ResNet v1.5").
	StrideOn1x1 bool
	Shortcut    Shortcut
	ConvBias    bool // convs have biases (before graph.BatchNorm)
	BaseWidth   int  // filters of the first stage: 0 = 64 (ImageNet) or 16 (CIFAR)
	InChannels  int  // 0 = 3
	Height      int  // input size; 0 = 224 (ImageNet) or 32 (CIFAR)
	Width       int
	Classes     int // 0 = 1000 (ImageNet) or 10 (CIFAR)
	// Groups and WidthPerGroup make a bottleneck's 3x3 conv grouped, as
	// torchvision's ResNeXt and Wide ResNet: its width is
	// planes*WidthPerGroup/64*Groups (0 = 1 group of 64: plain ResNet).
	// resnext50_32x4d is Groups 32, WidthPerGroup 4; wide_resnet50_2 is
	// Groups 1, WidthPerGroup 128.
	Groups        int
	WidthPerGroup int
}

// Weights supplies parameters by PyTorch name and shape (torchvision
// naming: conv1.weight, bn1.running_mean, layer2.0.downsample.0.weight,
// fc.bias; CIFAR models name the classifier "fc" too). Conv weights are
// OIHW and Linear weights [out, in], as in PyTorch state dicts.
type Weights func(name string, shape []int) ([]float32, error)

// Normalize fills in the defaults and checks the configuration.
func (c Config) Normalize() (Config, error) {
	if c.InChannels == 0 {
		c.InChannels = 3
	}
	if c.CIFAR {
		c.Bottleneck = false
		if c.BaseWidth == 0 {
			c.BaseWidth = 16
		}
		if c.Height == 0 {
			c.Height, c.Width = 32, 32
		}
		if c.Classes == 0 {
			c.Classes = 10
		}
		if c.Blocks == nil {
			if c.Depth < 8 || (c.Depth-2)%6 != 0 {
				return c, fmt.Errorf("resnet: CIFAR depth must be 6n+2 (20, 32, 44, 56, 110), got %d", c.Depth)
			}
			n := (c.Depth - 2) / 6
			c.Blocks = []int{n, n, n}
		}
	} else {
		if c.BaseWidth == 0 {
			c.BaseWidth = 64
		}
		if c.Height == 0 {
			c.Height, c.Width = 224, 224
		}
		if c.Classes == 0 {
			c.Classes = 1000
		}
		if c.Blocks == nil {
			switch c.Depth {
			case 18:
				c.Blocks = []int{2, 2, 2, 2}
			case 34:
				c.Blocks = []int{3, 4, 6, 3}
			case 50:
				c.Blocks, c.Bottleneck = []int{3, 4, 6, 3}, true
			case 101:
				c.Blocks, c.Bottleneck = []int{3, 4, 23, 3}, true
			case 152:
				c.Blocks, c.Bottleneck = []int{3, 8, 36, 3}, true
			default:
				return c, fmt.Errorf("resnet: ImageNet depth must be 18, 34, 50, 101 or 152, got %d", c.Depth)
			}
		}
	}
	if c.Width == 0 {
		c.Width = c.Height
	}
	if c.Groups == 0 {
		c.Groups = 1
	}
	if c.WidthPerGroup == 0 {
		c.WidthPerGroup = 64
	}
	if c.Groups < 1 || c.WidthPerGroup < 1 || (c.Groups > 1 || c.WidthPerGroup != 64) && !c.Bottleneck {
		return c, fmt.Errorf("resnet: groups %d and width per group %d need bottleneck blocks", c.Groups, c.WidthPerGroup)
	}
	if c.InChannels < 1 || c.Classes < 1 || c.BaseWidth < 1 || c.Height < 1 || c.Width < 1 || len(c.Blocks) == 0 {
		return c, fmt.Errorf("resnet: bad config %+v", c)
	}
	for _, b := range c.Blocks {
		if b < 1 {
			return c, fmt.Errorf("resnet: every stage needs a block, got %v", c.Blocks)
		}
	}
	return c, nil
}

// Name is a short description such as "resnet50" or "cifar-resnet20".
func (c Config) Name() string {
	if n, err := c.Normalize(); err == nil {
		c = n // the block counts of a Depth-only configuration
	}
	depth := 2
	per := 2
	if c.Bottleneck {
		per = 3
	}
	for _, b := range c.Blocks {
		depth += per * b
	}
	switch {
	case c.CIFAR:
		return fmt.Sprintf("cifar-resnet%d", depth)
	case c.Groups > 1:
		return fmt.Sprintf("resnext%d_%dx%dd", depth, c.Groups, c.WidthPerGroup)
	case c.WidthPerGroup > 64 && c.WidthPerGroup%64 == 0:
		return fmt.Sprintf("wide_resnet%d_%d", depth, c.WidthPerGroup/64)
	}
	return fmt.Sprintf("resnet%d", depth)
}

// Build constructs the graph of a ResNet (unfused: convs, BatchNorm as
// Affine, ReLU, Add) with weights from w.
func Build(cfg Config, w Weights) (*graph.Graph, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	b := &builder{cfg: cfg, w: w, g: &graph.Graph{}}
	x := b.g.Add(&graph.Node{Name: "input", Op: graph.OpInput, Shape: graph.Shape{H: cfg.Height, W: cfg.Width, C: cfg.InChannels}})
	ch := cfg.InChannels
	if cfg.CIFAR {
		x = b.convBN("conv1", "bn1", x, ch, cfg.BaseWidth, 3, 1, 1, true)
	} else {
		x = b.convBN("conv1", "bn1", x, ch, cfg.BaseWidth, 7, 2, 3, true)
		x = b.g.Add(&graph.Node{Name: "maxpool", Op: graph.OpMaxPool, Inputs: []int{x},
			Pool: &graph.Pool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, Pad: graph.Pads{Top: 1, Left: 1, Bottom: 1, Right: 1}}})
	}
	ch = cfg.BaseWidth
	expansion := 1
	if cfg.Bottleneck {
		expansion = 4
	}
	for s, nb := range cfg.Blocks {
		planes := cfg.BaseWidth << s
		for i := 0; i < nb; i++ {
			stride := 1
			if s > 0 && i == 0 {
				stride = 2
			}
			name := fmt.Sprintf("layer%d.%d", s+1, i)
			x, err = b.block(name, x, ch, planes, stride)
			if err != nil {
				return nil, err
			}
			ch = planes * expansion
		}
	}
	x = b.g.Add(&graph.Node{Name: "avgpool", Op: graph.OpGlobalAvgPool, Inputs: []int{x}})
	fw := b.param("fc.weight", []int{cfg.Classes, ch})
	fb := b.param("fc.bias", []int{cfg.Classes})
	x = b.g.Add(&graph.Node{Name: "fc", Op: graph.OpDense, Inputs: []int{x},
		Dense: &graph.Dense{In: ch, Out: cfg.Classes, Weight: transpose2(fw, cfg.Classes, ch), Bias: fb}})
	b.g.Output = x
	if b.err != nil {
		return nil, b.err
	}
	if err := b.g.InferShapes(); err != nil {
		return nil, err
	}
	return b.g, nil
}

type builder struct {
	cfg Config
	w   Weights
	g   *graph.Graph
	err error
}

func (b *builder) param(name string, shape []int) []float32 {
	if b.err != nil {
		return nil
	}
	v, err := b.w(name, shape)
	if err != nil {
		b.err = fmt.Errorf("resnet: weight %s: %w", name, err)
		return nil
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(v) != n {
		b.err = fmt.Errorf("resnet: weight %s has %d values, want %v", name, len(v), shape)
		return nil
	}
	return v
}

// convBN adds conv (OIHW weights from the source, stored HWIO), its
// BatchNorm as an Affine, and optionally a ReLU.
func (b *builder) convBN(conv, bn string, x, cin, cout, k, stride, pad int, relu bool) int {
	return b.groupConvBN(conv, bn, x, cin, cout, k, stride, pad, 1, relu)
}

// groupConvBN is convBN for a conv of the given number of groups.
func (b *builder) groupConvBN(conv, bn string, x, cin, cout, k, stride, pad, groups int, relu bool) int {
	w := b.param(conv+".weight", []int{cout, cin / groups, k, k})
	c := &graph.Conv{KH: k, KW: k, StrideH: stride, StrideW: stride, DilH: 1, DilW: 1,
		Pad: graph.Pads{Top: pad, Left: pad, Bottom: pad, Right: pad}, Cin: cin, Cout: cout}
	if groups > 1 {
		c.Group = groups
	}
	if w != nil {
		c.Weight = graph.OIHWToHWIO(w, cout, cin/groups, k, k)
	}
	if b.cfg.ConvBias {
		c.Bias = b.param(conv+".bias", []int{cout})
	}
	x = b.g.Add(&graph.Node{Name: conv, Op: graph.OpConv, Inputs: []int{x}, Conv: c})
	gamma := b.param(bn+".weight", []int{cout})
	beta := b.param(bn+".bias", []int{cout})
	mean := b.param(bn+".running_mean", []int{cout})
	variance := b.param(bn+".running_var", []int{cout})
	if b.err == nil {
		x = b.g.Add(&graph.Node{Name: bn, Op: graph.OpAffine, Inputs: []int{x}, Affine: graph.BatchNorm(gamma, beta, mean, variance, 1e-5)})
	}
	if relu {
		x = b.g.Add(&graph.Node{Name: conv + ".relu", Op: graph.OpRelu, Inputs: []int{x}})
	}
	return x
}

func (b *builder) block(name string, x, cin, planes, stride int) (int, error) {
	in := x
	var out, cout int
	if b.cfg.Bottleneck {
		cout = planes * 4
		s1, s3 := 1, stride
		if b.cfg.StrideOn1x1 {
			s1, s3 = stride, 1
		}
		width := planes * b.cfg.WidthPerGroup / 64 * b.cfg.Groups
		y := b.convBN(name+".conv1", name+".bn1", x, cin, width, 1, s1, 0, true)
		y = b.groupConvBN(name+".conv2", name+".bn2", y, width, width, 3, s3, 1, b.cfg.Groups, true)
		out = b.convBN(name+".conv3", name+".bn3", y, width, cout, 1, 1, 0, false)
	} else {
		cout = planes
		y := b.convBN(name+".conv1", name+".bn1", x, cin, planes, 3, stride, 1, true)
		out = b.convBN(name+".conv2", name+".bn2", y, planes, planes, 3, 1, 1, false)
	}
	short := in
	if stride != 1 || cin != cout {
		switch b.cfg.Shortcut {
		case ShortcutB:
			short = b.convBN(name+".downsample.0", name+".downsample.1", in, cin, cout, 1, stride, 0, false)
		case ShortcutA, ShortcutAEnd:
			if cout < cin {
				return 0, fmt.Errorf("resnet: %s: option A cannot shrink %d to %d channels", name, cin, cout)
			}
			if stride != 1 {
				s, err := b.shape(in)
				if err != nil {
					return 0, err
				}
				short = b.g.Add(&graph.Node{Name: name + ".shortcut.subsample", Op: graph.OpSlice, Inputs: []int{short},
					Slice: &graph.SliceOp{End: [3]int{s.H, s.W, s.C}, Step: [3]int{stride, stride, 1}}})
			}
			extra := cout - cin
			before := extra / 2
			if b.cfg.Shortcut == ShortcutAEnd {
				before = 0
			}
			short = b.g.Add(&graph.Node{Name: name + ".shortcut.pad", Op: graph.OpPad, Inputs: []int{short},
				Pad: &graph.PadOp{Before: [3]int{0, 0, before}, After: [3]int{0, 0, extra - before}}})
		}
	}
	x = b.g.Add(&graph.Node{Name: name + ".add", Op: graph.OpAdd, Inputs: []int{out, short}})
	return b.g.Add(&graph.Node{Name: name + ".relu", Op: graph.OpRelu, Inputs: []int{x}}), nil
}

// shape infers the shapes built so far and returns node i's.
func (b *builder) shape(i int) (graph.Shape, error) {
	if b.err != nil {
		return graph.Shape{}, b.err
	}
	b.g.Output = len(b.g.Nodes) - 1
	if err := b.g.InferShapes(); err != nil {
		return graph.Shape{}, err
	}
	return b.g.Nodes[i].Shape, nil
}

// HeInit returns random weights as torchvision initializes a new ResNet:
// convs N(0, 2/fan_out) (Kaiming normal, fan_out mode), BatchNorm gamma 1,
// beta 0, running mean 0, variance 1, and the classifier U(-1/sqrt(in),
// 1/sqrt(in)). Deterministic for a seed.
func HeInit(seed uint64) Weights {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return func(name string, shape []int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		suffix := func(s string) bool { return len(name) >= len(s) && name[len(name)-len(s):] == s }
		switch {
		case len(shape) == 4: // conv weight OIHW
			std := math.Sqrt(2 / float64(shape[0]*shape[2]*shape[3]))
			for i := range v {
				v[i] = float32(r.NormFloat64() * std)
			}
		case len(shape) == 2: // linear weight
			bound := 1 / math.Sqrt(float64(shape[1]))
			for i := range v {
				v[i] = float32((2*r.Float64() - 1) * bound)
			}
		case suffix(".running_var"), suffix("bn1.weight"), suffix("bn2.weight"), suffix("bn3.weight"), suffix("downsample.1.weight"):
			for i := range v {
				v[i] = 1
			}
		case name == "fc.bias":
			for i := range v {
				v[i] = float32((2*r.Float64() - 1) * 0.01)
			}
		}
		return v, nil
	}
}

// transpose2 turns an [r][c] matrix into [c][r].
func transpose2(w []float32, r, c int) []float32 {
	if w == nil {
		return nil
	}
	out := make([]float32, len(w))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = w[i*c+j]
		}
	}
	return out
}
