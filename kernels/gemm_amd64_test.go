//go:build gc && !purego

package kernels

// The asm paths must be offered wherever cpuid says the CPU can run them;
// forEachGemm fails if one was not exercised.
func init() {
	if hasAVX2() {
		wantPaths = append(wantPaths, "avx2")
	}
	if hasAVX512() {
		wantPaths = append(wantPaths, "avx512")
	}
}
