package grad

import (
	"fmt"
	"math"
	"testing"
)

// TestTransposeRows checks transposeRows against the definition on sizes
// around its 8-row passes, with a row stride and padded destination rows
// (zeros written) and poison past them (left alone).
func TestTransposeRows(t *testing.T) {
	for _, m := range []int{0, 1, 7, 8, 9, 16, 23} {
		for _, n := range []int{1, 3, 16} {
			ld, r := n+2, m+3
			src := fdRandom(uint64(m*31+n), m*ld, -1, 1)
			dst := make([]float32, n*r+4)
			for i := range dst {
				dst[i] = float32(math.NaN())
			}
			transposeRows(dst, r, src, ld, m, n)
			for i := range n {
				for j := range r {
					want := float32(0)
					if j < m {
						want = src[j*ld+i]
					}
					if got := dst[i*r+j]; got != want {
						t.Fatalf("m %d n %d: dst[%d][%d] = %v, want %v", m, n, i, j, got, want)
					}
				}
			}
			for _, v := range dst[n*r:] {
				if v == v {
					t.Fatalf("m %d n %d: wrote past the last row", m, n)
				}
			}
		}
	}
}

// BenchmarkTransposeRows: dY of a 28x28x16 layer at batch 128 into dW's
// operand layout.
func BenchmarkTransposeRows(b *testing.B) {
	for _, c := range []int{16, 64} {
		m := 128 * 28 * 28 * 16 / c
		src := make([]float32, m*c)
		dst := make([]float32, c*m)
		b.Run(fmt.Sprintf("%dx%d", m, c), func(b *testing.B) {
			b.SetBytes(int64(8 * len(src)))
			for range b.N {
				transposeRows(dst, m, src, c, m, c)
			}
		})
	}
}
