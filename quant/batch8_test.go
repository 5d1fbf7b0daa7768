package quant

import (
	"bytes"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestInt8Batch runs quantized nets as one batch of 4 and each sample
// alone, with Winograd8 off and forced, at 1 and 2 threads: every node's
// value must be the same bytes (int8 is exact, and the batch only groups
// rows of the same GEMMs).
func TestInt8Batch(t *testing.T) {
	const batch = 4
	for _, tc := range int8Cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if !cfg.CIFAR {
				cfg.Height, cfg.Width = 16, 16
			}
			g, err := resnet.Build(cfg, resnet.HeInit(7))
			if err != nil {
				t.Fatal(err)
			}
			q, _ := quantizeForTest(t, g, 3, QuantizeOptions{Method: MinMax, Workers: 2})
			size := g.Input().Size()
			in := make([]float32, batch*size)
			for b := range batch {
				calibInput(3000+b, in[b*size:(b+1)*size])
			}
			for _, wino := range []int{engine.WinogradOff, 2} {
				var single [][]byte
				for b := range batch {
					p, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, Winograd: wino, KeepValues: true})
					if err != nil {
						t.Fatal(err)
					}
					single = append(single, runInt8Values(t, p, 1, in[b*size:(b+1)*size], false))
				}
				p, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, Winograd: wino, KeepValues: true, Batch: batch})
				if err != nil {
					t.Fatal(err)
				}
				for _, threads := range []int{1, 2} {
					e, _ := engine.NewExec(p, threads)
					if _, err := e.Run(in); err != nil {
						t.Fatal(err)
					}
					for i := range p.Graph.Nodes {
						got := e.ValueBytes(i)
						per := len(got) / batch
						for b := range batch {
							if !bytes.Equal(got[b*per:(b+1)*per], nodeValue(single[b], p, i)) {
								t.Fatalf("winograd %d, %d threads: node %d %q sample %d differs from its single run", wino, threads, i, p.Graph.Nodes[i].Name, b)
							}
						}
					}
					e.Close()
				}
			}
		})
	}
}

// nodeValue cuts node i's bytes out of all, the concatenation of every
// node's value of one single-sample run (runInt8Values).
func nodeValue(all []byte, p *engine.Plan, i int) []byte {
	off := 0
	for j := range i {
		off += valueSize(p, j)
	}
	return all[off : off+valueSize(p, i)]
}

func valueSize(p *engine.Plan, j int) int {
	n := p.Graph.Nodes[j].Shape.Size()
	if !p.IsUint8(j) {
		n *= 4
	}
	return n
}
