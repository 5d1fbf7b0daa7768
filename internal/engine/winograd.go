package engine

import "github.com/edge-resnet/edge-resnet/kernels"

// winogradChoice returns the Winograd output tile m for a convolution, or 0
// for im2col+GEMM, under the option (WinogradOff, 2, 4, 6 or, resolved
// from the environment, WinogradAuto).
func winogradChoice(g *kernels.ConvGeom, opt int) int {
	if !kernels.WinogradApplies(g) || opt == WinogradOff {
		return 0
	}
	if opt > 0 {
		return opt
	}
	return winogradPolicy(g)
}

// winogradPolicy is the automatic choice, from whole-network profiles of
// ResNet-18/50 at 1 thread with the AVX-512 GEMM (docs/WINOGRAD.md,
// "Choosing per layer"). In a network the transformed weights
// ((m+2)^2 * Cin * Cout floats, 4x or 1.8x the 3x3 weights) come cold from
// memory once per run and are used once per tile, so a layer with few tiles
// is limited by memory bandwidth, not by multiplies:
//   - weights that fit in cache (CIFAR-size layers, 56x56x64): F(4x4);
//   - otherwise F(4x4) while it has at least winoMinTiles tiles (28x28),
//     F(2x2) while that has (14x14: 49 tiles of 2x2 against 16 of 4x4),
//     and im2col+GEMM below (7x7), whose weights are the smallest.
//
// F(6x6) is never chosen: it saves at most 10% of the multiplies on these
// shapes for twice the error and 1.8x F(4x4)'s weights.
func winogradPolicy(g *kernels.ConvGeom) int {
	tiles := func(m int) int { return ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m) }
	if 36*g.C*g.Cout*4 <= winoCachedWeights || tiles(4) >= winoMinTiles {
		return 4
	}
	if tiles(2) >= winoMinTiles {
		return 2
	}
	return 0
}

const (
	winoCachedWeights = 2 << 20 // bytes of F(4x4) weights that stay cache-resident
	winoMinTiles      = 40      // tiles (uses of each transformed weight) to keep the GEMM compute-bound
)

// winograd8Choice reports whether an int8 convolution runs as the exact
// integer F(2x2, 3x3) (kernels.Winograd8) rather than im2col + GemmU8,
// under the option: WinogradOff, a forced m (2, 4 or 6: int8 has only
// F(2x2), so any of them forces it) or WinogradAuto, the policy of the
// kernel path the plan is compiled for (its int8 GEMM says where Winograd8
// beats it: kernels.Winograd8Preferred), which may depend on whether the
// layer's GEMM would run the path's narrow (7-bit weight) kernel. Both
// give identical outputs, so the choice is speed and memory only.
func winograd8Choice(ks *kernels.Set, g *kernels.ConvGeom, opt int, narrow bool) bool {
	if !kernels.Winograd8Applies(g) || opt == WinogradOff {
		return false
	}
	if opt > 0 {
		return true
	}
	return ks.Winograd8Preferred(g, narrow)
}
