package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bnCase is one shape of the BatchNorm passes: pixels rows of k channels,
// ld apart.
type bnCase struct{ pixels, k, ld int }

func bnCases() []bnCase {
	var cs []bnCase
	for _, k := range []int{1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 40, 64, 65} {
		for _, pad := range []int{0, 3} {
			for _, pixels := range []int{1, 2, 5, 17} {
				cs = append(cs, bnCase{pixels, k, k + pad})
			}
		}
	}
	return cs
}

// bnData is random values with special ones mixed in: NaN, ±0, ±Inf,
// tiny and huge values, so that rounding, ReLU and mask edges are hit.
func bnData(r *rand.Rand, n int) []float32 {
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)),
		float32(math.Inf(-1)), 1e-40, -1e-40, 3e38, -2.5}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
		if r.IntN(11) == 0 {
			x[i] = special[r.IntN(len(special))]
		}
	}
	return x
}

func bnData64(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

// poisoned returns n values of a poison that no pass writes.
func poisoned(n int) []float32 {
	p := make([]float32, n)
	for i := range p {
		p[i] = math.Float32frombits(0x7fc0dead)
	}
	return p
}

func sameBits32(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}

func sameBits64(a, b []float64) int {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}

// TestBatchNormPasses compares every path's BatchNorm passes with the Go
// code (a Set without vector kernels) bit for bit, on every shape of
// bnCases with special values, and checks that the values between rows
// (channels k..ld) and after the last are left alone.
func TestBatchNormPasses(t *testing.T) {
	ref := &Set{name: "go"}
	forEachSet(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(5, 9))
		for _, c := range bnCases() {
			name := fmt.Sprintf("%d pixels x %d channels, ld %d", c.pixels, c.k, c.ld)
			n := (c.pixels-1)*c.ld + c.k + 5 // 5 values past the last row
			x, dy := bnData(r, n), bnData(r, n)
			mean, invStd, mdy, mdyh, scale := bnData64(r, c.k), bnData64(r, c.k), bnData64(r, c.k), bnData64(r, c.k), bnData64(r, c.k)
			gamma, beta := bnData(r, c.k), bnData(r, c.k)
			start := bnData64(r, c.k)

			check64 := func(pass string, run func(s *Set, out []float64)) {
				want, got := slices.Clone(start), slices.Clone(start)
				run(ref, want)
				run(s, got)
				if i := sameBits64(got, want); i >= 0 {
					t.Fatalf("%s, %s: channel %d = %v, want %v", pass, name, i, got[i], want[i])
				}
			}
			check64("ChannelMoments sum", func(s *Set, out []float64) { s.ChannelMoments(x, c.ld, c.pixels, out, slices.Clone(start)) })
			check64("ChannelMoments sumSq", func(s *Set, out []float64) { s.ChannelMoments(x, c.ld, c.pixels, slices.Clone(start), out) })

			check32 := func(pass string, outs int, run func(s *Set, outs [][]float32)) {
				want, got := make([][]float32, outs), make([][]float32, outs)
				for i := range outs {
					want[i], got[i] = poisoned(n), poisoned(n)
				}
				run(ref, want)
				run(s, got)
				for o := range outs {
					if i := sameBits32(got[o], want[o]); i >= 0 {
						t.Fatalf("%s, %s: output %d [%d] = %v, want %v", pass, name, o, i, got[o][i], want[o][i])
					}
					for i := range n {
						if p, j := i/c.ld, i%c.ld; (p >= c.pixels || j >= c.k) && math.Float32bits(got[o][i]) != 0x7fc0dead {
							t.Fatalf("%s, %s: output %d [%d] (outside the rows) was written", pass, name, o, i)
						}
					}
				}
			}
			for _, relu := range []bool{false, true} {
				check32(fmt.Sprint("BatchNormApply relu=", relu), 1, func(s *Set, o [][]float32) {
					s.BatchNormApply(x, o[0], c.ld, c.pixels, mean, invStd, gamma, beta, relu)
				})
			}
			for _, relu := range []bool{false, true} {
				ga, be := gamma, beta
				if !relu {
					ga, be = nil, nil
				}
				want, got := slices.Clone(start), slices.Clone(start)
				want2, got2 := slices.Clone(start), slices.Clone(start)
				dyGot := slices.Clone(dy)
				ref.BatchNormGradSums(dy, x, c.ld, c.pixels, mean, invStd, ga, be, want, want2)
				s.BatchNormGradSums(dyGot, x, c.ld, c.pixels, mean, invStd, ga, be, got, got2)
				if i := sameBits64(got, want); i >= 0 {
					t.Fatalf("BatchNormGradSums relu=%v, %s: sumDy[%d] = %v, want %v", relu, name, i, got[i], want[i])
				}
				if i := sameBits64(got2, want2); i >= 0 {
					t.Fatalf("BatchNormGradSums relu=%v, %s: sumDyH[%d] = %v, want %v", relu, name, i, got2[i], want2[i])
				}
				if i := sameBits32(dyGot, dy); i >= 0 {
					t.Fatalf("BatchNormGradSums relu=%v, %s: dy[%d] changed to %v from %v", relu, name, i, dyGot[i], dy[i])
				}
				check32(fmt.Sprint("BatchNormGradInput relu=", relu), 1, func(s *Set, o [][]float32) {
					s.BatchNormGradInput(dy, x, o[0], c.ld, c.pixels, mean, invStd, ga, be, mdy, mdyh, scale)
				})
			}
		}
	})
}

