package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// gemm8Case is one GemmU8 call checked bit for bit against refGemmU8
// (the definition, on the unpacked weights).
type gemm8Case struct {
	m, n, k     int
	padA, padC  int  // lda = k+padA, ldc = n+padC (primes exercise odd strides)
	bias, res   bool // with Bias, with a residual (row stride n+5)
	relu        bool // Lo = ZeroOut
	aVal, wVal  int  // -1: random; else every activation / weight is this value
	zeroA       int  // -1: random
	scale       float32
	resScale    float32
	zeroOut     int32
	resZero     int32
	description string
}

func (tc gemm8Case) String() string {
	return fmt.Sprintf("m=%d n=%d k=%d lda+%d ldc+%d bias=%v res=%v relu=%v a=%d w=%d za=%d scale=%g %s",
		tc.m, tc.n, tc.k, tc.padA, tc.padC, tc.bias, tc.res, tc.relu, tc.aVal, tc.wVal, tc.zeroA, tc.scale, tc.description)
}

const guard8 = 64 // canary bytes before and after every output buffer

// run executes the case with s's int8 GEMM, weights in wr: canaries
// around c and in its row gaps, inputs (activations, packed weights,
// Requant slices) checked unchanged.
func (tc gemm8Case) run(t *testing.T, s *Set, wr w8Range, r *rand.Rand) {
	t.Helper()
	m, n, k := tc.m, tc.n, tc.k
	lda, ldc := k+tc.padA, n+tc.padC
	a := make([]uint8, (m-1)*lda+k)
	for i := range a {
		if tc.aVal >= 0 {
			a[i] = uint8(tc.aVal)
		} else {
			a[i] = uint8(r.IntN(256))
		}
	}
	w := make([]int8, k*n)
	for i := range w {
		if tc.wVal != -1000 {
			w[i] = wr.clamp(tc.wVal)
		} else {
			w[i] = wr.rand(r)
		}
	}
	rq := &Requant{ZeroA: int32(tc.zeroA), ZeroOut: tc.zeroOut, Scale: make([]float32, n)}
	if tc.zeroA < 0 {
		rq.ZeroA = int32(r.IntN(256))
	}
	for j := range rq.Scale {
		if tc.scale != 0 {
			rq.Scale[j] = tc.scale
		} else {
			rq.Scale[j] = float32(r.Float64()*3e-3 + 1e-6)
		}
	}
	if tc.relu {
		rq.Lo = rq.ZeroOut
	}
	if tc.bias {
		rq.Bias = make([]int32, n)
		for j := range rq.Bias {
			rq.Bias[j] = int32(r.IntN(200001) - 100000)
		}
	}
	if tc.res {
		rq.LdRes = n + 5
		rq.Res = make([]uint8, (m-1)*rq.LdRes+n)
		for i := range rq.Res {
			rq.Res[i] = uint8(r.IntN(256))
		}
		rq.ResZero, rq.ResScale = tc.resZero, tc.resScale
	} else {
		rq.LdRes = n + 3 // ignored without Res: kernels must not step a nil residual pointer
	}
	pb := s.PackB8(w, k, n)
	wr.checkPacked(t, s, &pb)
	aCopy, dataCopy, sumCopy := slices.Clone(a), slices.Clone(pb.Data), slices.Clone(pb.ColSum)
	scaleCopy, biasCopy, resCopy := slices.Clone(rq.Scale), slices.Clone(rq.Bias), slices.Clone(rq.Res)

	size := (m-1)*ldc + n
	buf := make([]uint8, size+2*guard8)
	for i := range buf {
		buf[i] = canary8
	}
	c := buf[guard8 : guard8+size]
	GemmU8(m, a, lda, &pb, c, ldc, rq, 0, pb.Panels())

	want := refGemmU8(m, n, k, a, lda, w, rq)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			if got := c[i*ldc+j]; got != want[i*n+j] {
				t.Fatalf("%v: c[%d,%d] = %d, want %d", tc, i, j, got, want[i*n+j])
			}
		}
		for j := n; j < ldc && i < m-1; j++ {
			if c[i*ldc+j] != canary8 {
				t.Fatalf("%v: wrote into the gap after row %d (column %d)", tc, i, j)
			}
		}
	}
	for i := 0; i < guard8; i++ {
		if buf[i] != canary8 || buf[len(buf)-1-i] != canary8 {
			t.Fatalf("%v: wrote outside the output", tc)
		}
	}
	if !slices.Equal(a, aCopy) || !slices.Equal(pb.Data, dataCopy) || !slices.Equal(pb.ColSum, sumCopy) ||
		!slices.Equal(rq.Scale, scaleCopy) || !slices.Equal(rq.Bias, biasCopy) || !slices.Equal(rq.Res, resCopy) {
		t.Fatalf("%v: an input was modified", tc)
	}
}

