package resnet

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

// winogradPolicy is the automatic choice: F(4x4) everywhere. Measured on
// ResNet's layers (docs/WINOGRAD.md), F(6x6) saves at most 10% of the GEMM
// work (none at 32, 16, 14; it loses at 8 and 7) for twice the error and
// 1.8x the weight memory, and F(2x2) does 1.8x F(4x4)'s GEMM work; F(4x4)
// stays ahead of im2col once GEMMs are 30-60x faster if the transforms are
// vectorized. Weight-bandwidth-bound layers (7x7x512: 4 tiles) are the
// candidates for a per-layer exception once the asm GEMMs are measured.
func winogradPolicy(*kernels.ConvGeom) int {
	return 4
}
