package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// maxWindow8Ref is the plain definition of maxWindow8Go.
func maxWindow8Ref(dst, src []uint8, kh, kw, rowStride, pixStride int) {
	for j := range dst {
		m := src[j]
		for y := 0; y < kh; y++ {
			for x := 0; x < kw; x++ {
				m = max(m, src[y*rowStride+x*pixStride+j])
			}
		}
		dst[j] = m
	}
}

func TestMaxBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	edge := []uint8{0, 1, 0x7f, 0x80, 0x81, 0xfe, 0xff}
	for i := 0; i < 20000; i++ {
		var a, b [8]uint8
		for k := range a {
			if i%2 == 0 {
				a[k], b[k] = edge[r.IntN(len(edge))], edge[r.IntN(len(edge))]
			} else {
				a[k], b[k] = uint8(r.Uint32()), uint8(r.Uint32())
			}
		}
		var pa, pb uint64
		for k := 7; k >= 0; k-- {
			pa, pb = pa<<8|uint64(a[k]), pb<<8|uint64(b[k])
		}
		got := maxBytes(pa, pb)
		for k := range a {
			if w := max(a[k], b[k]); uint8(got>>(8*k)) != w {
				t.Fatalf("maxBytes(%x, %x) byte %d = %x, want %x", a, b, k, uint8(got>>(8*k)), w)
			}
		}
	}
}

// TestMaxWindow8 checks each path's MaxPool8 window (kernel plus Go
// tail) and the Go twin against the definition for channel counts around
// the vector widths, strided windows, with canaries after each pixel.
func TestMaxWindow8(t *testing.T) {
	forEachSet(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(8, 2))
		for _, n := range []int{1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 192, 200, 256, 257} {
			for _, win := range [][2]int{{1, 1}, {1, 3}, {3, 1}, {2, 2}, {3, 3}} {
				kh, kw := win[0], win[1]
				pix := n + r.IntN(3)
				row := 4*pix + r.IntN(5)
				src := randU8(r, (kh-1)*row+(kw-1)*pix+n)
				want := make([]uint8, n)
				maxWindow8Ref(want, src, kh, kw, row, pix)
				for _, impl := range []string{"path", "go"} {
					buf := make([]uint8, n+16)
					for i := range buf {
						buf[i] = 0xa5
					}
					dst := buf[:n]
					vec := 0
					if impl == "path" && s.maxPool8.window != nil {
						vec = n / s.maxPool8.lanes * s.maxPool8.lanes
						if vec > 0 {
							s.maxPool8.window(&dst[0], &src[0], vec, kh, kw, row, pix)
						}
					}
					maxWindow8Go(dst[vec:], src[vec:], kh, kw, row, pix)
					for j := range dst {
						if dst[j] != want[j] {
							t.Fatalf("%s n=%d %dx%d: dst[%d] = %d, want %d", impl, n, kh, kw, j, dst[j], want[j])
						}
					}
					for j := n; j < len(buf); j++ {
						if buf[j] != 0xa5 {
							t.Fatalf("%s n=%d %dx%d: wrote past the end at %d", impl, n, kh, kw, j)
						}
					}
				}
			}
		}
	})
}

// TestMaxPool8Paths compares MaxPool8 on every path with the float MaxPool
// of the same values, on pool shapes with padding and odd channel counts.
func TestMaxPool8Paths(t *testing.T) {
	geoms := []PoolGeom{
		{H: 112, W: 112, C: 64, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1},
		{H: 9, W: 7, C: 37, KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadTop: 1},
		{H: 5, W: 6, C: 1, KH: 2, KW: 2, StrideH: 2, StrideW: 2},
		{H: 6, W: 5, C: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 2, PadLeft: 2},
		{H: 7, W: 7, C: 130, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1},
	}
	forEachSet(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(8, 3))
		for _, g := range geoms {
			g.OH = (g.H+2*g.PadTop-g.KH)/g.StrideH + 1
			g.OW = (g.W+2*g.PadLeft-g.KW)/g.StrideW + 1
			in := randU8(r, g.H*g.W*g.C)
			inF := make([]float32, len(in))
			for i, v := range in {
				inF[i] = float32(v)
			}
			wantF := make([]float32, g.OH*g.OW*g.C)
			s.MaxPool(&g, inF, wantF, 0, g.OH*g.OW)
			out := make([]uint8, len(wantF))
			half := g.OH * g.OW / 2
			s.MaxPool8(&g, in, out, 0, half)
			s.MaxPool8(&g, in, out, half, g.OH*g.OW)
			for i := range out {
				if float32(out[i]) != wantF[i] {
					t.Fatalf("%+v: element %d = %d, want %v", g, i, out[i], wantF[i])
				}
			}
		}
	})
}

