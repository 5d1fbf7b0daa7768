package kernels

// The assembly of this package is written by generators in the asm module.
// This file has no build constraints so that `go generate ./kernels`
// rewrites every .s byte for byte whatever the host's GOARCH (a directive in
// gemm_arm64.go would only run on arm64 hosts).

//go:generate go -C ../asm run ./arm64 -out ../kernels/gemm_arm64.s -out8 ../kernels/gemm8_arm64.s
