package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// guardedBytes returns n bytes that end on an inaccessible page (unix):
// a kernel reading one byte past them crashes the test.
func guardedBytes(t *testing.T, n int) []byte {
	g := newGuardedEnd(t, (n+3)/4)
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(g.f))), 4*len(g.f))
	return b[len(b)-n:]
}

// dw8Args are the arguments of one int8 row kernel call (dw8RowKernel),
// on slices.
type dw8Args struct {
	stride                          int
	src                             []uint8
	w                               []int8
	bias                            []int32
	scale                           []float32
	res                             []uint8
	n, rows, npix, c, srcRow, wTap  int
	flags                           int
	zeroA, zeroOut, lo, hi, resZero int32
	resScale                        float32
}

// dw8RowGo is the Go twin of dw8RowKernel: it writes channels [0, n) of
// the npix pixels of dst (pixel stride c) and nothing else.
func dw8RowGo(dst []uint8, a *dw8Args) {
	for j := 0; j < a.npix; j++ {
		for ch := 0; ch < a.n; ch++ {
			var acc int32
			if a.flags&dwFlagBias != 0 {
				acc = a.bias[ch]
			}
			for r := 0; r < a.rows; r++ {
				for kw := 0; kw < 3; kw++ {
					x := int32(a.src[r*a.srcRow+(j*a.stride+kw)*a.c+ch])
					acc += (x - a.zeroA) * int32(a.w[(3*r+kw)*a.wTap+ch])
				}
			}
			var res uint8
			hasRes := a.flags&dwFlagRes != 0
			if hasRes {
				res = a.res[j*a.c+ch]
			}
			q := Requantize(acc, a.scale[ch], hasRes, res, a.resZero, a.resScale, a.zeroOut, a.lo)
			dst[j*a.c+ch] = min(q, uint8(a.hi))
		}
	}
}

// dw8Fill fills s with bytes of the given mode: random, all lo, all hi,
// or alternating lo and hi.
func dw8Fill(r *rand.Rand, s []uint8, mode int, lo, hi uint8) {
	for i := range s {
		switch mode {
		case 0:
			s[i] = uint8(r.IntN(256))
		case 1:
			s[i] = lo
		case 2:
			s[i] = hi
		default:
			s[i] = [2]uint8{lo, hi}[(i+r.IntN(2))%2]
		}
	}
}

// newDw8Args makes one random kernel call for a path with lanes8-channel
// vectors: every buffer it reads ends on a guard page, and the extremes
// (zero points 0 and 255, weights -128 and 127, inputs 0 and 255, zero
// points of the output far enough for the ±65536 clamp to matter, scales
// that push sums past it) come up often.
func newDw8Args(t *testing.T, r *rand.Rand, lanes8, stride, rows, npix int) *dw8Args {
	a := &dw8Args{stride: stride, rows: rows, npix: npix, flags: r.IntN(4)}
	a.n = (1 + r.IntN(4)) * lanes8
	a.c = a.n + []int{0, 0, 3, lanes8}[r.IntN(4)] // the pixel stride, with a gap sometimes
	a.srcRow = a.c * ((npix-1)*stride + 3 + r.IntN(2))
	a.wTap = a.c + r.IntN(2)*lanes8
	a.src = guardedBytes(t, (rows-1)*a.srcRow+((npix-1)*stride+2)*a.c+a.n)
	dw8Fill(r, a.src, r.IntN(4), 0, 255)
	wb := guardedBytes(t, (3*rows-1)*a.wTap+a.n)
	a.w = unsafe.Slice((*int8)(unsafe.Pointer(&wb[0])), len(wb))
	dw8Fill(r, wb, r.IntN(4), 0x80, 0x7f) // -128, 127
	a.zeroA = []int32{0, 255, int32(r.IntN(256))}[r.IntN(3)]
	// The NEON kernels clamp to ±65536 only for zero points outside
	// [255-65536, 65536] (dw8FlagClamp): both ends and one past them.
	a.zeroOut = []int32{0, 255, int32(r.IntN(256)), -70000, 70000, -1 << 24, 1 << 24, 255 - 65536, 65536, 254 - 65536, 65537}[r.IntN(11)]
	a.lo = int32(r.IntN(256))
	a.hi = a.lo + int32(r.IntN(256-int(a.lo)))
	if r.IntN(3) == 0 {
		a.lo, a.hi = 0, 255
	}
	a.bias = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(newGuardedEnd(t, a.n).tail(a.n)))), a.n)
	for i := range a.bias {
		a.bias[i] = []int32{0, math.MaxInt32, math.MinInt32, int32(r.IntN(1<<20) - 1<<19)}[r.IntN(4)]
	}
	a.scale = newGuardedEnd(t, a.n).tail(a.n)
	big := r.IntN(2) == 0 // sums of up to 9·255·128 times a scale near 1 reach past ±65536
	for i := range a.scale {
		a.scale[i] = float32(math.Ldexp(0.5+r.Float64(), -8-r.IntN(6)))
		if big {
			a.scale[i] = float32(0.25 + r.Float64())
		}
	}
	a.res = guardedBytes(t, (npix-1)*a.c+a.n)
	dw8Fill(r, a.res, r.IntN(4), 0, 255)
	a.resZero = int32(r.IntN(256))
	a.resScale = float32(0.25 + 4*r.Float64())
	return a
}