// quantInputs returns n floats mixing ordinary values, exact ties of the
// rounding, NaN, ±Inf, huge values, signed zeros and subnormals.
func quantInputs(r *rand.Rand, n int, scale float32) []float32 {
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		3e38, -3e38, 65536.5 * scale, -65536.5 * scale, 1e-45, -1e-45, math.MaxFloat32, -math.MaxFloat32}
	x := make([]float32, n)
	for i := range x {
		switch r.IntN(4) {
		case 0:
			x[i] = special[r.IntN(len(special))]
		case 1: // ties: (k + 0.5) * scale, exact when the product is
			x[i] = (float32(r.IntN(600)-300) + 0.5) * scale
		default:
			x[i] = float32(r.NormFloat64()) * 200 * scale
		}
	}
	return x
}

// TestQuantizePaths checks Quantize and Dequantize on every path bit for
// bit against their Go definitions for lengths around the vector widths,
// zero points across and outside [0, 255], with canaries past the end.
func TestQuantizePaths(t *testing.T) {
	lengths := []int{1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 257, 1000}
	params := []struct {
		scale float32
		zero  int32
	}{{0.037, 91}, {1, 0}, {0.5, 255}, {3e-3, -7}, {1e-30, 128}, {2.5, 300}, {0.25, 65600}, {0.25, -65400}, {0.1, -1 << 24}, {0.1, 1 << 24}, {0.1, 1<<24 + 1}, {1e30, math.MinInt32}, {7, math.MaxInt32}}
	forEachSet(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(8, 4))
		for _, p := range params {
			for _, n := range lengths {
				x := quantInputs(r, n, p.scale)
				want := make([]uint8, n)
				quantizeGo(x, want, p.scale, p.zero)
				buf := make([]uint8, n+16)
				for i := range buf {
					buf[i] = 0x5a
				}
				s.Quantize(x, buf[:n], p.scale, p.zero)
				for i := 0; i < n; i++ {
					if buf[i] != want[i] {
						t.Fatalf("Quantize(%v/%v, zero %d) n=%d [%d] = %d, want %d", x[i], p.scale, p.zero, n, i, buf[i], want[i])
					}
				}
				for i := n; i < len(buf); i++ {
					if buf[i] != 0x5a {
						t.Fatalf("Quantize n=%d wrote past the end at %d", n, i)
					}
				}

				q := randU8(r, n)
				wantF := make([]float32, n)
				dequantizeGo(q, wantF, p.scale, p.zero)
				fbuf := make([]float32, n+16)
				for i := range fbuf {
					fbuf[i] = -1.25
				}
				s.Dequantize(q, fbuf[:n], p.scale, p.zero)
				for i := 0; i < n; i++ {
					if math.Float32bits(fbuf[i]) != math.Float32bits(wantF[i]) {
						t.Fatalf("Dequantize(%d, %v, %d) n=%d [%d] = %v, want %v", q[i], p.scale, p.zero, n, i, fbuf[i], wantF[i])
					}
				}
				for i := n; i < len(fbuf); i++ {
					if fbuf[i] != -1.25 {
						t.Fatalf("Dequantize n=%d wrote past the end at %d", n, i)
					}
				}
			}
		}
	})
}

func BenchmarkMaxPool8Stem(b *testing.B) {
	g := PoolGeom{H: 112, W: 112, C: 64, OH: 56, OW: 56, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	in := randU8(rand.New(rand.NewPCG(1, 1)), g.H*g.W*g.C)
	out := make([]uint8, g.OH*g.OW*g.C)
	for _, s := range Sets() {
		b.Run(s.Name(), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for i := 0; i < b.N; i++ {
				s.MaxPool8(&g, in, out, 0, g.OH*g.OW)
			}
		})
	}
}

// BenchmarkQuantizeInput quantizes a 224x224x3 image, as the int8 model's
// first step does.
func BenchmarkQuantizeInput(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 224*224*3)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	q := make([]uint8, len(x))
	for _, s := range Sets() {
		b.Run(s.Name(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for i := 0; i < b.N; i++ {
				s.Quantize(x, q, 0.0187, 114)
			}
		})
		b.Run(s.Name()+"/dequantize", func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for i := 0; i < b.N; i++ {
				s.Dequantize(q, x, 0.0187, 114)
			}
		})
	}
}

