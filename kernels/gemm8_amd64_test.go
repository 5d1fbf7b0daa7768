//go:build gc && !purego

package kernels

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// The int8 kernels must be offered wherever cpuid says the CPU can run
// them; forEachGemm8 fails if one was not exercised.
func init() {
	if hasAVX2() {
		wantGemm8 = append(wantGemm8, gemm8AVX2.name)
	}
	if hasAVXVNNI() {
		wantGemm8 = append(wantGemm8, gemm8AVXVNNI.name)
		wantPaths = append(wantPaths, "avxvnni")
	}
	if hasAVX512VNNI() {
		wantGemm8 = append(wantGemm8, gemm8VNNI512.name)
		wantPaths = append(wantPaths, "avx512vnni")
	}
}

// TestGemm8EpiLayout: the offsets the generator hard-codes (epi* in
// asm/amd64/gemm8.go) are those of the Go struct.
func TestGemm8EpiLayout(t *testing.T) {
	var e gemm8Epi
	base := uintptr(unsafe.Pointer(&e))
	for _, f := range []struct {
		name string
		p    unsafe.Pointer
		want uintptr
	}{
		{"corr", unsafe.Pointer(&e.corr), 0}, {"scale", unsafe.Pointer(&e.scale), 256},
		{"zeroOut", unsafe.Pointer(&e.zeroOut), 512}, {"lo", unsafe.Pointer(&e.lo), 576},
		{"resZero", unsafe.Pointer(&e.resZero), 640}, {"resScale", unsafe.Pointer(&e.resScale), 704},
		{"hi", unsafe.Pointer(&e.hi), 768}, {"negHi", unsafe.Pointer(&e.negHi), 832},
	} {
		if got := uintptr(f.p) - base; got != f.want {
			t.Errorf("gemm8Epi.%s at offset %d, the kernels read it at %d", f.name, got, f.want)
		}
	}
}

// TestGemmU8UBSWBound shows where VPMADDUBSW breaks our contract and where
// it holds. Its int16 sum of two products saturates: with activations 255
// and weights 127 each pair is 64770 > 32767, so the kernel must differ
// from the definition; with weights in [-64, 63] a pair lies in
// [-32640, 32130], inside int16, and it must be bit-exact.
func TestGemmU8UBSWBound(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	saved := gemm8
	defer func() { gemm8 = saved }()
	gemm8 = gemm8AVX2UBSW

	const m, n, k = 3, 16, 4
	a := make([]uint8, m*k)
	for i := range a {
		a[i] = 255
	}
	w := make([]int8, k*n)
	for i := range w {
		w[i] = 127
	}
	rq := &Requant{Scale: make([]float32, n)}
	for j := range rq.Scale {
		rq.Scale[j] = 1e-3 // acc 129540 -> 130 exactly; saturated pairs give 66
	}
	pb := PackB8(w, k, n)
	c := make([]uint8, m*n)
	GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
	if want := refGemmU8(m, n, k, a, k, w, rq); c[0] == want[0] {
		t.Fatalf("worst case: VPMADDUBSW gave the exact %d; the saturation this test documents did not happen", c[0])
	}

	r := rand.New(rand.NewPCG(6, 4))
	for _, mnk := range [][3]int{{1, 16, 4}, {5, 16, 64}, {6, 17, 132}, {11, 33, 1152}, {4, 16, 4608}} {
		m, n, k := mnk[0], mnk[1], mnk[2]
		for _, extreme := range []bool{false, true} {
			a := make([]uint8, m*k)
			w := make([]int8, k*n)
			for i := range a {
				a[i] = uint8(r.IntN(256))
				if extreme {
					a[i] = 255
				}
			}
			for i := range w {
				w[i] = int8(r.IntN(128) - 64)
				if extreme {
					w[i] = int8([]int{-64, 63}[i%2])
				}
			}
			rq := &Requant{ZeroA: 128, ZeroOut: 128, Scale: make([]float32, n)}
			for j := range rq.Scale {
				rq.Scale[j] = 1e-4
			}
			pb := PackB8(w, k, n)
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
			want := refGemmU8(m, n, k, a, k, w, rq)
			for i := range c {
				if c[i] != want[i] {
					t.Fatalf("weights in [-64, 63], m=%d n=%d k=%d extreme=%v: c[%d] = %d, want %d", m, n, k, extreme, i, c[i], want[i])
				}
			}
		}
	}
}
