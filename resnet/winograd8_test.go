package resnet

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/quant"
)

// TestInt8Winograd quantizes the int8 test networks and runs them on every
// kernel path this CPU has with Winograd8 forced on, off and chosen by the
// path's policy, at 1, 2 and 3 threads: every node's value (all of them
// kept) must be identical, since Winograd8 is exact. The ResNets' small
// layers split output channels across threads, the CIFAR net's 32x32
// layers (256 tiles) split tiles.
func TestInt8Winograd(t *testing.T) {
	defer kernels.Select(kernels.PathName())
	for _, tc := range int8Cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if testing.Short() && !cfg.CIFAR {
				cfg.Height, cfg.Width = 16, 16
			}
			g, err := Build(cfg, HeInit(5))
			if err != nil {
				t.Fatal(err)
			}
			q, _ := quantizeForTest(t, g, 3, QuantizeOptions{Method: quant.MinMax, Workers: 2})
			in := make([]float32, g.Input().Size())
			calibInput(2000, in)
			for _, path := range kernels.Available() {
				if err := kernels.Select(path); err != nil {
					t.Fatal(err)
				}
				var ref []byte
				for _, wino := range []int{WinogradOff, 2, WinogradAuto} {
					p, err := CompileWith(q, CompileOptions{Precision: Int8, Winograd: wino, KeepValues: true})
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
func checkWinograd8Steps(t *testing.T, p *Plan, wino int) {
	t.Helper()
	eligible, wg := 0, 0
	for i := range p.steps {
		st := &p.steps[i]
		if st.op != OpConv || !st.int8 {
			continue
		}
		if kernels.Winograd8Applies(&st.conv) {
			eligible++
		}
		if st.wino8 != nil {
			wg++
		}
	}
	names := 0
	for _, s := range p.Steps() {
		if strings.HasPrefix(s.Kernel, "int8 winograd8-f2/"+kernels.Winograd8Impl()) {
			names++
		}
	}
	if names != wg {
		t.Errorf("%s: %d steps named winograd8, %d run it: %v", kernels.PathName(), names, wg, p.Steps())
	}
	switch {
	case eligible == 0:
		t.Fatalf("no 3x3 stride-1 int8 convolutions: %v", p.Steps())
	case wino == 2 && wg != eligible:
		t.Errorf("%s forced: %d of %d eligible convolutions run Winograd8", kernels.PathName(), wg, eligible)
	case wino == WinogradOff && wg != 0:
		t.Errorf("%s off: %d convolutions run Winograd8", kernels.PathName(), wg)
	}
}

// runInt8Values runs p and returns every node's value as bytes (uint8
// values as they are, float32 values by their bits), checking that Run
// allocates nothing if allocs is set.
func runInt8Values(t *testing.T, p *Plan, threads int, in []float32, allocs bool) []byte {
	t.Helper()
	e, err := NewExec(p, threads)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Run(in); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i, n := range p.Graph.Nodes {
		if p.u8[i] {
			all = append(all, e.view8(p.offsets[i], n.Shape)...)
		} else {
			all = append(all, asBytes(e.Value(i))...)
		}
	}
	if allocs {
		if a := testing.AllocsPerRun(3, func() { e.Run(nil) }); a != 0 {
			t.Errorf("%s: int8 Winograd Run allocates %v times", kernels.PathName(), a)
		}
	}
	return all
}

// TestWinograd8Choice checks the option handling around the policy: off
// and non-3x3-stride-1 layers (or too many input channels for an exact
// int32 accumulator) never run Winograd8, a forced m always does
// otherwise, and the policy is off on paths without a faster Winograd8.
func TestWinograd8Choice(t *testing.T) {
	g3 := func(hw, c int) kernels.ConvGeom {
		return kernels.ConvGeom{H: hw, W: hw, C: c, OH: hw, OW: hw, Cout: c, KH: 3, KW: 3,
			StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadTop: 1, PadLeft: 1}
	}
	s2 := g3(56, 64)
	s2.StrideH, s2.StrideW, s2.OH, s2.OW = 2, 2, 28, 28
	wide := g3(7, 1828)
	for _, pn := range []string{"generic", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "avx2/narrow", "avx512/narrow"} {
		path, narrow := strings.CutSuffix(pn, "/narrow")
		for _, g := range []kernels.ConvGeom{g3(56, 64), g3(28, 128), g3(14, 256), g3(7, 512), g3(7, 1827)} {
			if winograd8Choice(path, &g, WinogradOff, narrow) {
				t.Errorf("%s %dx%dx%d: Winograd8 with WinogradOff", path, g.H, g.W, g.C)
			}
			for _, m := range []int{2, 4, 6} {
				if !winograd8Choice(path, &g, m, narrow) {
					t.Errorf("%s %dx%dx%d: no Winograd8 forced by %d", path, g.H, g.W, g.C, m)
				}
			}
			auto := winograd8Choice(path, &g, WinogradAuto, narrow)
			want := path == "generic" || path == "avx2" || path == "avx512"
			if narrow && g.C >= 512 {
				want = false // the narrow GemmU8 wins at 7x7x512
			}
			if (path != "avx512vnni") && auto != want {
				t.Errorf("%s %dx%dx%d narrow=%v: auto chose %v", path, g.H, g.W, g.C, narrow, auto)
			}
			if path == "avx512vnni" && auto != winograd8Choice(path, &g, WinogradAuto, !narrow) {
				t.Errorf("avx512vnni %dx%dx%d: the choice depends on narrow weights", g.H, g.W, g.C)
			}
		}
		for _, g := range []kernels.ConvGeom{s2, wide} {
			for _, opt := range []int{WinogradAuto, 2} {
				if winograd8Choice(path, &g, opt, narrow) {
					t.Errorf("%s %+v: Winograd8 chosen for an ineligible layer (option %d)", path, g, opt)
				}
			}
		}
	}
}
