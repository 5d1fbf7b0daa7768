package train

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestCropPad(t *testing.T) {
	src := []float32{1, 2, 3, 4, 5, 6} // 2x3x1
	fill := []float32{9}
	for _, tc := range []struct {
		pad, dy, dx int
		want        []float32
	}{
		{1, 1, 1, []float32{1, 2, 3, 4, 5, 6}},
		{1, 0, 0, []float32{9, 9, 9, 9, 1, 2}},
		{1, 2, 2, []float32{5, 6, 9, 9, 9, 9}},
		{1, 1, 0, []float32{9, 1, 2, 9, 4, 5}},
		{1, 0, 2, []float32{9, 9, 9, 2, 3, 9}},
		{2, 4, 1, []float32{9, 9, 9, 9, 9, 9}},
		{4, 0, 0, []float32{9, 9, 9, 9, 9, 9}},
		{3, 4, 3, []float32{4, 5, 6, 9, 9, 9}},
	} {
		dst := make([]float32, 6)
		CropPad(dst, src, 2, 3, 1, tc.pad, tc.dy, tc.dx, fill)
		if !slices.Equal(dst, tc.want) {
			t.Errorf("pad %d at (%d, %d): %v, want %v", tc.pad, tc.dy, tc.dx, dst, tc.want)
		}
	}
	// Two channels, each with its own fill.
	src2 := []float32{1, 10, 2, 20} // 1x2x2
	dst := make([]float32, 4)
	CropPad(dst, src2, 1, 2, 2, 1, 1, 0, []float32{-1, -2})
	if want := []float32{-1, -2, 1, 10}; !slices.Equal(dst, want) {
		t.Errorf("2 channels: %v, want %v", dst, want)
	}
}

func TestResizedCrop(t *testing.T) {
	src := []float32{0, 10, 20, 30} // 1x4x1
	for _, tc := range []struct {
		y0, x0, bh, bw int
		want           []float32
	}{
		{0, 0, 1, 4, []float32{0, 10, 20, 30}},
		{0, 1, 1, 2, []float32{10, 12.5, 17.5, 20}},
		{0, 3, 1, 1, []float32{30, 30, 30, 30}},
	} {
		dst := make([]float32, 4)
		ResizedCrop(dst, src, 1, 4, 1, tc.y0, tc.x0, tc.bh, tc.bw)
		if !slices.Equal(dst, tc.want) {
			t.Errorf("box %+v: %v, want %v", tc, dst, tc.want)
		}
	}
	// A 2x2 box of a 4x4x2 image doubled: vertical and horizontal taps
	// together, on a linear ramp that bilinear resampling keeps exactly.
	img := make([]float32, 4*4*2)
	for i := range img {
		img[i] = float32(i)
	}
	dst := make([]float32, len(img))
	ResizedCrop(dst, img, 4, 4, 2, 1, 1, 2, 2)
	pos := []float32{0, 0.25, 0.75, 1} // where each output samples the box
	for y := range 4 {
		for x := range 4 {
			for k := range 2 {
				want := ((1+pos[y])*4+(1+pos[x]))*2 + float32(k)
				if got := dst[(y*4+x)*2+k]; got != want {
					t.Errorf("2x2 box to 4x4: (%d, %d, %d) = %g, want %g", y, x, k, got, want)
				}
			}
		}
	}
	whole := make([]float32, len(img))
	ResizedCrop(whole, img, 4, 4, 2, 0, 0, 4, 4)
	if !slices.Equal(whole, img) {
		t.Error("the whole image as the box is not the identity")
	}
}

func TestAugmentApply(t *testing.T) {
	const h, w, c = 4, 5, 2
	src := make([]float32, h*w*c)
	for i := range src {
		src[i] = float32(i + 1)
	}
	fill := []float32{-1, -2}
	for _, a := range []Augment{
		{},
		{Flip: true},
		{Pad: 2},
		{Pad: 1, Flip: true},
		{Pad: 1, Flip: true, MinScale: 0.5, MaxScale: 1},
	} {
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for s := uint64(0); s < 200; s++ {
			x, y := slices.Clone(src), slices.Clone(src)
			tmp := make([]float32, len(src))
			a.Apply(x, h, w, c, fill, rand.New(rand.NewPCG(s, 0)), tmp)
			a.Apply(y, h, w, c, fill, rand.New(rand.NewPCG(s, 0)), tmp)
			if !slices.Equal(x, y) {
				t.Fatalf("%+v seed %d: not deterministic", a, s)
			}
			seen[fmt.Sprint(x)] = true
		}
		want := 1
		switch {
		case a.MaxScale > 0:
			want = 50 // many boxes
		case a.Pad > 0 && a.Flip:
			want = 2 * (2*a.Pad + 1) * (2*a.Pad + 1)
		case a.Pad > 0:
			want = (2*a.Pad + 1) * (2*a.Pad + 1)
		case a.Flip:
			want = 2
		}
		if a.MaxScale > 0 && len(seen) < want || a.MaxScale == 0 && len(seen) != want {
			t.Errorf("%+v: %d distinct outputs over 200 seeds, want %d", a, len(seen), want)
		}
	}
	for _, a := range []Augment{{Pad: -1}, {MaxScale: 1}, {MinScale: 0.5, MaxScale: 0.4}, {MinScale: 0.5, MaxScale: 1.5}} {
		if a.Validate() == nil {
			t.Errorf("%+v: no error", a)
		}
	}
}
