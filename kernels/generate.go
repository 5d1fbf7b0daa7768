package kernels

// The assembly of this package is written by generators in the asm module,
// one directive per file, all here: this file has no build constraints so
// that `go generate ./kernels` rewrites every .s byte for byte whatever the
// host's GOARCH (a directive in gemm_arm64.go would only run on arm64
// hosts). asm/amd64's TestGenerateDirectives checks that the amd64 lines
// match the generator's list of files (asmFiles in asm/amd64/files.go) and
// that no other file of this package has a directive. See asm/README.md.

//go:generate go -C ../asm run ./amd64 -out ../kernels/gemm_amd64.s
//go:generate go -C ../asm run ./amd64 -int8 -out ../kernels/gemm8_amd64.s
//go:generate go -C ../asm run ./amd64 -wino -out ../kernels/winograd_amd64.s
//go:generate go -C ../asm run ./amd64 -wino8 -out ../kernels/winograd8_amd64.s
//go:generate go -C ../asm run ./amd64 -kernelbench -out ../kernels/kernelbench_amd64.s
//go:generate go -C ../asm run ./amd64 -depthwise -out ../kernels/depthwise_amd64.s
//go:generate go -C ../asm run ./amd64 -groupconv -out ../kernels/groupconv_amd64.s
//go:generate go -C ../asm run ./amd64 -batchnorm -out ../kernels/batchnorm_amd64.s
//go:generate go -C ../asm run ./arm64 -out ../kernels/gemm_arm64.s -out8 ../kernels/gemm8_arm64.s -outdw ../kernels/depthwise_arm64.s -outdw8 ../kernels/depthwise8_arm64.s -outgc ../kernels/groupconv_arm64.s -outwino ../kernels/winograd_arm64.s
