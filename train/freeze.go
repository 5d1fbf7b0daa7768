package train

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// FreezeBackbone's name in Config.Freeze's syntax, as the CLI takes it.
const freezeBackbone = "backbone"

// frozenStages parses a partial freeze (Config.Freeze) of the net cfg:
// -1 for none (""), 0 for the stem only ("stem"), k for the stem and the
// first k stages ("layerK", torchvision's stage names).
func frozenStages(freeze string, cfg resnet.Config) (int, error) {
	switch freeze {
	case "":
		return -1, nil
	case "stem":
		return 0, nil
	}
	k, err := strconv.Atoi(strings.TrimPrefix(freeze, "layer"))
	if !strings.HasPrefix(freeze, "layer") || err != nil || k < 1 || k > len(cfg.Blocks) {
		return 0, fmt.Errorf("train: freeze %q: want backbone, stem or layer1..layer%d (%s has %d stages)",
			freeze, len(cfg.Blocks), cfg.Name(), len(cfg.Blocks))
	}
	return k, nil
}

// frozenName says whether tensor or node name belongs to the stem and
// the first stages frozen (see frozenStages).
func frozenName(name string, stages int) bool {
	if stages < 0 {
		return false
	}
	s, ok := strings.CutPrefix(name, "layer")
	if !ok { // the stem's names: conv1, bn1, conv1.relu, maxpool
		return strings.HasPrefix(name, "conv1") || strings.HasPrefix(name, "bn1") || name == "maxpool"
	}
	stage, _, _ := strings.Cut(s, ".")
	k, err := strconv.Atoi(stage)
	return err == nil && k <= stages
}

// FrozenGraph is the part of fm's graph that fine-tuning with freeze
// (Config.Freeze, or "backbone" for FreezeBackbone) keeps frozen and runs
// in inference form: the graph, fused, cut at the output of the stem or
// of the last frozen stage (at the classifier's input for "backbone"). Its
// output is the input of the layers trained.
func FrozenGraph(fm *firmware.Model, freeze string) (*graph.Graph, error) {
	if freeze == freezeBackbone {
		return BackboneGraph(fm.Graph)
	}
	u, err := unfold(fm)
	if err != nil {
		return nil, err
	}
	stages, err := frozenStages(freeze, u.cfg)
	if err != nil {
		return nil, err
	}
	if stages < 0 {
		return nil, fmt.Errorf("train: nothing is frozen (freeze %q)", freeze)
	}
	cut := u.pair[u.cut(stages)]
	return &graph.Graph{Nodes: u.model.Nodes[:cut+1], Output: cut, Batch: u.model.Batch}, nil
}

// cut is the built node that outputs the frozen part of stages (>= 0).
func (u *unfolded) cut(stages int) int {
	cut := 0
	for i, n := range u.built.Nodes {
		if frozenName(n.Name, stages) {
			cut = i
		}
	}
	return cut
}

// tailNet is the trained part of a partly frozen Net: the blocks from
// first on, the pooling and the classifier, on the frozen part's output.
// The first block computes no input gradient, and the frozen layers
// never run here (their BatchNorms stay in inference form, their
// weights, statistics and activations untouched).
type tailNet struct {
	net    *Net
	first  int        // the first trained block
	in     grad.Shape // one sample's input
	params []Param
}

// newTail is the tail of net after the stem and the first stages, whose
// output has shape in.
func newTail(net *Net, stages int, in graph.Shape) *tailNet {
	t := &tailNet{net: net, in: grad.Shape{N: 1, H: in.H, W: in.W, C: in.C}}
	for _, nb := range net.cfg.Blocks[:stages] {
		t.first += nb
	}
	for _, p := range net.Params() {
		if !frozenName(p.Name, stages) {
			t.params = append(t.params, p)
		}
	}
	b := net.blocks[t.first]
	b.main[0].conv.NoInputGrad = true
	if b.proj != nil {
		b.proj.conv.NoInputGrad = true
	}
	return t
}