// TestBatchNormPassesMath checks the Go code against the formulas on
// plain values, so that the comparison above compares with the right
// thing.
func TestBatchNormPassesMath(t *testing.T) {
	s := &Set{name: "go"}
	x := []float32{1, -2, 3, 4, 0.5, -6} // 3 pixels of 2 channels
	sum, sq := make([]float64, 2), make([]float64, 2)
	s.ChannelMoments(x, 2, 3, sum, sq)
	if sum[0] != 4.5 || sum[1] != -4 || sq[0] != 1+9+0.25 || sq[1] != 4+16+36 {
		t.Errorf("ChannelMoments = %v %v, want [4.5 -4] [10.25 56]", sum, sq)
	}
	mean, invStd := []float64{1, 0}, []float64{2, 1}
	y := make([]float32, 6)
	s.BatchNormApply(x, y, 2, 3, mean, invStd, []float32{3, 1}, []float32{-1, 0}, true)
	// xhat = {0, -2, 4, 4, -1, -6}
	if want := []float32{0, 0, 11, 4, 0, 0}; !slices.Equal(y, want) || math.Signbit(float64(y[0])) {
		t.Errorf("BatchNormApply y = %v, want %v (+0)", y, want)
	}
	// The ReLU passed pixel 1 only (y above): the gradient is gated to
	// {0, 0, 3, 4, 0, 0}.
	dy := []float32{1, 2, 3, 4, 5, 6}
	sd, sh := make([]float64, 2), make([]float64, 2)
	s.BatchNormGradSums(dy, x, 2, 3, mean, invStd, []float32{3, 1}, []float32{-1, 0}, sd, sh)
	if sd[0] != 3 || sd[1] != 4 || sh[0] != 12 || sh[1] != 16 {
		t.Errorf("BatchNormGradSums: sums %v %v", sd, sh)
	}
	dx := make([]float32, 6)
	s.BatchNormGradInput(dy, x, dx, 2, 3, mean, invStd, []float32{3, 1}, []float32{-1, 0}, []float64{1, 1}, []float64{0.5, 0.5}, []float64{2, 2})
	if want := []float32{-2, 0, 0, 2, -1, 4}; !slices.Equal(dx, want) {
		t.Errorf("BatchNormGradInput = %v, want %v", dx, want)
	}
}

// TestAddInPlace compares AddInPlace on every path with the plain loop,
// bit for bit, over lengths around the vector widths and special values.
func TestAddInPlace(t *testing.T) {
	forEachSet(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(8, 8))
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 65, 130} {
			for _, relu := range []bool{false, true} {
				v, res := bnData(r, n), bnData(r, n)
				want := slices.Clone(v)
				for i := range want {
					want[i] += res[i]
					if relu && want[i] < 0 {
						want[i] = 0
					}
				}
				s.AddInPlace(v, res, relu)
				if i := sameBits32(v, want); i >= 0 {
					t.Fatalf("n %d relu %v: [%d] = %v, want %v", n, relu, i, v[i], want[i])
				}
			}
		}
	})
}

// TestReLUMask compares ReLUMask on every path with the plain loop, bit
// for bit, around the vector widths, with NaN and ±0 in y.
func TestReLUMask(t *testing.T) {
	forEachSet(t, func(t *testing.T, s *Set) {
		r := rand.New(rand.NewPCG(10, 10))
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 130} {
			dy, y := bnData(r, n), bnData(r, n)
			want := slices.Clone(dy)
			for i, v := range y {
				if !(v > 0) {
					want[i] = 0
				}
			}
			s.ReLUMask(dy, y)
			if i := sameBits32(dy, want); i >= 0 {
				t.Fatalf("n %d: [%d] = %v, want %v (y %v)", n, i, dy[i], want[i], y[i])
			}
		}
	})
}