// randomCase is a case with random data for the given shape and a variant
// number selecting strides, bias, residual and ReLU (bits 0-2).
func randomCase(m, n, k, variant int) gemm8Case {
	primes := []int{0, 3, 7, 13, 1, 5, 11, 2}
	return gemm8Case{m: m, n: n, k: k, padA: primes[variant%8], padC: primes[(variant+3)%8],
		bias: variant&1 != 0, res: variant&2 != 0, relu: variant&4 != 0,
		aVal: -1, wVal: -1000, zeroA: -1, zeroOut: int32(37 * variant % 256), resZero: 100, resScale: 0.75}
}

// TestGemmU8TileBattery: every row count up to two tiles and one, every
// column count up to a panel and one, then multiples, at small K.
func TestGemmU8TileBattery(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		r := rand.New(rand.NewPCG(4, 86))
		mr, nr := wr.kernel(s).mr, wr.kernel(s).nr
		var ns []int
		for n := 1; n <= nr+1; n++ {
			ns = append(ns, n)
		}
		ns = append(ns, 2*nr, 2*nr+3, 3*nr)
		for m := 1; m <= 2*mr+1; m++ {
			for ni, n := range ns {
				for ki, k := range []int{4, 12, 64, 132} {
					randomCase(m, n, k, m+3*ni+5*ki).run(t, s, wr, r)
				}
			}
		}
	})
}

// TestGemmU8KBattery: every K multiple of 4 up to 64, then ResNet sizes,
// at the tile edges, with every combination of bias, residual and ReLU.
func TestGemmU8KBattery(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		r := rand.New(rand.NewPCG(8, 6))
		mr, nr := wr.kernel(s).mr, wr.kernel(s).nr
		ks := []int{132, 1152, 4608}
		if testing.Short() {
			ks = ks[:2] // the extreme-value test still reaches 4608
		}
		for k := 4; k <= 64; k += 4 {
			ks = append(ks, k)
		}
		for _, k := range ks {
			for _, mn := range [][2]int{{1, nr}, {mr, nr + 1}, {mr + 1, 2*nr - 1}, {2*mr + 1, 1}} {
				for variant := range 8 {
					randomCase(mn[0], mn[1], k, variant).run(t, s, wr, r)
				}
			}
		}
	})
}

// TestGemmU8ExtremeValues: constant activations and weights at the ends of
// their ranges, every zero point end, scales that saturate the output both
// ways and residuals that do too.
func TestGemmU8ExtremeValues(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		r := rand.New(rand.NewPCG(2, 55))
		mr, nr := wr.kernel(s).mr, wr.kernel(s).nr
		for _, k := range []int{4, 132, 4608} {
			if testing.Short() && k == 132 {
				continue
			}
			for _, av := range []int{0, 255, -1} {
				for _, wv := range []int{127, -127, -1000} {
					for _, za := range []int{0, 128, 255} {
						for _, sc := range []float32{1e-7, 1e-3, 1, 300} {
							if testing.Short() && k == 4608 && (av == -1 || wv == -1000) {
								continue // random data at the largest K: the K battery covers it
							}
							tc := gemm8Case{m: mr + 1, n: nr + 1, k: k, padA: 7, padC: 3, aVal: av, wVal: wv, zeroA: za,
								scale: sc, zeroOut: 128, bias: za == 128, res: sc == 1e-3, relu: wv == -127,
								resZero: 0, resScale: 200}
							tc.run(t, s, wr, r)
						}
					}
				}
			}
		}
	})
}

