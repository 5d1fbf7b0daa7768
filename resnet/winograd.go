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

// winogradPolicy is the automatic choice; see docs/WINOGRAD.md for the
// measurements behind it.
func winogradPolicy(g *kernels.ConvGeom) int {
	return 4
}
