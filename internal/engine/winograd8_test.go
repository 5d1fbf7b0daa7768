package engine

import (
	"testing"

	"github.com/edge-resnet/edge-resnet/kernels"
)

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
	for _, ks := range kernels.Sets() {
		for _, narrow := range []bool{false, true} {
			checkWinograd8Choice(t, ks, narrow, []kernels.ConvGeom{g3(56, 64), g3(28, 128), g3(14, 256), g3(7, 512), g3(7, 1827)}, []kernels.ConvGeom{s2, wide})
		}
	}
}

// checkWinograd8Choice checks the options and the path's policy on
// eligible and ineligible layers.
func checkWinograd8Choice(t *testing.T, ks *kernels.Set, narrow bool, eligible, ineligible []kernels.ConvGeom) {
	t.Helper()
	path := ks.Name()
	for _, g := range eligible {
		if winograd8Choice(ks, &g, WinogradOff, narrow) {
			t.Errorf("%s %dx%dx%d: Winograd8 with WinogradOff", path, g.H, g.W, g.C)
		}
		for _, m := range []int{2, 4, 6} {
			if !winograd8Choice(ks, &g, m, narrow) {
				t.Errorf("%s %dx%dx%d: no Winograd8 forced by %d", path, g.H, g.W, g.C, m)
			}
		}
		auto := winograd8Choice(ks, &g, WinogradAuto, narrow)
		want := path == "generic" || path == "avx2" || path == "avx512"
		if narrow && g.C >= 512 {
			want = false // the narrow GemmU8 wins at 7x7x512
		}
		if path != "avx512vnni" && auto != want {
			t.Errorf("%s %dx%dx%d narrow=%v: auto chose %v", path, g.H, g.W, g.C, narrow, auto)
		}
		if path == "avx512vnni" && auto != winograd8Choice(ks, &g, WinogradAuto, !narrow) {
			t.Errorf("avx512vnni %dx%dx%d: the choice depends on narrow weights", g.H, g.W, g.C)
		}
	}
	for _, g := range ineligible {
		for _, opt := range []int{WinogradAuto, 2} {
			if winograd8Choice(ks, &g, opt, narrow) {
				t.Errorf("%s %+v: Winograd8 chosen for an ineligible layer (option %d)", path, g, opt)
			}
		}
	}
}