func (t *tailNet) Forward(x []float32, n int, train bool) []float32 {
	s := t.in
	s.N = n
	if len(x) != s.Size() {
		panic(fmt.Sprintf("train: tail forward: %d values for %d inputs of %dx%dx%d", len(x), n, s.H, s.W, s.C))
	}
	y := x
	for _, b := range t.net.blocks[t.first:] {
		y, s = b.forward(y, s, train)
	}
	y, s = t.net.gap.Forward(y, s)
	y, _ = t.net.fc.Forward(y, s)
	return y
}

// Backward adds the trained layers' gradients and returns nil: nothing
// below the first trained block needs a gradient.
func (t *tailNet) Backward(dlogits []float32) []float32 {
	dy := t.net.gap.Backward(t.net.fc.Backward(dlogits))
	blocks := t.net.blocks
	for i := len(blocks) - 1; i > t.first; i-- {
		dy = blocks[i].backward(dy)
	}
	b := blocks[t.first]
	dmain, dshort := b.merge.Backward(dy)
	for i := len(b.main) - 1; i >= 0; i-- {
		dmain = b.main[i].backward(dmain)
	}
	if b.proj != nil {
		b.proj.backward(dshort)
	}
	return nil
}

func (t *tailNet) Params() []Param { return t.params }

func (t *tailNet) ZeroGrad() {
	for _, p := range t.params {
		clear(p.Grad)
	}
}

// frozenStream turns a stream of images into one of the frozen part's
// outputs on them (Config.Backbone), [n, H, W, C].
type frozenStream struct {
	batchStream
	run Backbone
	out graph.Shape
}

func (s *frozenStream) Each(f func(*Batch) error) error {
	return s.batchStream.Each(func(b *Batch) error {
		n := b.Shape[0]
		y, err := s.run(b.X, n)
		if err != nil {
			return err
		}
		if len(y) != n*s.out.Size() {
			return fmt.Errorf("train: the frozen layers gave %d values for %d samples of %v", len(y), n, s.out)
		}
		fb := *b // the loader's batch keeps its buffers
		fb.X, fb.Shape = y, [4]int{n, s.out.H, s.out.W, s.out.C}
		return f(&fb)
	})
}

// setupUnfolded makes the net of a fine-tuning without FreezeBackbone:
// From unfolded (see Unfold) with the classifier of classifierInit, and
// the frozen part Config.Freeze asks for.
func (t *trainer) setupUnfolded() error {
	c := &t.cfg
	u, err := unfold(c.From)
	if err != nil {
		return err
	}
	if in := u.model.Input(); c.Spec.Height != in.H || c.Spec.Width != in.W || c.Spec.Channels != in.C {
		return fmt.Errorf("train: the preprocessing makes %dx%dx%d inputs; %s takes %v", c.Spec.Height, c.Spec.Width, c.Spec.Channels, c.From.Meta.Name, in)
	}
	c.Arch = u.cfg
	c.Arch.Classes = len(c.Labels)
	if t.stages, err = frozenStages(c.Freeze, u.cfg); err != nil {
		return err
	}
	if t.stages >= 0 {
		t.frozen = u.built.Nodes[u.cut(t.stages)].Shape
	}
	if err := c.checkMemory(c.memory(t.stages, t.frozen)); err != nil {
		return err
	}
	return t.useNet(NewNet(c.Arch, u.weights(classifierInit(c, u.dense))))
}

// useNet makes net (unless err) what the run trains: all of it, or its
// tail after the frozen stages.
func (t *trainer) useNet(net *Net, err error) error {
	if err != nil {
		return err
	}
	net.SetThreads(t.cfg.Threads)
	t.net, t.model = net, net
	if t.stages >= 0 {
		t.model = newTail(net, t.stages, t.frozen)
	}
	if t.cfg.FrozenStats {
		t.model = frozenStats{t.model}
	}
	return nil
}

// frozenStats runs a learner's BatchNorms on their running statistics in
// training too (Config.FrozenStats).
type frozenStats struct{ learner }

func (f frozenStats) Forward(x []float32, n int, _ bool) []float32 {
	return f.learner.Forward(x, n, false)
}
