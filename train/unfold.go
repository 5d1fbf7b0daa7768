package train

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// Unfold recovers the trainable form of a model image whose graph is a
// ResNet that resnet.Build makes (CIFAR or ImageNet layout, basic or
// bottleneck blocks, shortcut A or B, any stage depths and widths): the
// configuration whose Build graph, once fused, has the model's structure
// and shapes, and weights under Build's names for NewNet. Each folded
// conv (W, b) becomes conv weights W and a BatchNorm of gamma 1, beta b,
// running mean 0 and running variance float32(1-eps): 1/sqrt(var+eps) is
// then within 2^-26 of 1, so x·invStd rounds back to x in float32 and the
// net in eval mode computes exactly the folded convs (up to the order of
// the conv sums), and Build folds it back to W and b. Training-mode
// BatchNorm normalizes with the batch statistics instead, which rescales
// every channel by its batch deviation: Run therefore first sets the
// statistics from data (Calibrator, Config.Calibrate), so that training
// starts from the model's function.
//
// The classifier's weights are the model's; a Softmax after it is dropped
// (the trained net outputs logits). A model that is not such a ResNet
// gives an error naming the model and the first node that does not
// match.
func Unfold(fm *firmware.Model) (resnet.Config, resnet.Weights, error) {
	u, err := unfold(fm)
	if err != nil {
		return resnet.Config{}, nil, err
	}
	return u.cfg, u.weights(denseWeights(u.dense)), nil
}

// unfolded is a model matched to a Build configuration.
type unfolded struct {
	cfg   resnet.Config
	model *graph.Graph // the model's graph, fused
	built *graph.Graph // Build's graph of cfg, fused
	pair  []int        // built node -> model node
	dense *graph.Dense // the model's classifier
}

// unfold fuses the model's graph, guesses the configurations it may be
// from its stem, block outputs and shortcuts, and keeps the first whose
// fused Build graph matches node for node.
func unfold(fm *firmware.Model) (*unfolded, error) {
	name := cmp.Or(fm.Meta.Name, fm.Meta.Arch, "the model")
	fail := func(err error) error {
		return fmt.Errorf("train: %s is not a ResNet that training can unfold: %w", name, err)
	}
	mg, err := graph.Fuse(fm.Graph)
	if err != nil {
		return nil, fail(err)
	}
	dense, _, err := Classifier(mg)
	if err != nil {
		return nil, fail(err)
	}
	// The trained net ends at the classifier: its logits.
	mg.Output, mg.Extra, mg.OutputNames = dense, nil, nil
	cands, err := candidates(mg)
	if err != nil {
		return nil, fail(err)
	}
	var best *matchError
	for _, cfg := range cands {
		built, err := buildShape(cfg)
		if err != nil {
			return nil, fail(err)
		}
		pair, merr := match(built, mg)
		if merr == nil {
			return &unfolded{cfg: cfg, model: mg, built: built, pair: pair, dense: mg.Nodes[dense].Dense}, nil
		}
		merr.arch = cfg.Name()
		if best == nil || merr.progress > best.progress {
			best = merr
		}
	}
	return nil, fail(best)
}

// candidates are the configurations the fused graph g may be built from:
// the input, stem conv (3x3: CIFAR layout, 7x7: ImageNet), classes, the
// block outputs per spatial size (stages) and shortcut (A when the graph
// pads channels, else B) say; basic or bottleneck blocks (stride on the
// 3x3 or the 1x1) are left to the match.
func candidates(g *graph.Graph) ([]resnet.Config, error) {
	in := g.Input()
	var stem *graph.Node
	for _, n := range g.Nodes {
		if n.Op == graph.OpConv && len(n.Inputs) > 0 && n.Inputs[0] == 0 {
			stem = n
			break
		}
	}
	if stem == nil {
		return nil, errors.New("no conv reads the input")
	}
	base := resnet.Config{InChannels: in.C, Height: in.H, Width: in.W, BaseWidth: stem.Conv.Cout,
		Classes: g.Nodes[g.Output].Dense.Out, Shortcut: resnet.ShortcutB}
	switch stem.Conv.KH {
	case 3:
		base.CIFAR = true
	case 7:
	default:
		return nil, fmt.Errorf("the stem %q is a %dx%d conv, not 3x3 (CIFAR layout) or 7x7 (ImageNet)", stem.Name, stem.Conv.KH, stem.Conv.KW)
	}
	lastH := -1
	for _, n := range g.Nodes {
		switch {
		case n.Op == graph.OpPad:
			base.Shortcut = resnet.ShortcutA
		case n.Op == graph.OpAdd || n.Op == graph.OpConv && len(n.Inputs) == 2: // a block's output
			if n.Shape.H != lastH {
				base.Blocks, lastH = append(base.Blocks, 0), n.Shape.H
			}
			base.Blocks[len(base.Blocks)-1]++
		}
	}
	if len(base.Blocks) == 0 {
		return nil, errors.New("no residual adds")
	}
	cands := []resnet.Config{base}
	if !base.CIFAR {
		for _, on1x1 := range []bool{false, true} {
			c := base
			c.Bottleneck, c.StrideOn1x1 = true, on1x1
			cands = append(cands, c)
		}
	}
	return cands, nil
}