// TestAdd8ParamsLayout pins the offsets the add8 kernels read.
func TestAdd8ParamsLayout(t *testing.T) {
	var p Add8Params
	got := []uintptr{unsafe.Offsetof(p.ZeroA), unsafe.Offsetof(p.ZeroB), unsafe.Offsetof(p.ZeroOut),
		unsafe.Offsetof(p.Lo), unsafe.Offsetof(p.ScaleA), unsafe.Offsetof(p.ScaleB)}
	for i, off := range got {
		if off != uintptr(4*i) {
			t.Fatalf("Add8Params field %d at offset %d, want %d", i, off, 4*i)
		}
	}
}

// TestAdd8Paths checks Add8 on every path bit for bit against add8Go for
// lengths around the vector widths, with and without the fused ReLU, zero
// points and scales at and beyond the kernels' limits, and canaries.
func TestAdd8Paths(t *testing.T) {
	lengths := []int{1, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 1000}
	params := []Add8Params{
		{ZeroA: 91, ZeroB: 17, ZeroOut: 30, Lo: 0, ScaleA: 0.71, ScaleB: 1.3},
		{ZeroA: 91, ZeroB: 17, ZeroOut: 30, Lo: 30, ScaleA: 0.71, ScaleB: 1.3},
		{ZeroA: 0, ZeroB: 255, ZeroOut: 255, Lo: -5, ScaleA: 1, ScaleB: 0.5},      // ties
		{ZeroA: 128, ZeroB: 128, ZeroOut: 128, Lo: 300, ScaleA: 0.5, ScaleB: 0.5}, // Lo > 255
		{ZeroA: -1 << 30, ZeroB: 1 << 30, ZeroOut: 1 << 24, Lo: 0, ScaleA: 1e-4, ScaleB: -1e-4},
		{ZeroA: 3, ZeroB: 9, ZeroOut: -1 << 24, Lo: -1 << 31, ScaleA: 0x1p90, ScaleB: -0x1p90},
		{ZeroA: 3, ZeroB: 9, ZeroOut: 65600, Lo: 0, ScaleA: -1000, ScaleB: 1e-3}, // clamp at -65536 matters
		{ZeroA: 3, ZeroB: 9, ZeroOut: -65400, Lo: 0, ScaleA: 1000, ScaleB: 1e-3},
		{ZeroA: 3, ZeroB: 9, ZeroOut: 1<<24 + 1, Lo: 0, ScaleA: 1, ScaleB: 1}, // Go only
		{ZeroA: 3, ZeroB: 9, ZeroOut: 5, Lo: 0, ScaleA: 0x1p91, ScaleB: 1},    // Go only
	}
	forEachSet(t, func(t *testing.T, s *Set) {
		t.Parallel()
		r := rand.New(rand.NewPCG(8, 5))
		for _, p := range params {
			for _, n := range lengths {
				a, b := randU8(r, n), randU8(r, n)
				want := make([]uint8, n)
				add8Go(a, b, want, &p)
				buf := make([]uint8, n+16)
				for i := range buf {
					buf[i] = 0x3c
				}
				s.Add8(a, b, buf[:n], &p)
				for i := 0; i < n; i++ {
					if buf[i] != want[i] {
						t.Fatalf("Add8(%d, %d, %+v) n=%d [%d] = %d, want %d", a[i], b[i], p, n, i, buf[i], want[i])
					}
				}
				for i := n; i < len(buf); i++ {
					if buf[i] != 0x3c {
						t.Fatalf("Add8 n=%d wrote past the end at %d", n, i)
					}
				}
			}
		}
	})
}

func BenchmarkAdd8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 3))
	const n = 56 * 56 * 256
	x, y, out := randU8(r, n), randU8(r, n), make([]uint8, n)
	p := &Add8Params{ZeroA: 91, ZeroB: 17, ZeroOut: 30, Lo: 30, ScaleA: 0.71, ScaleB: 1.3}
	for _, s := range Sets() {
		b.Run(s.Name(), func(b *testing.B) {
			b.SetBytes(n)
			for i := 0; i < b.N; i++ {
				s.Add8(x, y, out, p)
			}
		})
	}
}
