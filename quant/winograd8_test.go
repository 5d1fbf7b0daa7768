package quant

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestInt8Winograd quantizes the int8 test networks and runs them on every
// kernel path this CPU has with Winograd8 forced on, off and chosen by the
// path's policy, at 1, 2 and 3 threads: every node's value (all of them
// kept) must be identical, since Winograd8 is exact. The ResNets' small
// layers split output channels across threads, the CIFAR net's 32x32
// layers (256 tiles) split tiles.
func TestInt8Winograd(t *testing.T) {
	for _, tc := range int8Cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if testing.Short() && !cfg.CIFAR {
				cfg.Height, cfg.Width = 16, 16
			}
			g, err := resnet.Build(cfg, resnet.HeInit(5))
			if err != nil {
				t.Fatal(err)
			}
			q, _ := quantizeForTest(t, g, 3, QuantizeOptions{Method: MinMax, Workers: 2})
			in := make([]float32, g.Input().Size())
			calibInput(2000, in)
			for _, ks := range kernels.Sets() {
				path := ks.Name()
				var ref []byte
				for _, wino := range []int{engine.WinogradOff, 2, engine.WinogradAuto} {
					p, err := engine.CompileWith(q, engine.CompileOptions{Precision: engine.Int8, Winograd: wino, KeepValues: true, Kernels: ks})
					if err != nil {
						t.Fatal(err)
					}
					checkWinograd8Steps(t, p, wino)
					for _, threads := range []int{1, 2, 3} {
						name := fmt.Sprintf("%s winograd=%d threads=%d", path, wino, threads)
						got := runInt8Values(t, p, threads, in, threads == 2 && wino == 2)
						if ref == nil {
							ref = got
						} else if !bytes.Equal(got, ref) {
							t.Fatalf("%s: values differ from winograd off at 1 thread", name)
						}
					}
				}
			}
		})
	}
}

// checkWinograd8Steps checks that a plan runs its 3x3 stride-1 int8
// convolutions as Winograd8 when forced (wino 2) and none when off.
func checkWinograd8Steps(t *testing.T, p *engine.Plan, wino int) {
	t.Helper()
	eligible, wg, names := 0, 0, 0
	for _, s := range p.Steps() {
		if s.Winograd8Eligible {
			eligible++
		}
		if s.Winograd8 {
			wg++
		}
		if strings.HasPrefix(s.Kernel, "int8 winograd8-f2/"+p.Kernels.Winograd8Impl()) {
			names++
		}
	}
	if names != wg {
		t.Errorf("%s: %d steps named winograd8, %d run it: %v", p.Kernels.Name(), names, wg, p.Steps())
	}
	switch {
	case eligible == 0:
		t.Fatalf("no 3x3 stride-1 int8 convolutions: %v", p.Steps())
	case wino == 2 && wg != eligible:
		t.Errorf("%s forced: %d of %d eligible convolutions run Winograd8", p.Kernels.Name(), wg, eligible)
	case wino == engine.WinogradOff && wg != 0:
		t.Errorf("%s off: %d convolutions run Winograd8", p.Kernels.Name(), wg)
	}
}

// runInt8Values runs p and returns every node's value as bytes (uint8
// values as they are, float32 values by their bits), checking that Run
// allocates nothing if allocs is set.
func runInt8Values(t *testing.T, p *engine.Plan, threads int, in []float32, allocs bool) []byte {
	t.Helper()
	e, err := engine.NewExec(p, threads)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Run(in); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i := range p.Graph.Nodes {
		all = append(all, e.ValueBytes(i)...)
	}
	if allocs {
		if a := testing.AllocsPerRun(3, func() { e.Run(nil) }); a != 0 {
			t.Errorf("%s: int8 Winograd Run allocates %v times", p.Kernels.Name(), a)
		}
	}
	return all
}