// buildShape is cfg's Build graph, fused, with weights that only give it
// its shapes.
func buildShape(cfg resnet.Config) (*graph.Graph, error) {
	g, err := resnet.Build(cfg, func(name string, shape []int) ([]float32, error) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		if strings.HasSuffix(name, ".running_var") {
			fill(v, 1)
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return graph.Fuse(g)
}

// matchError is where a Build graph first differs from the model's;
// progress (the Build nodes matched before) ranks the candidates.
type matchError struct {
	arch     string
	progress int
	msg      string
}

func (e *matchError) Error() string {
	return fmt.Sprintf("%s (the closest, %s, differs there)", e.msg, e.arch)
}

// match pairs every node of the built graph b, in order, with the first
// unpaired node of the model's graph m that does the same operation on
// the paired inputs (an Add's in either order), and checks that every
// node of m is paired.
func match(b, m *graph.Graph) ([]int, *matchError) {
	pair := make([]int, len(b.Nodes))
	used := make([]bool, len(m.Nodes))
	pair[0], used[0] = 0, true
	for i := 1; i < len(b.Nodes); i++ {
		bn := b.Nodes[i]
		ins := make([]int, len(bn.Inputs))
		for k, in := range bn.Inputs {
			ins[k] = pair[in]
		}
		found := -1
		for j := ins[0] + 1; j < len(m.Nodes) && found < 0; j++ {
			if !used[j] && sameInputs(bn.Op, m.Nodes[j].Inputs, ins) && sameNode(bn, m.Nodes[j]) {
				found = j
			}
		}
		if found < 0 {
			return nil, &matchError{progress: i, msg: mismatch(bn, m, ins[0], used)}
		}
		pair[i], used[found] = found, true
	}
	for j, live := range ancestors(m, m.Output) {
		if live && !used[j] {
			return nil, &matchError{progress: len(b.Nodes), msg: fmt.Sprintf("node %q (%s) has no counterpart", m.Nodes[j].Name, describe(m.Nodes[j]))}
		}
	}
	if pair[b.Output] != m.Output {
		return nil, &matchError{progress: len(b.Nodes), msg: fmt.Sprintf("the output is node %q, not the classifier", m.Nodes[m.Output].Name)}
	}
	return pair, nil
}

// sameInputs says whether a node of op reads got where Build's reads want
// (an Add's operands commute).
func sameInputs(op graph.Op, got, want []int) bool {
	if slices.Equal(got, want) {
		return true
	}
	return op == graph.OpAdd && len(got) == 2 && len(want) == 2 && got[0] == want[1] && got[1] == want[0]
}

// sameNode says whether the model's node m does what Build's node b does:
// same operation, output shape and fused activation, same window, stride,
// padding and channels.
func sameNode(b, m *graph.Node) bool {
	if b.Op != m.Op || b.Shape != m.Shape || b.Relu != m.Relu || m.Clamp != nil {
		return false
	}
	switch b.Op {
	case graph.OpConv:
		x, y := b.Conv, m.Conv
		return x.KH == y.KH && x.KW == y.KW && x.StrideH == y.StrideH && x.StrideW == y.StrideW &&
			x.DilH == y.DilH && x.DilW == y.DilW && x.Pad == y.Pad && x.Cin == y.Cin && x.Cout == y.Cout &&
			x.Groups() == y.Groups()
	case graph.OpMaxPool:
		return *b.Pool == *m.Pool
	case graph.OpSlice: // the shape checks the count
		return b.Slice.Start == m.Slice.Start && b.Slice.Step == m.Slice.Step
	case graph.OpPad:
		return *b.Pad == *m.Pad
	case graph.OpDense:
		return b.Dense.In == m.Dense.In && b.Dense.Out == m.Dense.Out
	case graph.OpAdd, graph.OpGlobalAvgPool:
		return true
	}
	return false
}

// mismatch describes the model node where Build's node b was expected:
// the first unpaired reader of the model's node after.
func mismatch(b *graph.Node, m *graph.Graph, after int, used []bool) string {
	for j := after + 1; j < len(m.Nodes); j++ {
		if !used[j] && slices.Contains(m.Nodes[j].Inputs, after) {
			n := m.Nodes[j]
			return fmt.Sprintf("node %q (%s) where %s (%s) is expected", n.Name, describe(n), b.Name, describe(b))
		}
	}
	return fmt.Sprintf("nothing reads node %q where %s (%s) is expected", m.Nodes[after].Name, b.Name, describe(b))
}

// describe is a node's operation, attributes and output shape, for errors.
func describe(n *graph.Node) string {
	s := n.Op.String()
	switch {
	case n.Op == graph.OpConv:
		c := n.Conv
		s += fmt.Sprintf(" %dx%d/%d %d->%d", c.KH, c.KW, c.StrideH, c.Cin, c.Cout)
		if p := c.Pad; p != (graph.Pads{Top: p.Top, Left: p.Top, Bottom: p.Top, Right: p.Top}) {
			s += fmt.Sprintf(" pad %d,%d,%d,%d", p.Top, p.Left, p.Bottom, p.Right)
		}
		if len(n.Inputs) == 2 {
			s += " +residual"
		}
	case n.Op == graph.OpDense:
		s += fmt.Sprintf(" %d->%d", n.Dense.In, n.Dense.Out)
	}
	if n.Relu {
		s += " +relu"
	}
	return s + " -> " + n.Shape.String()
}

// ancestors marks the nodes node out depends on, itself included.
func ancestors(g *graph.Graph, out int) []bool {
	live := make([]bool, len(g.Nodes))
	live[out] = true
	for i := out; i >= 0; i-- {
		if live[i] {
			for _, in := range g.Nodes[i].Inputs {
				live[in] = true
			}
		}
	}
	return live
}

// unitVar is the running variance of an unfolded BatchNorm: with the
// default eps, 1/sqrt(unitVar+eps) is 1 to within 2^-26.
var unitVar = float32(1 - 1e-5)

// weights serves the unfolded net's tensors under Build's names: each
// conv's weights from the model's folded conv, its BatchNorm the identity
// plus the folded bias (see Unfold), and the classifier from fc.
func (u *unfolded) weights(fc resnet.Weights) resnet.Weights {
	convs := map[string]*graph.Conv{}
	for i, n := range u.built.Nodes {
		if n.Op == graph.OpConv {
			convs[n.Name] = u.model.Nodes[u.pair[i]].Conv
		}
	}
	return func(name string, shape []int) ([]float32, error) {
		if strings.HasPrefix(name, "fc.") {
			return fc(name, shape)
		}
		i := max(strings.LastIndexByte(name, '.'), 0)
		module, param := name[:i], name[i+1:]
		if c, ok := convs[module]; ok && param == "weight" {
			w := &tensor{shape: []int{c.Cout, c.GroupIn(), c.KH, c.KW}, kind: hwio}
			return w.toTorch(c.FloatWeight()), nil
		}
		c, ok := convs[convOfBN(module)]
		if !ok {
			return nil, fmt.Errorf("train: unfold: no conv for %s", name)
		}
		v := make([]float32, c.Cout)
		switch param {
		case "weight":
			fill(v, 1)
		case "bias":
			copy(v, c.Bias) // nil: no bias
		case "running_mean":
		case "running_var":
			fill(v, unitVar)
		default:
			return nil, fmt.Errorf("train: unfold: no tensor %s", name)
		}
		return v, nil
	}
}

func fill(v []float32, x float32) {
	for i := range v {
		v[i] = x
	}
}

// convOfBN is the name of the conv a BatchNorm of Build's follows:
// layer1.0.bn2 follows layer1.0.conv2, downsample.1 downsample.0.
func convOfBN(bn string) string {
	if s, ok := strings.CutSuffix(bn, "downsample.1"); ok {
		return s + "downsample.0"
	}
	i := strings.LastIndex(bn, "bn")
	if i < 0 {
		return ""
	}
	return bn[:i] + "conv" + bn[i+2:]
}
