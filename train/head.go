package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// Backbone runs a frozen backbone in inference form: the features, n rows
// of the classifier's input size, of n preprocessed NHWC inputs.
type Backbone func(x []float32, n int) ([]float32, error)

// Classifier finds the classifier of an inference graph: the Dense node
// that produces the output, directly or behind a Softmax, and the node
// that feeds it (the pooled features). The Dense must carry no fused
// activation.
func Classifier(g *graph.Graph) (dense, features int, err error) {
	i := g.Output
	if i < 0 || i >= len(g.Nodes) {
		return 0, 0, errors.New("train: the graph's output is out of range")
	}
	if g.Nodes[i].Op == graph.OpSoftmax {
		i = g.Nodes[i].Inputs[0]
	}
	n := g.Nodes[i]
	if n.Op != graph.OpDense || n.Dense == nil || len(n.Inputs) != 1 {
		return 0, 0, fmt.Errorf("train: the output comes from %s %q, not from a Dense (Gemm) classifier", n.Op, n.Name)
	}
	if n.Relu || n.Clamp != nil {
		return 0, 0, fmt.Errorf("train: the classifier %q has a fused activation", n.Name)
	}
	return i, n.Inputs[0], nil
}

// BackboneGraph is g cut at the input of its classifier (see Classifier):
// its output is the pooled features. It shares g's nodes.
func BackboneGraph(g *graph.Graph) (*graph.Graph, error) {
	_, f, err := Classifier(g)
	if err != nil {
		return nil, err
	}
	return &graph.Graph{Nodes: g.Nodes[:f+1], Output: f, Batch: g.Batch}, nil
}

// headNet is a new classifier over cached features: Dense F -> K.
type headNet struct {
	fc *grad.Dense
}

// newHead is the head of cfg.From for len(cfg.Labels) classes, with
// classifierInit's weights.
func newHead(c *Config) (*headNet, int, error) {
	dense, _, err := Classifier(c.From.Graph)
	if err != nil {
		return nil, 0, err
	}
	d := c.From.Graph.Nodes[dense].Dense
	h := &headNet{fc: grad.NewDense(d.In, len(c.Labels))}
	h.fc.NoInputGrad = true
	if err := h.load(classifierInit(c, d)); err != nil {
		return nil, 0, err
	}
	return h, dense, nil
}

// classifierInit serves the initial classifier of a fine-tuning for
// len(c.Labels) classes: the model's, d, when the count is the same, else
// one initialized as resnet.HeInit(c.Seed) initializes a classifier.
func classifierInit(c *Config, d *graph.Dense) resnet.Weights {
	if len(c.Labels) != d.Out {
		return resnet.HeInit(c.Seed)
	}
	return denseWeights(d)
}

// denseWeights serves d as fc.weight ([Out, In], PyTorch's layout) and
// fc.bias.
func denseWeights(d *graph.Dense) resnet.Weights {
	return func(name string, shape []int) ([]float32, error) {
		switch name {
		case "fc.weight":
			w := &tensor{shape: []int{d.Out, d.In}, kind: inOut}
			return w.toTorch(d.FloatWeight()), nil
		case "fc.bias":
			b := make([]float32, d.Out)
			copy(b, d.Bias) // nil: no bias
			return b, nil
		}
		return nil, fmt.Errorf("the classifier has no tensor %s", name)
	}
}

// load sets the head from PyTorch-layout fc.weight [K, F] and fc.bias.
func (h *headNet) load(w resnet.Weights) error {
	f, k := h.fc.In, h.fc.Out
	wt, err := w("fc.weight", []int{k, f})
	if err != nil {
		return fmt.Errorf("train: head: %w", err)
	}
	b, err := w("fc.bias", []int{k})
	if err != nil {
		return fmt.Errorf("train: head: %w", err)
	}
	for o := range k {
		for i := range f {
			h.fc.W[i*k+o] = wt[o*f+i]
		}
	}
	copy(h.fc.B, b)
	return nil
}

func (h *headNet) tensors() map[string][]float32 {
	f, k := h.fc.In, h.fc.Out
	wt := make([]float32, f*k)
	for o := range k {
		for i := range f {
			wt[o*f+i] = h.fc.W[i*k+o]
		}
	}
	return map[string][]float32{"fc.weight": wt, "fc.bias": append([]float32(nil), h.fc.B...)}
}

