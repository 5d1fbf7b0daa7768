package preprocess

import (
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestFlipH(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ h, w, c int }{
		{1, 1, 1}, {2, 1, 3}, {1, 2, 1}, {2, 3, 1}, {5, 7, 3}, {4, 6, 3}, {3, 28, 1},
	} {
		x := make([]float32, tc.h*tc.w*tc.c)
		for i := range x {
			x[i] = r.Float32()
		}
		got := slices.Clone(x)
		FlipH(got, tc.h, tc.w, tc.c)
		for y := 0; y < tc.h; y++ {
			for i := 0; i < tc.w; i++ {
				for k := 0; k < tc.c; k++ {
					if g, w := got[(y*tc.w+i)*tc.c+k], x[(y*tc.w+tc.w-1-i)*tc.c+k]; g != w {
						t.Fatalf("%dx%dx%d: (%d,%d,%d) is %v, want %v", tc.h, tc.w, tc.c, y, i, k, g, w)
					}
				}
			}
		}
		FlipH(got, tc.h, tc.w, tc.c)
		if !slices.Equal(got, x) {
			t.Errorf("%dx%dx%d: flipped twice is not the input", tc.h, tc.w, tc.c)
		}
	}
}

func TestParseViews(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []View // nil: an error naming the input
	}{
		{"", viewsNone},
		{"none", viewsNone},
		{"flip", []View{{}, {Flip: true}}},
		{" Flip ", []View{{}, {Flip: true}}},
		{"crop", []View{{}, {Crop: TopLeft}, {Crop: TopRight}, {Crop: BottomLeft}, {Crop: BottomRight}}},
		{"flip,crop", viewsFlipCrop},
		{"crop,flip", viewsFlipCrop},
		{"mirror", nil},
		{"flip,", nil},
		{"none,flip", nil},
		{"flip;crop", nil},
	} {
		got, err := ParseViews(tc.name)
		if tc.want == nil {
			if err == nil || !strings.Contains(err.Error(), "flip,crop") || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("%q: want an error naming it and the choices, got %v, %v", tc.name, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if v := viewsFlipCrop; len(v) != 10 || v[5] != (View{Center, true}) || v[9] != (View{BottomRight, true}) {
		t.Errorf("flip,crop: %v, want the five crops then their mirrors", v)
	}
}

// pattern is a w x h image with distinct, uneven pixel values.
func pattern(w, h, ch int) image.Image {
	r := image.Rect(0, 0, w, h)
	if ch == 1 {
		m := image.NewGray(r)
		for i := range m.Pix {
			m.Pix[i] = uint8(37*i + 11)
		}
		return m
	}
	m := image.NewNRGBA(r)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x*29 + y*3), uint8(y*41 + 7), uint8(x*y + 200), 255})
		}
	}
	return m
}

