package graph

import "fmt"

// Fuse returns an equivalent graph prepared for inference:
//   - an Affine (inference BatchNorm) whose input is a Conv or Dense used
//     only by it is folded into that layer's weights and bias;
//   - an Add of a Conv used only by it and a value computed before that Conv
//     becomes the Conv's residual input (added in its epilogue);
//   - a Relu (or a Clip(0, +Inf)) after a Conv, Dense, Add or Affine used
//     only by it becomes that node's Relu flag;
//   - a zero Pad of H and W used only by a Conv becomes the Conv's padding
//     (exporters emit them for asymmetric "same" padding);
//   - a Slice of a Slice used only by it becomes one Slice;
//   - a Flatten of a 1x1xC tensor (a no-op in NHWC) disappears;
//   - nodes the output does not depend on are dropped.
//
// The input graph is not modified, and weights it holds are never written
// (they may be read-only mapped memory): folding makes new slices.
//
// Fuse's result is what model images store; FuseWith can fold further.
func Fuse(src *Graph) (*Graph, error) { return FuseWith(src, FuseOptions{}) }

// FuseOptions select the rewrites of FuseWith beyond Fuse's.
type FuseOptions struct {
	// Clip folds a Clip other than a ReLU into the Conv, Dense, Add or
	// Affine before it (Node.Clamp) under the rule of the Relu flag (the
	// node is used only by the Clip), unless either value is quantized
	// (see fuseClip). Model images cannot store the result: it is for
	// plans (ReLU6 networks then skip a pass over every activation), and
	// images keep their Clips, so that they stay what earlier writers
	// produced and earlier readers run.
	Clip bool
}

// FuseWith is Fuse with the options' further rewrites.
// It does not write to src: shapes are inferred on a copy of its nodes, so
// plans of one model may be compiled concurrently.
func FuseWith(src *Graph, opt FuseOptions) (*Graph, error) {
	nodes, err := copyNodes(src)
	if err != nil {
		return nil, err
	}
	g := &Graph{Nodes: nodes, Output: src.Output, Batch: src.Batch, Extra: src.Extra, OutputNames: src.OutputNames}
	if err := g.InferShapes(); err != nil {
		return nil, err
	}
	uses := g.Consumers()
	fz := &fuser{nodes: nodes, uses: uses, clip: opt.Clip}
	// alias[i] = j: node i's value is node j's (i was merged into j).
	alias := make([]int, len(nodes))
	for i := range alias {
		alias[i] = i
	}
	for i, n := range nodes {
		for k, in := range n.Inputs {
			n.Inputs[k] = alias[in]
		}
		if i == 0 {
			continue
		}
		merged := -1
		if fuse := ops[n.Op].fuse; fuse != nil {
			merged = fuse(fz, i)
		}
		if merged >= 0 {
			alias[i] = merged
			// The merged node's value now has the consumers of node i.
			uses[merged] = uses[i]
			nodes[i] = nil
		}
	}
	// Keep what the output depends on (and the input), in order.
	live := make([]bool, len(nodes))
	live[0] = true
	for _, o := range src.Outputs() {
		live[alias[o]] = true
	}
	for i := len(nodes) - 1; i > 0; i-- {
		if live[i] && nodes[i] != nil {
			for _, in := range nodes[i].Inputs {
				live[alias[in]] = true
			}
		}
	}
	// Compact, renumbering inputs.
	out := &Graph{Batch: src.Batch}
	newIndex := make([]int, len(nodes))
	for i, n := range nodes {
		if n == nil || !live[i] {
			continue
		}
		for k, in := range n.Inputs {
			n.Inputs[k] = newIndex[alias[in]]
		}
		newIndex[i] = out.Add(n)
	}
	out.Output = newIndex[alias[src.Output]]
	out.OutputNames = src.OutputNames
	for _, o := range src.Extra {
		out.Extra = append(out.Extra, newIndex[alias[o]])
	}
	if err := out.InferShapes(); err != nil {
		return nil, err
	}
	return out, nil
}

// copyNodes copies src's nodes, and their Conv and Dense attributes, which
// fusion rewrites.
func copyNodes(src *Graph) ([]*Node, error) {
	nodes := make([]*Node, len(src.Nodes))
	for i, n := range src.Nodes {
		if n == nil {
			return nil, fmt.Errorf("%w: node %d is nil", ErrInvalid, i)
		}
		c := *n
		c.Inputs = append([]int(nil), n.Inputs...)
		if n.Conv != nil {
			cv := *n.Conv
			c.Conv = &cv
		}
		if n.Dense != nil {
			d := *n.Dense
			c.Dense = &d
		}
		nodes[i] = &c
	}
	return nodes, nil
}

// fuser is the state of Fuse that the ops' fuse functions see: the nodes
// (copies of the source's, inputs already renumbered) and how many times
// each node's value is used.
type fuser struct {
	nodes []*Node
	uses  []int
	clip  bool // FuseOptions.Clip
}

// foldAffine scales the output channels of a conv or dense layer:
// W'[.., o] = W[.., o]*s[o], b'[o] = b[o]*s[o] + t[o], in float64.
func foldAffine(n *Node, a *Affine) {
	var w, b []float32
	var out int
	if n.Op == OpConv {
		w, b, out = n.Conv.FloatWeight(), n.Conv.Bias, n.Conv.Cout
	} else {
		w, b, out = n.Dense.FloatWeight(), n.Dense.Bias, n.Dense.Out
	}
	nw := make([]float32, len(w))
	for i, v := range w {
		nw[i] = float32(float64(v) * float64(a.Scale[i%out]))
	}
	nb := make([]float32, out)
	for o := range nb {
		var bo float64
		if b != nil {
			bo = float64(b[o])
		}
		nb[o] = float32(bo*float64(a.Scale[o]) + float64(a.Shift[o]))
	}
	if n.Op == OpConv {
		n.Conv.Weight, n.Conv.Bias, n.Conv.Quant = nw, nb, nil // int8 weights no longer match
	} else {
		n.Dense.Weight, n.Dense.Bias, n.Dense.Quant = nw, nb, nil
	}
}
