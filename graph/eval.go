package graph

import "fmt"

// Eval runs the graph with plain loops straight from the definitions of the
// operators, in float64 accumulation. It is slow and allocates; it is the
// oracle that the planned, fused, kernel-driven execution is tested against,
// and it runs graphs before and after Fuse alike. input is NHWC, one sample
// or several after each other (any count, whatever g.Batch says); the
// result has the outputs of the samples in the same order.
func (g *Graph) Eval(input []float32) ([]float32, error) {
	outs, err := g.EvalOutputs(input)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// EvalOutputs is Eval for every output of the graph (Outputs order), each
// holding the samples' values after each other.
func (g *Graph) EvalOutputs(input []float32) ([][]float32, error) {
	if err := g.InferShapes(); err != nil {
		return nil, err
	}
	size := g.Input().Size()
	if len(input) == 0 || len(input)%size != 0 {
		return nil, fmt.Errorf("%w: input has %d values, want a multiple of %d (%v)", ErrInvalid, len(input), size, g.Input())
	}
	outs := make([][]float32, 1+len(g.Extra))
	for b := 0; b < len(input); b += size {
		vals, err := g.evalSample(input[b : b+size])
		if err != nil {
			return nil, err
		}
		for k, o := range g.Outputs() {
			outs[k] = append(outs[k], vals[o]...)
		}
	}
	return outs, nil
}

// evalSample returns every node's value for one sample.
func (g *Graph) evalSample(input []float32) ([][]float32, error) {
	vals := make([][]float32, len(g.Nodes))
	vals[0] = append([]float32(nil), input...)
	for i := 1; i < len(g.Nodes); i++ {
		n := g.Nodes[i]
		eval := ops[n.Op].eval
		if eval == nil {
			return nil, g.Errorf(i, "Eval: unsupported op")
		}
		in := make([][]float32, len(n.Inputs))
		for k, j := range n.Inputs {
			in[k] = vals[j]
		}
		out := make([]float32, n.Shape.Size())
		eval(g, n, in, out)
		if n.Relu {
			for j, v := range out {
				if v < 0 {
					out[j] = 0
				}
			}
		}
		if c := n.Clamp; c != nil {
			for j, v := range out {
				out[j] = min(max(v, c.Min), c.Max)
			}
		}
		vals[i] = out
	}
	return vals, nil
}