func (h *headNet) Forward(x []float32, n int, _ bool) []float32 {
	y, _ := h.fc.Forward(x, grad.Shape{N: n, H: 1, W: 1, C: h.fc.In})
	return y
}

func (h *headNet) Backward(dlogits []float32) []float32 { return h.fc.Backward(dlogits) }

func (h *headNet) Params() []Param {
	return []Param{{Name: "fc.weight", Value: h.fc.W, Grad: h.fc.GradW, Decay: true},
		{Name: "fc.bias", Value: h.fc.B, Grad: h.fc.GradB}}
}

func (h *headNet) ZeroGrad() { h.fc.ZeroGrad() }

// features is a set's cached backbone features: row i is sample i's.
type features struct {
	dim  int
	rows []float32
	set  dataset.Set
}

// computeFeatures runs the backbone once on the samples idx of set,
// preprocessed without augmentation.
func (t *trainer) computeFeatures(ctx context.Context, set dataset.Set, idx []int) (*features, error) {
	dim := t.cfg.From.Graph.Nodes[t.dense].Dense.In
	fs := &features{dim: dim, rows: make([]float32, set.Len()*dim), set: set}
	l := &Loader{Set: set, Spec: t.cfg.Spec, Workers: t.cfg.Threads}
	s, err := l.Start(ctx, 0, (&Batches{Indices: idx, Size: t.cfg.Batch}).Epoch(0))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	err = s.Each(func(b *Batch) error {
		out, err := t.cfg.Backbone(b.X, b.Shape[0])
		if err != nil {
			return err
		}
		if len(out) != len(b.Indices)*dim {
			return fmt.Errorf("train: the backbone gave %d values for %d samples of %d features", len(out), len(b.Indices), dim)
		}
		for j, i := range b.Indices {
			copy(fs.rows[i*dim:(i+1)*dim], out[j*dim:(j+1)*dim])
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// featureStream serves batches of cached features, [n, 1, 1, F].
type featureStream struct {
	fs      *features
	batches [][]int
	b       Batch
}

func (s *featureStream) Each(f func(*Batch) error) error {
	for k, idx := range s.batches {
		d := s.fs.dim
		b := &s.b
		b.Step, b.Indices, b.Shape = k, idx, [4]int{len(idx), 1, 1, d}
		b.X, b.Labels = b.X[:0], b.Labels[:0]
		for _, i := range idx {
			b.X = append(b.X, s.fs.rows[i*d:(i+1)*d]...)
			b.Labels = append(b.Labels, s.fs.set.Label(i))
		}
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}

func (s *featureStream) Close() {}

// headImage is cfg.From's graph with its classifier replaced by the head
// and the labels of the data.
func (t *trainer) headImage(m Metrics) (*firmware.Model, error) {
	from := t.cfg.From
	g := *from.Graph
	g.Nodes = make([]*graph.Node, len(from.Graph.Nodes))
	for i, nd := range from.Graph.Nodes {
		c := *nd // InferShapes sets the shapes of the copies only
		g.Nodes[i] = &c
	}
	n := g.Nodes[t.dense]
	h := t.model.(*headNet)
	n.Dense = &graph.Dense{In: h.fc.In, Out: h.fc.Out,
		Weight: append([]float32(nil), h.fc.W...), Bias: append([]float32(nil), h.fc.B...)}
	n.Quant = nil
	if err := g.InferShapes(); err != nil {
		return nil, fmt.Errorf("train: the fine-tuned graph: %w", err)
	}
	meta := from.Meta
	meta.Labels = t.cfg.Labels
	if t.cfg.Name != "" {
		meta.Name = t.cfg.Name
	}
	meta.Provenance = maps.Clone(meta.Provenance)
	if meta.Provenance == nil {
		meta.Provenance = map[string]string{}
	}
	maps.Copy(meta.Provenance, map[string]string{
		"trainer": "edge-resnet train --freeze backbone", "step": strconv.Itoa(m.Step), "epoch": strconv.Itoa(m.Epoch),
		"val_acc": strconv.FormatFloat(m.ValAcc, 'f', 6, 64),
	})
	return &firmware.Model{Graph: &g, Meta: meta}, nil
}
