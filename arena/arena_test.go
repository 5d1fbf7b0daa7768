package arena

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

func TestPlanNoOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(40)
		ts := make([]Tensor, n)
		for i := range ts {
			first := r.IntN(30)
			ts[i] = Tensor{Size: int64(r.IntN(5000)), First: first, Last: first + r.IntN(6)}
		}
		l, err := Plan(ts)
		if err != nil {
			t.Fatal(err)
		}
		if l.Total > l.Sum {
			t.Fatalf("total %d exceeds the no-reuse sum %d", l.Total, l.Sum)
		}
		for i := range ts {
			if l.Offsets[i]%Align != 0 || l.Offsets[i]+ts[i].Size > l.Total {
				t.Fatalf("tensor %d misplaced at %d (total %d)", i, l.Offsets[i], l.Total)
			}
			for j := range i {
				if !overlaps(ts[i], ts[j]) || ts[i].Size == 0 || ts[j].Size == 0 {
					continue
				}
				a0, a1 := l.Offsets[i], l.Offsets[i]+ts[i].Size
				b0, b1 := l.Offsets[j], l.Offsets[j]+ts[j].Size
				if a0 < b1 && b0 < a1 {
					t.Fatalf("live tensors %d %v and %d %v share memory", i, ts[i], j, ts[j])
				}
			}
		}
	}
}

// A chain where each tensor dies as the next is made needs two slots.
func TestPlanChainReuses(t *testing.T) {
	var ts []Tensor
	for i := 0; i < 10; i++ {
		ts = append(ts, Tensor{Size: 1000, First: i, Last: i + 1})
	}
	l, err := Plan(ts)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * alignUp(1000); l.Total != want {
		t.Fatalf("total %d, want %d", l.Total, want)
	}
}

func TestPlanRejectsBadLifetime(t *testing.T) {
	if _, err := Plan([]Tensor{{Size: 4, First: 3, Last: 2}}); err == nil {
		t.Fatal("want an error")
	}
}

func TestFloat32sAligned(t *testing.T) {
	for n := 1; n < 100; n++ {
		s := Float32s(n)
		if len(s) != n || uintptr(unsafe.Pointer(&s[0]))%Align != 0 {
			t.Fatalf("n=%d: len %d, addr %p", n, len(s), &s[0])
		}
	}
}
