//go:build gc && !purego

package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// needAMX skips a test of the AMX kernel where it cannot run, saying why.
func needAMX(t testing.TB) {
	t.Helper()
	switch {
	case !cpuid.CPU.Supports(cpuid.AMXTILE, cpuid.AMXINT8):
		t.Skipf("CPU lacks AMX-TILE/AMX-INT8 (%s): the AMX int8 GEMM is untested here", CPU())
	case !hasAMX():
		t.Skipf("the OS refused the AMX tile state (%v): the AMX int8 GEMM is untested here", amxRequest())
	}
}

// TestAMXOffered: the amx path exists exactly where the CPU and the OS
// allow it, and is then the default (unless EDGE_RESNET_KERNELS says
// otherwise).
func TestAMXOffered(t *testing.T) {
	want := cpuid.CPU.Supports(cpuid.AMXTILE, cpuid.AMXINT8) && hasAVX512VNNI() && amxRequest() == nil
	if got := slices.Contains(Available(), "amx"); got != want {
		t.Fatalf("amx available = %v, want %v (%s)", got, want, CPU())
	}
	if want && Sets()[0].Name() != "amx" {
		t.Errorf("best path %s, want amx", Sets()[0])
	}
}

// TestAMXConfigs checks the tile configurations against the rules of
// TDPBUSD (C rows = A rows, A bytes per row = 4 B rows, B and C 64 bytes
// wide) and the reads they allow: A tiles never wider than what is left
// of K, never more rows than the block has.
func TestAMXConfigs(t *testing.T) {
	for _, mt := range []int{0, 1, 15, 16, 17, 31} {
		for _, kt := range []int{0, 4, 60} {
			var c amxConfigs
			c.set(mt, kt)
			for i, cfg := range c {
				rows, kb := 32, 64
				if i >= 2 && mt != 0 {
					rows = mt
				}
				if i%2 == 1 && kt != 0 {
					kb = kt
				}
				col := func(t int) int { return int(cfg[16+2*t]) | int(cfg[17+2*t])<<8 }
				row := func(t int) int { return int(cfg[48+t]) }
				if cfg[0] != 1 || col(4) != kb || col(5) != kb || row(6) != kb/4 || row(7) != kb/4 {
					t.Errorf("mt=%d kt=%d cfg %d: palette %d, A %d/%d bytes, B %d/%d rows; want 1, %d, %d",
						mt, kt, i, cfg[0], col(4), col(5), row(6), row(7), kb, kb/4)
				}
				hi := rows // rows 16-31 of a block of at most 16: rows 0-15 again
				if rows > 16 {
					hi = rows - 16
				}
				if row(0) != row(4) || row(1) != row(4) || row(2) != row(5) || row(3) != row(5) ||
					row(4) != min(rows, 16) || row(5) != hi {
					t.Errorf("mt=%d kt=%d cfg %d: rows %v for a block of %d", mt, kt, i, cfg[48:56], rows)
				}
				for tl := 0; tl < 8; tl++ {
					if tl != 4 && tl != 5 && col(tl) != 64 {
						t.Errorf("mt=%d kt=%d cfg %d: tile %d is %d bytes wide", mt, kt, i, tl, col(tl))
					}
				}
			}
		}
	}
}

// TestAMXGuarded runs the AMX kernel with A, the weights and the residual
// ending on an inaccessible page, for every K tail and the M tails around
// the 16-row tile, so that a tile load reading past any of them crashes.
func TestAMXGuarded(t *testing.T) {
	needAMX(t)
	s, err := ForPath("amx")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(12, 1))
	for _, m := range []int{1, 15, 16, 17, 31, 32, 33, 48, 63} {
		for _, k := range []int{4, 60, 64, 68, 124, 128, 148, 576} {
			n := 32 + m%7
			a := guardedBytes(t, (m-1)*k+k)
			for i := range a {
				a[i] = uint8(r.IntN(256))
			}
			w := make([]int8, k*n)
			for i := range w {
				w[i] = int8(r.IntN(256) - 128)
			}
			rq := Requant{ZeroA: 9, Scale: make([]float32, n), ZeroOut: 7, Res: guardedBytes(t, (m-1)*n+n), LdRes: n, ResZero: 3, ResScale: 0.5}
			for j := range rq.Scale {
				rq.Scale[j] = 1e-3
			}
			pb := s.PackB8(w, k, n)
			pb.Data = slices.Clip(pb.Data) // the last panel ends at the slice's end
			guarded := guardedBytes(t, len(pb.Data))
			for i, v := range pb.Data {
				guarded[i] = uint8(v)
			}
			pb.Data = unsafeInt8(guarded)
			c := make([]uint8, m*n)
			GemmU8(m, a, k, &pb, c, n, &rq, 0, pb.Panels())
			if want := refGemmU8(m, n, k, a, k, w, &rq); !slices.Equal(c, want) {
				t.Fatalf("m=%d k=%d n=%d: differs from the definition", m, k, n)
			}
		}
	}
}

// unsafeInt8 views b as int8 values.
func unsafeInt8(b []byte) []int8 {
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}
