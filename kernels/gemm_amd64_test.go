//go:build gc && !purego

package kernels

import (
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// The asm paths must be offered wherever cpuid says the CPU can run them;
// forEachGemm fails if one was not exercised.
func init() {
	if hasAVX2() {
		wantPaths = append(wantPaths, "avx2")
	}
	if hasAVX512() {
		wantPaths = append(wantPaths, "avx512")
		wantNarrowGemm = true
	}
	for name, s := range oldPathsAMD64() {
		oldPaths[name] = s
	}
}

// add8At is the int8 add registered at an ISA level. add8Call makes a new
// closure at each call, with code of its own where it is inlined: only the
// registration's own value compares equal.
func add8At(level string) func(dst, a, b *uint8, n int, p *Add8Params) {
	for _, im := range add8Reg.impls {
		if im.level == level {
			return im.v.add
		}
	}
	return nil
}

// oldPathsAMD64 are the amd64 paths as the path table before Sets had
// them: the struct literals of gemm_amd64.go and gemm8_amd64.go (the int8
// add wrapping add8AVX2 or add8AVX512, i.e. the avx2 or avx512
// registration), the Winograd transforms of the paths registerWino and
// registerWino8 named, each under the CPU check it had there.
func oldPathsAMD64() map[string]*Set {
	wino := winoGeneric
	if cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) {
		wino = winoAVX2
	}
	wino8 := func(impl *wino8Impl, ids ...cpuid.FeatureID) *wino8Impl {
		if cpuid.CPU.Supports(ids...) {
			return impl
		}
		return wino8Generic
	}
	avx2 := Set{gemm: gemmAVX2, gemm8: gemm8AVX2, wino: wino, wino8: wino8(wino8AVX2, cpuid.AVX2),
		maxPool: maxPoolImpl{maxWindowAVX2, 8}, epilogue: epilogueImpl{apply: epilogueAVX2, lanes: 8},
		maxPool8: maxPool8Impl{maxWindow8AVX2, 32}, quant: quantImpl{quantizeAVX2, dequantizeAVX2, 32},
		add8: add8Impl{add8At("avx2"), 32}, depthwise: depthwiseAVX2, groupconv: groupConvAVX2, clamp: clampAVX2}
	avxvnni := avx2
	avxvnni.gemm8 = gemm8AVXVNNI
	// The AVX-512 Winograd transforms came after the path table.
	wino512 := wino
	if hasAVX512() {
		wino512 = winoAVX512
	}
	avx512 := Set{gemm: gemmAVX512, gemm8: gemm8AVX2, wino: wino512,
		wino8:   wino8(wino8AVX512BW, cpuid.AVX512F, cpuid.AVX512BW),
		maxPool: maxPoolImpl{maxWindowAVX512, 16}, epilogue: epilogueImpl{apply: epilogueAVX512, lanes: 16},
		maxPool8: maxPool8Impl{maxWindow8AVX512, 64}, quant: quantImpl{quantizeAVX512, dequantizeAVX512, 64},
		add8: add8Impl{add8At("avx512"), 64}, depthwise: depthwiseAVX512, groupconv: groupConvAVX512, clamp: clampAVX512}
	avx512vnni := avx512
	avx512vnni.gemm8 = gemm8VNNI512
	avx512vnni.wino8 = wino8(wino8AVX512VNNI, cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VNNI)
	avx512vnni.depthwise = depthwiseAVX512VNNI
	amx := avx512vnni
	amx.gemm8 = gemm8AMX
	return map[string]*Set{"avx2": &avx2, "avxvnni": &avxvnni, "avx512": &avx512, "avx512vnni": &avx512vnni, "amx": &amx}
}

// TestSelectAVX checks what each EDGE_RESNET_KERNELS setting gives: the
// path it names where the CPU runs it, with that path's kernels; the best
// path, with the setting refused (ErrPath), for a path this CPU lacks or
// another GOARCH's; the VNNI paths preferred where the CPU has VNNI.
func TestSelectAVX(t *testing.T) {
	paths := []struct {
		ok                bool
		name, gemm, gemm8 string
	}{{hasAVX2(), "avx2", gemmAVX2.name, gemm8AVX2.name}, {hasAVXVNNI(), "avxvnni", gemmAVX2.name, gemm8AVXVNNI.name},
		{hasAVX512(), "avx512", gemmAVX512.name, gemm8AVX2.name}, {hasAVX512VNNI(), "avx512vnni", gemmAVX512.name, gemm8VNNI512.name},
		{hasAMX(), "amx", gemmAVX512.name, gemm8AMX.name}}
	best, bestGemm, best8 := "generic", gemmGeneric.name, gemm8Generic.name
	for _, p := range paths { // by rank
		if p.ok {
			best, bestGemm, best8 = p.name, p.gemm, p.gemm8
		}
	}
	cases := []envCase{
		{"generic", "generic", gemmGeneric.name, gemm8Generic.name, false},
		{"", best, bestGemm, best8, false},
		{"neon", best, bestGemm, best8, true},
		{"no-such-path", best, bestGemm, best8, true},
	}
	for _, p := range paths {
		if p.ok {
			cases = append(cases, envCase{p.name, p.name, p.gemm, p.gemm8, false})
		} else {
			cases = append(cases, envCase{p.name, best, bestGemm, best8, true})
		}
	}
	checkEnvCases(t, cases)
}