// TestGemmU8Ties: accumulators scaled exactly onto x.5, with x even and
// odd and of both signs, so that round-half-to-even is checked, with and
// without a residual that lands on a tie too.
func TestGemmU8Ties(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		mr, nr := wr.kernel(s).mr, wr.kernel(s).nr
		m, n, k := mr+2, nr+3, 8
		// a = 1, ZeroA = 0 and w[k][j] small: acc[j] = Σ_k w[k][j]; scale
		// 0.5 makes every odd acc a tie.
		a := make([]uint8, m*k)
		for i := range a {
			a[i] = uint8(1 + i%3)
		}
		w := make([]int8, k*n)
		for i := range w {
			w[i] = int8(i%7 - 3)
		}
		for _, res := range []bool{false, true} {
			rq := &Requant{Scale: make([]float32, n), ZeroOut: 100}
			for j := range rq.Scale {
				rq.Scale[j] = 0.5
			}
			if res {
				rq.LdRes, rq.Res = n, make([]uint8, m*n)
				for i := range rq.Res {
					rq.Res[i] = uint8(i % 256)
				}
				rq.ResZero, rq.ResScale = 3, 0.5
			}
			pb := s.PackB8(w, k, n)
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
			want := refGemmU8(m, n, k, a, k, w, rq)
			ties := 0
			for i := range c {
				if c[i] != want[i] {
					t.Fatalf("res=%v: c[%d] = %d, want %d", res, i, c[i], want[i])
				}
			}
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var acc int32
					for kk := 0; kk < k; kk++ {
						acc += int32(a[i*k+kk]) * int32(w[kk*n+j])
					}
					v := float32(acc) * 0.5
					if res {
						v += float32(int32(rq.Res[i*n+j])-3) * 0.5
					}
					if v != float32(int(v)) {
						ties++
					}
				}
			}
			if ties < m*n/4 {
				t.Fatalf("res=%v: only %d of %d outputs are ties", res, ties, m*n)
			}
		}
	})
}

// TestGemmU8PanelRange: column panels [p0, p1) only write their columns.
func TestGemmU8PanelRange(t *testing.T) {
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		t.Parallel()
		r := rand.New(rand.NewPCG(3, 3))
		nr := wr.kernel(s).nr
		m, n, k := wr.kernel(s).mr+3, 3*nr+5, 36
		a := make([]uint8, m*k)
		for i := range a {
			a[i] = uint8(r.IntN(256))
		}
		w := make([]int8, k*n)
		for i := range w {
			w[i] = wr.rand(r)
		}
		rq := &Requant{ZeroA: 9, Scale: make([]float32, n), ZeroOut: 4}
		for j := range rq.Scale {
			rq.Scale[j] = 0.002
		}
		pb := s.PackB8(w, k, n)
		wr.checkPacked(t, s, &pb)
		want := refGemmU8(m, n, k, a, k, w, rq)
		c := make([]uint8, m*n)
		for i := range c {
			c[i] = canary8
		}
		GemmU8(m, a, k, &pb, c, n, rq, 1, 3)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				inside := j >= nr && j < 3*nr
				if inside && c[i*n+j] != want[i*n+j] || !inside && c[i*n+j] != canary8 {
					t.Fatalf("c[%d,%d] = %d (inside panels 1-2: %v), want %d", i, j, c[i*n+j], inside, want[i*n+j])
				}
			}
		}
	})
}

func TestGemmU8NoAllocs(t *testing.T) {
	// Not in parallel: AllocsPerRun counts the allocations of every goroutine.
	forEachGemm8(t, func(t *testing.T, s *Set, wr w8Range) {
		m, n, k := 2*wr.kernel(s).mr+1, 2*wr.kernel(s).nr+3, 64
		a := make([]uint8, m*k)
		w := make([]int8, k*n)
		w[k*n-1] = wr.clamp(127) // all zeros would get the narrow kernel in the wide run too
		pb := s.PackB8(w, k, n)
		wr.checkPacked(t, s, &pb)
		rq := &Requant{Scale: make([]float32, n), Bias: make([]int32, n), Res: make([]uint8, m*n), LdRes: n}
		c := make([]uint8, m*n)
		if allocs := testing.AllocsPerRun(10, func() {
			GemmU8(m, a, k, &pb, c, n, rq, 0, pb.Panels())
		}); allocs != 0 {
			t.Fatalf("GemmU8 allocates %v times per call", allocs)
		}
	})
}