func (a *dw8Args) String() string {
	return fmt.Sprintf("stride %d n=%d rows=%d npix=%d c=%d srcRow=%d wTap=%d flags=%d zeroA=%d zeroOut=%d lo=%d hi=%d resZero=%d",
		a.stride, a.n, a.rows, a.npix, a.c, a.srcRow, a.wTap, a.flags, a.zeroA, a.zeroOut, a.lo, a.hi, a.resZero)
}

// TestDepthwise8Kernels checks each path's int8 row kernels on their
// contract (dw8RowKernel) against the Go twin, bit for bit: 1 to 4
// channel vectors, pixel strides with gaps (which must keep their
// canaries), 1 to 3 filter rows, 1 to 19 pixels (every chunk size),
// bias and residual on and off, the extremes of newDw8Args; sources end
// on an inaccessible page, the destination is poisoned around and
// between the pixels, inputs are left unchanged.
func TestDepthwise8Kernels(t *testing.T) {
	for _, p := range depthwiseSets() {
		dw := p.depthwise
		if dw == nil || dw.row8[1] == 0 {
			continue
		}
		t.Run(p.Name(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(8, 8))
			calls := 0
			for round := 0; round < 4; round++ {
				for stride := 1; stride <= 2; stride++ {
					for rows := 1; rows <= 3; rows++ {
						for npix := 1; npix <= 19; npix++ {
							checkDw8Kernel(t, r, dw, newDw8Args(t, r, dw.lanes8, stride, rows, npix))
							calls++
						}
					}
				}
			}
			t.Logf("%d kernel calls", calls)
		})
	}
}

// checkDw8Kernel runs one call of the path's row kernel against
// dw8RowGo.
func checkDw8Kernel(t *testing.T, r *rand.Rand, dw *depthwiseImpl, a *dw8Args) {
	t.Helper()
	m := (a.npix-1)*a.c + a.n
	full := make([]uint8, m+32)
	for i := range full {
		full[i] = uint8(r.IntN(256)) // poison: the kernel must write every output byte itself
	}
	got := full[16 : 16+m]
	want := slices.Clone(full)
	dw8RowGo(want[16:16+m], a)
	saved := [][]uint8{slices.Clone(a.src), slices.Clone(a.res)}
	wSaved := slices.Clone(a.w)
	var bias *int32
	if a.flags&dwFlagBias != 0 {
		bias = &a.bias[0]
	}
	var res *uint8
	if a.flags&dwFlagRes != 0 {
		res = &a.res[0]
	}
	dw8Row(dw.row8[a.stride], &got[0], &a.src[0], &a.w[0], bias, &a.scale[0], res,
		a.n, a.rows, a.npix, a.c, a.srcRow, a.wTap, a.flags, a.zeroA, a.zeroOut, a.lo, a.hi, a.resZero, a.resScale)
	for i := range full {
		if full[i] != want[i] {
			what := "output"
			if k := i - 16; k < 0 || k >= m || k%a.c >= a.n {
				what = "byte outside the outputs"
			}
			t.Fatalf("%s %v: %s %d (pixel %d, channel %d) = %d, want %d", dw.name, a, what, i-16, (i-16)/a.c, (i-16)%a.c, full[i], want[i])
		}
	}
	if !slices.Equal(a.src, saved[0]) || !slices.Equal(a.res, saved[1]) || !slices.Equal(a.w, wSaved) {
		t.Fatalf("%v: input modified", a)
	}
}

// TestDepthwise8Extremes checks Depthwise8 on every path against the plain
// definition at the ends of every range: zero points 0 and 255, weights
// all -128, all 127 or mixed, inputs all 0, all 255 or mixed, output zero
// points far enough for Requantize's ±65536 clamp to decide, bias, the
// residual (also in place), ReLU and Clip bounds; C around the vector
// widths, 3x3 at stride 1 and 2 with every padding variant, rows split at
// every row; the output poisoned and guarded by canaries.
func TestDepthwise8Extremes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	var cases []dw8Case
	for _, c := range []int{7, 8, 9, 15, 16, 24, 31, 40, 264} {
		for _, s := range []int{1, 2} {
			for pi, p := range dw3x3Pads {
				g := DepthwiseGeom{H: 5 + pi, W: 11 + 4*pi, C: c, KH: 3, KW: 3, StrideH: s, StrideW: s, DilH: 1, DilW: 1,
					PadTop: p[0], PadLeft: p[1], PadBottom: p[2], PadRight: p[3]}
				g.SetOutput()
				cases = append(cases, newDw8Case(r, g, len(cases)))
			}
		}
	}
	for _, s := range depthwiseSets() {
		t.Run(s.Name(), func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				tc.check(t, s)
			}
		})
	}
}

