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
// kernel path the plan is compiled for, which may depend on whether the
// layer's GEMM would run the path's narrow (7-bit weight) kernel. Both
// give identical outputs, so the choice is speed and memory only.
func winograd8Choice(path string, g *kernels.ConvGeom, opt int, narrow bool) bool {
	if !kernels.Winograd8Applies(g) || opt == WinogradOff {
		return false
	}
	if opt > 0 {
		return true
	}
	return winograd8Policy(path, g, narrow)
}

// winograd8Policy is the automatic choice per path, from the layer
// benchmarks and whole-model profiles of ResNet-18/50 int8 at 224 in
// docs/INT8.md ("In the plan"):
//   - avx2, avx512 (whose GemmU8 is the exact int16 AVX2 kernel) and
//     generic: Winograd8 everywhere, 1.5-5x faster than their GemmU8 on
//     every ResNet layer, 7x7x512 included. With 7-bit weights (narrow:
//     GemmU8 runs VPMADDUBSW) Winograd8 still wins up to 14x14x256
//     (0.76-0.89 ms against 1.13-1.37 ms per layer in the ResNet-18/50
//     profiles, docs/INT8.md) but loses at 7x7x512 (1.36-1.45 against
//     1.17-1.39 ms), where its 8 MiB of U meet only 16 tiles;
//   - avx512vnni: VPDPBUSD does twice the multiplies of Winograd's
//     VPDPWSSD per instruction, so Winograd8's 2.25x fewer multiplies win
//     only while U (32 bytes per input-output channel pair against 9 for
//     the int8 weights) stays in cache and the channels fill the 32
//     lanes. In the
//     models 56x56x64 (128 KiB of U) gains about 10%; 28x28x128 (512 KiB,
//     1.1x faster warm in the layer benchmark) is 10-25% slower, the
//     deeper layers up to 1.9x;
//   - avxvnni and the arm64 paths: off. AVX-VNNI's GemmU8 has the same 2x
//     multiplies per instruction against an AVX2 Winograd8 and ties or
//     wins on every ResNet layer (forcing Winograd8 costs ResNet-18 20%
//     of its 3x3 time); arm64 has only the Go Winograd8, against NEON
//     GemmU8 kernels.
func winograd8Policy(path string, g *kernels.ConvGeom, narrow bool) bool {
	switch path {
	case "generic", "avx2", "avx512":
		return !narrow || 32*g.C*g.Cout <= wino8NarrowMaxU
	case "avx512vnni":
		return g.C >= 32 && g.Cout >= 32 && 32*g.C*g.Cout <= wino8VNNIMaxU
	}
	return false
}

// wino8VNNIMaxU is the most bytes of Winograd8 weights (U) for which it
// beats the VNNI GemmU8 in a whole model: 56x56x64's 128 KiB.
const wino8VNNIMaxU = 128 << 10

// wino8NarrowMaxU is the most bytes of Winograd8 weights for which it
// beats the narrow AVX2 GemmU8: 14x14x256's 2 MiB.
const wino8NarrowMaxU = 2 << 20
