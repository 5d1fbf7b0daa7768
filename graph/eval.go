package graph

import "fmt"

// Eval runs the graph with plain loops straight from the definitions of the
// operators, in float64 accumulation. It is slow and allocates; it is the
// oracle that the planned, fused, kernel-driven execution is tested against,
// and it runs graphs before and after Fuse alike. input is NHWC.
func (g *Graph) Eval(input []float32) ([]float32, error) {
	if err := g.InferShapes(); err != nil {
		return nil, err
	}
	if len(input) != g.Input().Size() {
		return nil, fmt.Errorf("%w: input has %d values, want %d (%v)", ErrInvalid, len(input), g.Input().Size(), g.Input())
	}
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
		vals[i] = out
	}
	return vals[g.Output], nil
}