// dw8Case is one Depthwise8 call of TestDepthwise8Extremes.
type dw8Case struct {
	g     DepthwiseGeom
	in    []uint8
	w     []int8
	rq    Requant
	hi    uint8
	modes string
}

func newDw8Case(r *rand.Rand, g DepthwiseGeom, i int) dw8Case {
	tc := dw8Case{g: g, in: make([]uint8, g.H*g.W*g.C), w: make([]int8, 9*g.C), hi: 255}
	inMode, wMode := i%4, (i/4)%4
	dw8Fill(r, tc.in, inMode, 0, 255)
	dw8Fill(r, unsafe.Slice((*uint8)(unsafe.Pointer(&tc.w[0])), len(tc.w)), wMode, 0x80, 0x7f)
	tc.rq.ZeroA = []int32{0, 255, int32(r.IntN(256))}[i%3]
	tc.rq.ZeroOut = []int32{0, 255, 128, -70000, 70000, 1 << 24, -1 << 24, 254 - 65536, 65537}[i%9]
	tc.rq.Scale = make([]float32, g.C)
	for k := range tc.rq.Scale {
		tc.rq.Scale[k] = float32(math.Ldexp(0.5+r.Float64(), -r.IntN(12))) // up to ~1: sums past ±65536
	}
	if i%2 == 0 {
		tc.rq.Bias = make([]int32, g.C)
		for k := range tc.rq.Bias {
			tc.rq.Bias[k] = int32(r.IntN(1<<18) - 1<<17)
		}
	}
	if i%3 != 1 {
		tc.rq.Res = make([]uint8, g.OH*g.OW*g.C)
		dw8Fill(r, tc.rq.Res, (i/2)%4, 0, 255)
		tc.rq.ResZero = []int32{0, 255, 77}[i%3]
		tc.rq.ResScale = float32(0.25 + r.Float64())
	}
	switch i % 5 {
	case 1:
		tc.rq.Lo = 0
	case 2:
		tc.rq.Lo = min(max(tc.rq.ZeroOut, 0), 255) // a fused ReLU
	case 3:
		tc.rq.Lo, tc.hi = 30, 200
	case 4:
		tc.rq.Lo, tc.hi = 255, 255
	}
	tc.modes = fmt.Sprintf("in mode %d, w mode %d", inMode, wMode)
	return tc
}

// check runs Depthwise8 whole, row by row, and with the residual in
// place, against refDepthwise8.
func (tc *dw8Case) check(t *testing.T, s *Set) {
	t.Helper()
	g := &tc.g
	want := refDepthwise8(g, tc.in, tc.w, &tc.rq, tc.hi)
	n := len(want)
	for variant := range 3 {
		full := make([]uint8, n+32)
		for k := range full {
			full[k] = 0x5a
		}
		out := full[16 : 16+n]
		switch variant {
		case 0:
			s.Depthwise8(g, tc.in, tc.w, out, &tc.rq, tc.hi, 0, g.OH)
		case 1:
			for y := 0; y < g.OH; y++ {
				s.Depthwise8(g, tc.in, tc.w, out, &tc.rq, tc.hi, y, y+1)
			}
		case 2:
			if tc.rq.Res == nil {
				continue
			}
			copy(out, tc.rq.Res)
			rq := tc.rq
			rq.Res = out
			s.Depthwise8(g, tc.in, tc.w, out, &rq, tc.hi, 0, g.OH)
		}
		for k := 0; k < 16; k++ {
			if full[k] != 0x5a || full[16+n+k] != 0x5a {
				t.Fatalf("%+v: write outside the output", *g)
			}
		}
		for k := range want {
			if out[k] != want[k] {
				t.Fatalf("%s %+v %s variant %d ZeroA=%d ZeroOut=%d Lo=%d hi=%d bias=%v res=%v: out[%d] (pixel %d, channel %d) = %d, want %d",
					s, *g, tc.modes, variant, tc.rq.ZeroA, tc.rq.ZeroOut, tc.rq.Lo, tc.hi, tc.rq.Bias != nil, tc.rq.Res != nil,
					k, k/g.C, k%g.C, out[k], want[k])
			}
		}
	}
}