// TestApplyViews checks every view of the 10-crop against a plain
// reference: the window at the expected origin (listed by hand per case)
// of the whole resized image (Resized), zeros outside it, normalized, and
// mirrored for Flip.
func TestApplyViews(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   Spec
		w, h   int
		xs, ys [3]int // origins of the center, first and last corner windows
	}{
		// Resized to 21x16; FiveCrop corners at the image's edges.
		{"resize 16 crop 14 BGR", Spec{Resize: 16, Height: 14, Width: 14, Channels: 3, BGR: true, Scale: 1.0 / 255,
			Mean: []float32{0.4, 0.5, 0.6}, Std: []float32{0.2, 0.25, 0.3}}, 23, 17, [3]int{4, 0, 7}, [3]int{1, 0, 2}},
		// The built-in model's spec: no room, so 2 pixels into the padding.
		{"28x28 gray", Spec{Resize: 28, Height: 28, Width: 28, Channels: 1, Scale: 1.0 / 255,
			Mean: []float32{0.286}, Std: []float32{0.353}}, 28, 28, [3]int{0, -2, 2}, [3]int{0, -2, 2}},
		// Straight resize of a larger image, odd sizes.
		{"straight 9x11", Spec{Height: 11, Width: 9, Channels: 3, Scale: 1.0 / 255,
			Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}}, 30, 19, [3]int{0, -1, 1}, [3]int{0, -1, 1}},
		// Resized 5x9 under a 7x7 crop: padded across, room of 2 down.
		{"crop larger than image", Spec{Resize: 5, Height: 7, Width: 7, Channels: 1, Scale: 1.0 / 255,
			Mean: []float32{0}, Std: []float32{1}}, 5, 9, [3]int{-1, -2, 0}, [3]int{1, 0, 2}},
		// 1-pixel high: no vertical shift; 3 wide: 1 pixel.
		{"1x3", Spec{Height: 1, Width: 3, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0}, Std: []float32{1}},
			4, 2, [3]int{0, -1, 1}, [3]int{0, 0, 0}},
		// 2x2: the corners are the center.
		{"2x2", Spec{Height: 2, Width: 2, Channels: 3, Scale: 1.0 / 255, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}},
			2, 2, [3]int{0, 0, 0}, [3]int{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := pattern(tc.w, tc.h, tc.spec.Channels)
			views := slices.Clone(viewsFlipCrop)
			n := tc.spec.Height * tc.spec.Width * tc.spec.Channels
			got := make([]float32, len(views)*n)
			if err := tc.spec.ApplyViews(img, views, got, nil); err != nil {
				t.Fatal(err)
			}
			res, err := tc.spec.Resized(img, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range views {
				ox, oy := tc.xs[0], tc.ys[0]
				if v.Crop != Center {
					ox, oy = tc.xs[1], tc.ys[1]
				}
				if v.Crop == TopRight || v.Crop == BottomRight {
					ox = tc.xs[2]
				}
				if v.Crop == BottomLeft || v.Crop == BottomRight {
					oy = tc.ys[2]
				}
				want := referenceView(tc.spec, res, ox, oy, v.Flip)
				if d := slices.Index(floatDiffs(got[i*n:(i+1)*n], want), true); d >= 0 {
					t.Fatalf("view %v (origin %d,%d): value %d is %v, want %v", v, ox, oy, d, got[i*n+d], want[d])
				}
			}
			// Apply is the center view.
			one := make([]float32, n)
			if err := tc.spec.Apply(img, one, nil); err != nil || !slices.Equal(one, got[:n]) {
				t.Errorf("Apply differs from the center view (%v)", err)
			}
		})
	}
}

// referenceView is the spec's crop at origin (ox, oy) of the resized
// image res, computed pixel by pixel.
func referenceView(s Spec, res image.Image, ox, oy int, flip bool) []float32 {
	ch := s.Channels
	out := make([]float32, s.Height*s.Width*ch)
	b := res.Bounds()
	for y := 0; y < s.Height; y++ {
		for x := 0; x < s.Width; x++ {
			sx := x
			if flip {
				sx = s.Width - 1 - x
			}
			var px [3]uint8
			if p := image.Pt(ox+sx, oy+y); p.In(b) {
				c := color.NRGBAModel.Convert(res.At(p.X, p.Y)).(color.NRGBA)
				px = [3]uint8{c.R, c.G, c.B}
				if s.BGR {
					px[0], px[2] = px[2], px[0]
				}
			}
			for k := 0; k < ch; k++ {
				v := float32(px[k]) / 255
				out[(y*s.Width+x)*ch+k] = (v - s.Mean[k]) / s.Std[k]
			}
		}
	}
	return out
}

func floatDiffs(a, b []float32) []bool {
	d := make([]bool, len(a))
	for i := range a {
		d[i] = a[i] != b[i]
	}
	return d
}

func TestApplyViewsErrors(t *testing.T) {
	s := Spec{Height: 4, Width: 4, Channels: 1, Scale: 1, Mean: []float32{0}, Std: []float32{1}}
	img := pattern(6, 6, 1)
	for _, tc := range []struct {
		name  string
		views []View
		n     int
		want  string
	}{
		{"no views", nil, 16, "no views"},
		{"short dst", viewsFlip, 16, "want 32 (2 view(s) of 4x4x1)"},
		{"bad crop", []View{{Crop: 9}}, 16, "crop Crop(9) unknown"},
	} {
		err := s.ApplyViews(img, tc.views, make([]float32, tc.n), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
