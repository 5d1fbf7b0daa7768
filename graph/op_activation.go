package graph

import (
	"fmt"
	"math"
)

// The activations beyond ReLU: Sigmoid, HardSigmoid and Clip (ReLU6).

// Clip bounds values to [Min, Max]; an absent bound is -Inf or +Inf.
type Clip struct{ Min, Max float32 }

// HardSigmoid is clamp(Alpha*x + Beta, 0, 1) (ONNX defaults 0.2, 0.5;
// PyTorch's Hardsigmoid is 1/6, 0.5).
type HardSigmoid struct{ Alpha, Beta float32 }

func init() {
	register(OpSigmoid, opDef{name: "Sigmoid", infer: inferUnary, eval: evalSigmoid})
	register(OpHardSigmoid, opDef{name: "HardSigmoid", infer: inferHardSigmoid, eval: evalHardSigmoid,
		attrKey: "hard_sigmoid", encode: encodeHardSigmoid, decode: decodeHardSigmoid})
	register(OpClip, opDef{name: "Clip", infer: inferClip, eval: evalClip, fuse: fuseClip, describe: func(_ *Graph, n *Node) string {
		return fmt.Sprintf(" [%v, %v]", n.Clip.Min, n.Clip.Max)
	},
		attrKey: "clip", encode: encodeClip, decode: decodeClip})
}

func evalSigmoid(_ *Graph, _ *Node, in [][]float32, out []float32) {
	for j, v := range in[0] {
		out[j] = float32(1 / (1 + math.Exp(-float64(v))))
	}
}

func inferHardSigmoid(g *Graph, i int) (Shape, error) {
	h := g.Nodes[i].HardSigmoid
	if err := g.want(i, 1, h != nil); err != nil {
		return Shape{}, err
	}
	if !finite(h.Alpha) || !finite(h.Beta) {
		return Shape{}, g.Errorf(i, "alpha %v and beta %v must be finite", h.Alpha, h.Beta)
	}
	return inferUnary(g, i)
}

func evalHardSigmoid(_ *Graph, n *Node, in [][]float32, out []float32) {
	h := n.HardSigmoid
	for j, v := range in[0] {
		out[j] = float32(min(max(float64(h.Alpha)*float64(v)+float64(h.Beta), 0), 1))
	}
}

func encodeHardSigmoid(n *Node, w AttrWriter) {
	w.Float("alpha", n.HardSigmoid.Alpha)
	w.Float("beta", n.HardSigmoid.Beta)
}

func decodeHardSigmoid(n *Node, r AttrReader) {
	n.HardSigmoid = &HardSigmoid{Alpha: r.Float("alpha"), Beta: r.Float("beta")}
}

func inferClip(g *Graph, i int) (Shape, error) {
	c := g.Nodes[i].Clip
	if err := g.want(i, 1, c != nil); err != nil {
		return Shape{}, err
	}
	if !c.interval() {
		return Shape{}, g.Errorf(i, "bounds [%v, %v] are not an interval", c.Min, c.Max)
	}
	return inferUnary(g, i)
}

// interval reports whether c's bounds are numbers, Min <= Max, and neither
// is an infinity on the wrong side.
func (c *Clip) interval() bool {
	return c.Min == c.Min && c.Max == c.Max && c.Min <= c.Max && !math.IsInf(float64(c.Min), 1) && !math.IsInf(float64(c.Max), -1)
}

// checkClamp checks a node's fused Clip (Node.Clamp), if any.
func checkClamp(n *Node) error {
	c := n.Clamp
	switch {
	case c == nil:
		return nil
	case !hasActivation(n.Op):
		return fmt.Errorf("%s cannot have a fused clip", n.Op)
	case !c.interval():
		return fmt.Errorf("fused clip bounds [%v, %v] are not an interval", c.Min, c.Max)
	}
	return nil
}

func evalClip(_ *Graph, n *Node, in [][]float32, out []float32) {
	c := n.Clip
	for j, v := range in[0] {
		out[j] = min(max(v, c.Min), c.Max)
	}
}

// Clip's bounds are written only when finite ("min", "max"); an absent
// one is infinite.
func encodeClip(n *Node, w AttrWriter) {
	c := n.Clip
	if finite(c.Min) {
		w.Float("min", c.Min)
	}
	if finite(c.Max) {
		w.Float("max", c.Max)
	}
	w.Bool("no_min", !finite(c.Min))
	w.Bool("no_max", !finite(c.Max))
}

func decodeClip(n *Node, r AttrReader) {
	c := &Clip{Min: r.Float("min"), Max: r.Float("max")}
	if r.Bool("no_min") {
		c.Min = float32(math.Inf(-1))
	}
	if r.Bool("no_max") {
		c.Max = float32(math.Inf(1))
	}
	n.Clip = c
}

// fuseClip: a Clip(0, +Inf) is a ReLU, and fuses as one. With
// FuseOptions.Clip, any other Clip becomes the Clamp of the Conv, Dense,
// Add or Affine before it (after its Relu, if any) when that node is used
// only by the Clip and has no Clamp yet, and neither value is quantized:
// the Clip of an int8 value stays an op with its own output parameters
// (an int8 plan runs it in float32 between conversions), which the fused
// node could not keep.
func fuseClip(f *fuser, i int) int {
	n := f.nodes[i]
	if c := n.Clip; c.Min == 0 && math.IsInf(float64(c.Max), 1) {
		if p := fuseRelu(f, i); p >= 0 {
			return p
		}
	}
	p := n.Inputs[0]
	pn := f.nodes[p]
	if !f.clip || n.Quant != nil || pn.Quant != nil || !f.activates(p) {
		return -1
	}
	c := *n.Clip
	pn.Clamp = &c
	return p
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
