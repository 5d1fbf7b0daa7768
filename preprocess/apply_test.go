package preprocess

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// identity returns a spec that keeps the image size, so Resized shows the
// pure color conversion.
func identity(w, h, ch int) Spec {
	return Spec{Height: h, Width: w, Channels: ch, Scale: 1, Mean: make([]float32, ch), Std: ones(ch)}
}

func maxByteDiff(a, b []byte) (d int, same int) {
	for i := range a {
		d = max(d, abs(int(a[i])-int(b[i])))
		if a[i] == b[i] {
			same++
		}
	}
	return d, same
}

// TestCMYK checks the CMYK conversion against Pillow's convert("RGB") of
// the same pixels (made by the same formula in the generator).
func TestCMYK(t *testing.T) {
	m := image.NewCMYK(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			m.SetCMYK(x, y, color.CMYK{uint8((x*4 + y) % 256), uint8((y*4 + 3*x) % 256), uint8((x * y) % 256), uint8((y*4 + x*13) % 256)})
		}
	}
	got, err := identity(64, 64, 3).Resized(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeFile(filepath.Join(pilDir, "cmyk_64x64_rgb.png"))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := maxByteDiff(packed(got), packed(toSame(want, 3))); d != 0 {
		t.Errorf("CMYK->RGB differs from Pillow by up to %d", d)
	}
}

// TestJPEGColor decodes JPEGs whose DCT blocks are all flat (every IDCT
// decodes those exactly) and compares with Pillow/libjpeg-turbo, which
// isolates color conversion and chroma upsampling: identical for 4:4:4,
// and for 4:2:2 / 4:2:0 with flat 16x16 MCUs (odd 61x45 size for the
// edges). blocks8 at 4:2:0 has non-flat chroma blocks, so IDCT differences
// show there; it is logged, not checked.
func TestJPEGColor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exact bool
	}{{"blocks8_64x48_444", true}, {"blocks8_64x48_420", false}, {"blocks16_61x45_422", true}, {"blocks16_61x45_420", true}} {
		img, err := DecodeFile(filepath.Join(pilDir, tc.name+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := DecodeFile(filepath.Join(pilDir, tc.name+"_pil.png"))
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		got, err := identity(b.Dx(), b.Dy(), 3).Resized(img, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, same := maxByteDiff(packed(got), packed(toSame(want, 3)))
		t.Logf("%s (%T %v): max |diff| vs Pillow %d levels, %.1f%% identical", tc.name, img, img.(*image.YCbCr).SubsampleRatio, d, 100*float64(same)/float64(b.Dx()*b.Dy()*3))
		if tc.exact && d != 0 {
			t.Errorf("%s: differs from Pillow by %d", tc.name, d)
		}
	}
}

// opaque hides an image's concrete type, forcing the generic At path.
type opaque struct{ image.Image }

func randNRGBA(r *rand.Rand, w, h int, alpha bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 && !alpha {
			m.Pix[i] = 255
		}
	}
	return m
}

func applyAll(t *testing.T, specs []Spec, img image.Image) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, s := range specs {
		dst := make([]float32, s.Height*s.Width*s.Channels)
		if err := s.Apply(img, dst, nil); err != nil {
			t.Fatalf("%T: %v", img, err)
		}
		out = append(out, dst)
	}
	return out
}

func testSpecs() []Spec {
	gray := Spec{Resize: 0, Height: 28, Width: 28, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0.286}, Std: []float32{0.353}}
	bgr := Spec{Resize: 40, Height: 32, Width: 32, Channels: 3, BGR: true, Scale: 1, Mean: []float32{103.939, 116.779, 123.68}, Std: ones(3)}
	pad := Spec{Resize: 20, Height: 30, Width: 24, Channels: 3, Scale: 1.0 / 127.5, Mean: []float32{1, 1, 1}, Std: ones(3)}
	return []Spec{ImageNet(), gray, bgr, pad}
}

func sameTensors(t *testing.T, name string, a, b [][]float32) {
	t.Helper()
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Errorf("%s: spec %d value %d: %v != %v", name, i, j, a[i][j], b[i][j])
				break
			}
		}
	}
}

// TestTypesAgree checks that every direct pixel path gives what the
// generic path gives for the same colors, including sub-images with a
// non-zero origin.
func TestTypesAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	specs := testSpecs()
	w, h := 53, 41
	// With alpha, the generic path cannot recover straight colors exactly
	// (At goes through premultiplied RGBA()), so the reference is the direct
	// NRGBA path, which the Pillow fixtures check.
	base := randNRGBA(r, w, h, true)
	want := applyAll(t, specs, base)

	// Sub-image: same pixels, origin (7, 5).
	big := randNRGBA(r, w+20, h+20, true)
	for y := 0; y < h; y++ {
		copy(big.Pix[(y+5)*big.Stride+7*4:], base.Pix[y*base.Stride:y*base.Stride+w*4])
	}
	sameTensors(t, "NRGBA sub-image", want, applyAll(t, specs, big.SubImage(image.Rect(7, 5, 7+w, 5+h))))

	// 16-bit types keep the high byte: put noise in the low byte.
	n64 := image.NewNRGBA64(base.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := base.NRGBAAt(x, y)
			lo := func() uint16 { return uint16(r.IntN(256)) }
			n64.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R)<<8 | lo(), uint16(c.G)<<8 | lo(), uint16(c.B)<<8 | lo(), uint16(c.A)<<8 | lo()})
		}
	}
	sameTensors(t, "NRGBA64", want, applyAll(t, specs, n64))

	// Opaque images: RGBA, RGBA64, Paletted, Gray, Gray16.
	op := randNRGBA(r, w, h, false)
	wantOp := applyAll(t, specs, opaque{op})
	sameTensors(t, "NRGBA opaque", wantOp, applyAll(t, specs, op))
	rgba := image.NewRGBA(op.Rect)
	copy(rgba.Pix, op.Pix)
	sameTensors(t, "RGBA", wantOp, applyAll(t, specs, rgba))
	rgba64 := image.NewRGBA64(op.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := op.NRGBAAt(x, y)
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(c.R)<<8 | 0x7f, uint16(c.G)<<8 | 0x80, uint16(c.B) << 8, 0xffff})
		}
	}
	sameTensors(t, "RGBA64", wantOp, applyAll(t, specs, rgba64))

	pal := image.NewPaletted(op.Rect, nil)
	for i := 0; i < 200; i++ {
		pal.Palette = append(pal.Palette, color.NRGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256))})
	}
	pal.Palette[7] = color.RGBA{10, 20, 30, 255}
	for i := range pal.Pix {
		pal.Pix[i] = uint8(r.IntN(200))
	}
	palRGB := image.NewNRGBA(op.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(pal.At(x, y)).(color.NRGBA)
			if nc, ok := pal.At(x, y).(color.NRGBA); ok {
				c = nc // keep the colour of transparent entries, as Pillow does
			}
			c.A = 255
			palRGB.SetNRGBA(x, y, c)
		}
	}
	sameTensors(t, "Paletted", applyAll(t, specs, palRGB), applyAll(t, specs, pal))

	gray := image.NewGray(op.Rect)
	g16 := image.NewGray16(op.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(r.IntN(256))
		g16.Pix[2*i], g16.Pix[2*i+1] = gray.Pix[i], uint8(r.IntN(256))
	}
	wantGray := applyAll(t, specs, opaque{gray})
	sameTensors(t, "Gray", wantGray, applyAll(t, specs, gray))
	sameTensors(t, "Gray16", wantGray, applyAll(t, specs, g16))

	// Premultiplied RGBA with alpha: un-premultiplied like NRGBAModel.
	pm := image.NewRGBA(base.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			pm.Set(x, y, base.NRGBAAt(x, y))
		}
	}
	sameTensors(t, "RGBA premultiplied", applyAll(t, specs, opaque{pm}), applyAll(t, specs, pm))

	// YCbCr: libjpeg's conversion (not Go's At) for every subsample ratio,
	// also through NYCbCrA.
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		// Origin (3, 5) exercises odd chroma offsets.
		y := image.NewNYCbCrA(image.Rect(3, 5, 3+w, 5+h), ratio)
		for _, p := range [][]uint8{y.Y, y.Cb, y.Cr, y.A} {
			for i := range p {
				p[i] = uint8(r.IntN(256))
			}
		}
		// Reference: the whole image converted at once; Apply's windows
		// must agree with it. For ratios without fancy upsampling it must
		// also be plain replication through libjpeg's table.
		full, err := identity(w, h, 3).Resized(&y.YCbCr, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref := full.(*image.NRGBA)
		ref.Rect = ref.Rect.Add(y.Rect.Min)
		fancy := ratio == image.YCbCrSubsampleRatio420 || ratio == image.YCbCrSubsampleRatio422
		for yy := y.Rect.Min.Y; yy < y.Rect.Max.Y && !fancy; yy++ {
			for xx := y.Rect.Min.X; xx < y.Rect.Max.X; xx++ {
				ci := y.COffset(xx, yy)
				rr, gg, bb := yccToRGB(y.Y[y.YOffset(xx, yy)], y.Cb[ci], y.Cr[ci])
				if c := ref.NRGBAAt(xx, yy); c != (color.NRGBA{rr, gg, bb, 255}) {
					t.Fatalf("%v: pixel (%d,%d) = %v, want %v", ratio, xx, yy, c, color.NRGBA{rr, gg, bb, 255})
				}
			}
		}
		wantY := applyAll(t, specs, ref)
		sameTensors(t, "YCbCr "+ratio.String(), wantY, applyAll(t, specs, &y.YCbCr))
		sameTensors(t, "NYCbCrA "+ratio.String(), wantY, applyAll(t, specs, y))
	}
}

// TestYCbCrTable checks the libjpeg-style table against the defining
// formulas (R = Y + 1.402 (Cr-128), ...) to within rounding.
func TestYCbCrTable(t *testing.T) {
	for _, y := range []int{0, 16, 128, 235, 255} {
		for cb := 0; cb < 256; cb++ {
			for cr := 0; cr < 256; cr++ {
				r, g, b := yccToRGB(uint8(y), uint8(cb), uint8(cr))
				fr := float64(y) + 1.402*float64(cr-128)
				fg := float64(y) - 0.34414*float64(cb-128) - 0.71414*float64(cr-128)
				fb := float64(y) + 1.772*float64(cb-128)
				for _, p := range [][2]float64{{float64(r), fr}, {float64(g), fg}, {float64(b), fb}} {
					if math.Abs(p[0]-math.Max(0, math.Min(255, p[1]))) > 0.51 { // fixed-point constants
						t.Fatalf("ycc(%d,%d,%d) = %d,%d,%d; formula %.2f,%.2f,%.2f", y, cb, cr, r, g, b, fr, fg, fb)
					}
				}
			}
		}
	}
}

func TestCropOrigin(t *testing.T) {
	// Python: int(round((size - crop) / 2.0)), and the padding case.
	for _, c := range []struct{ size, crop, want int }{
		{224, 224, 0}, {225, 224, 0}, {226, 224, 1}, {227, 224, 2}, {229, 224, 2}, {231, 224, 4},
		{341, 224, 58}, {256, 224, 16}, {383, 224, 80}, {223, 224, 0}, {200, 224, -12}, {201, 224, -11},
	} {
		if got := cropOrigin(c.size, c.crop); got != c.want {
			t.Errorf("cropOrigin(%d, %d) = %d, want %d", c.size, c.crop, got, c.want)
		}
	}
	s := ImageNet()
	for _, c := range []struct{ w, h, rw, rh int }{
		{640, 480, 341, 256}, {480, 640, 256, 341}, {451, 300, 384, 256}, {640, 427, 383, 256}, {5, 300, 256, 15360}, {256, 256, 256, 256},
	} {
		g, err := s.geometry(c.w, c.h)
		if err != nil || g.rw != c.rw || g.rh != c.rh {
			t.Errorf("geometry(%d, %d) = %+v, %v; want %dx%d", c.w, c.h, g, err, c.rw, c.rh)
		}
	}
	if _, err := s.geometry(1, 1<<20); err == nil {
		t.Error("absurd aspect ratio accepted")
	}
}

func TestScaleDivisor(t *testing.T) {
	for _, c := range []struct {
		s  float32
		d  float32
		ok bool
	}{{1.0 / 255, 255, true}, {1, 1, true}, {1.0 / 127.5, 0, false}, {0.5, 2, true}, {0.3, 0, false}} {
		d, ok := scaleDivisor(c.s)
		if d != c.d || ok != c.ok {
			t.Errorf("scaleDivisor(%v) = %v, %v", c.s, d, ok)
		}
	}
	// Scale 1/127.5 multiplies, rounding the product to float32 first.
	var scr Scratch
	s := Spec{Height: 1, Width: 1, Channels: 1, Scale: 1.0 / 127.5, Mean: []float32{1}, Std: []float32{1}}
	scr.setLUT(s)
	for v := 0; v < 256; v++ {
		// The explicit conversion matters: without it Go fuses the multiply
		// and the subtract on arm64 (even across statements), and lut[33]
		// comes out one ulp off torch's value.
		x := float32(float32(v) * s.Scale)
		if want := x - 1; scr.lut[0][v] != want {
			t.Fatalf("lut[%d] = %v, want %v", v, scr.lut[0][v], want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := ImageNet().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Spec){
		"resize<0":       func(s *Spec) { s.Resize = -1 },
		"resize>max":     func(s *Spec) { s.Resize = MaxSize + 1 },
		"height0":        func(s *Spec) { s.Height = 0 },
		"width>max":      func(s *Spec) { s.Width = MaxSize + 1 },
		"channels2":      func(s *Spec) { s.Channels = 2 },
		"bgr gray":       func(s *Spec) { s.Channels, s.Mean, s.Std = 1, s.Mean[:1], s.Std[:1] },
		"scale0":         func(s *Spec) { s.Scale = 0 },
		"scale<0":        func(s *Spec) { s.Scale = -1 },
		"scale nan":      func(s *Spec) { s.Scale = float32(math.NaN()) },
		"scale inf":      func(s *Spec) { s.Scale = float32(math.Inf(1)) },
		"mean len":       func(s *Spec) { s.Mean = s.Mean[:2] },
		"std len":        func(s *Spec) { s.Std = nil },
		"std0":           func(s *Spec) { s.Std = []float32{1, 0, 1} },
		"std nan":        func(s *Spec) { s.Std = []float32{1, float32(math.NaN()), 1} },
		"mean inf":       func(s *Spec) { s.Mean = []float32{float32(math.Inf(-1)), 0, 0} },
		"channels0 mean": func(s *Spec) { s.Channels = 0 },
	}
	for name, f := range bad {
		s := ImageNet()
		s.BGR = name == "bgr gray"
		f(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, s)
		} else if !strings.HasPrefix(err.Error(), "preprocess: spec") {
			t.Errorf("%s: error %q", name, err)
		}
		if err := s.Apply(image.NewGray(image.Rect(0, 0, 4, 4)), make([]float32, 224*224*3), nil); err == nil {
			t.Errorf("%s: Apply accepted an invalid spec", name)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	s := ImageNet()
	img := image.NewRGBA(image.Rect(0, 0, 10, 10))
	if err := s.Apply(img, make([]float32, 10), nil); err == nil {
		t.Error("short dst accepted")
	}
	if err := s.Apply(nil, make([]float32, 224*224*3), nil); err == nil {
		t.Error("nil image accepted")
	}
	if err := s.Apply(image.NewRGBA(image.Rect(3, 3, 3, 9)), make([]float32, 224*224*3), nil); err == nil {
		t.Error("empty image accepted")
	}
	if _, err := s.Resized(nil, nil); err == nil {
		t.Error("Resized(nil) accepted")
	}
}

// TestPadding checks CenterCrop's zero padding on a tiny case by hand: a
// 2x1 white image resized to short side 1 stays 2x1; a 4x3 crop pads it
// with (0-mean)/std around.
func TestPadding(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 2, 1))
	img.Pix[0], img.Pix[1] = 255, 255
	s := Spec{Resize: 1, Height: 3, Width: 4, Channels: 1, Scale: 1.0 / 255, Mean: []float32{0.5}, Std: []float32{0.5}}
	dst := make([]float32, 12)
	if err := s.Apply(img, dst, nil); err != nil {
		t.Fatal(err)
	}
	// torchvision: pad left (4-2)//2 = 1, top (3-1)//2 = 1.
	want := []float32{-1, -1, -1, -1, -1, 1, 1, -1, -1, -1, -1, -1}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("got %v, want %v", dst, want)
		}
	}
}

func TestAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nrgba := randNRGBA(r, 320, 240, true)
	rgba := image.NewRGBA(nrgba.Rect)
	copy(rgba.Pix, nrgba.Pix)
	gray := image.NewGray(nrgba.Rect)
	copy(gray.Pix, nrgba.Pix)
	ycc := image.NewYCbCr(nrgba.Rect, image.YCbCrSubsampleRatio420)
	copy(ycc.Y, nrgba.Pix)
	pal := image.NewPaletted(nrgba.Rect, color.Palette{color.Black, color.White, color.NRGBA{1, 2, 3, 4}})
	cmyk := image.NewCMYK(nrgba.Rect)
	for _, s := range []Spec{ImageNet(), testSpecs()[1]} {
		dst := make([]float32, s.Height*s.Width*s.Channels)
		for _, img := range []image.Image{nrgba, rgba, gray, ycc, pal, cmyk} {
			scr := new(Scratch)
			if err := s.Apply(img, dst, scr); err != nil {
				t.Fatal(err)
			}
			n := testing.AllocsPerRun(20, func() {
				if err := s.Apply(img, dst, scr); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("Apply(%T, %d channels) allocates %v times per call", img, s.Channels, n)
			}
		}
	}
}

func BenchmarkApplyImageNet(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, kind := range []string{"RGBA", "YCbCr420"} {
		var img image.Image
		if kind == "RGBA" {
			m := image.NewRGBA(image.Rect(0, 0, 640, 480))
			copy(m.Pix, randNRGBA(r, 640, 480, false).Pix)
			img = m
		} else {
			m := image.NewYCbCr(image.Rect(0, 0, 640, 480), image.YCbCrSubsampleRatio420)
			for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
				for i := range p {
					p[i] = uint8(r.IntN(256))
				}
			}
			img = m
		}
		b.Run(kind, func(b *testing.B) {
			s := ImageNet()
			dst := make([]float32, 224*224*3)
			var scr Scratch
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Apply(img, dst, &scr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// ---- DecodeFile

func TestDecodeFormats(t *testing.T) {
	dir := t.TempDir()
	m := randNRGBA(rand.New(rand.NewPCG(7, 8)), 17, 9, false)
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, m); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, m, nil); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, f := range []string{write("ok.png", pngBuf.Bytes()), write("ok.jpg", jpgBuf.Bytes())} {
		img, err := DecodeFile(f)
		if err != nil || img.Bounds().Dx() != 17 {
			t.Errorf("%s: %v", f, err)
		}
	}
	npy := new(bytes.Buffer)
	if err := WriteNPY(npy, []int{1, 3, 2, 2}, make([]float32, 12)); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ file, want string }{
		{write("empty.png", nil), "empty file"},
		{write("text.png", []byte("hello world, not an image")), "unknown image format"},
		{write("x.npy", npy.Bytes()), "ReadNPYFile"},
		{write("cut.png", pngBuf.Bytes()[:pngBuf.Len()/2]), "truncated"},
		{write("cut.jpg", jpgBuf.Bytes()[:jpgBuf.Len()/2]), "truncated"},
		{write("head.png", pngBuf.Bytes()[:20]), "truncated"},
		{write("bad.png", append(append([]byte{}, pngBuf.Bytes()[:33]...), bytes.Repeat([]byte{0xAB}, 200)...)), "png"},
		{filepath.Join(dir, "missing.png"), "no such file"},
	}
	for _, c := range cases {
		_, err := DecodeFile(c.file)
		if err == nil {
			t.Errorf("%s: no error", c.file)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Base(c.file)) {
			t.Errorf("%s: error %q should name the file and contain %q", c.file, err, c.want)
		}
	}
	old := MaxDecodeBytes
	MaxDecodeBytes = 100
	defer func() { MaxDecodeBytes = old }()
	if _, err := DecodeFile(filepath.Join(dir, "ok.png")); err == nil || !strings.Contains(err.Error(), "17x9") {
		t.Errorf("oversized image: %v", err)
	}
}

// TestFancyUpsampleReference compares the 4:2:0 and 4:2:2 chroma
// interpolation with a direct transcription of libjpeg's loop structure
// (special first and last columns, context row above/below), written
// independently of loadYCbCr's clamped-neighbour form.
func TestFancyUpsampleReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, sz := range [][2]int{{61, 45}, {64, 48}, {5, 3}, {6, 7}, {4, 5}, {3, 2}, {1, 1}} {
		for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio422} {
			w, h := sz[0], sz[1]
			m := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
			for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
				for i := range p {
					p[i] = uint8(r.IntN(256))
				}
			}
			cw := (w + 1) / 2
			ch := h
			if ratio == image.YCbCrSubsampleRatio420 {
				ch = (h + 1) / 2
			}
			up := func(plane []uint8) [][]int {
				row := func(c int) []int {
					c = min(max(c, 0), ch-1)
					out := make([]int, cw)
					for i := range out {
						out[i] = int(plane[c*m.CStride+i])
					}
					return out
				}
				var res [][]int
				for y := 0; y < h; y++ {
					out := make([]int, 2*cw)
					if cw <= 2 { // libjpeg replicates chroma planes of 1 or 2 samples
						in := row(y)
						if ratio == image.YCbCrSubsampleRatio420 {
							in = row(y / 2)
						}
						for x := range out {
							out[x] = in[x/2]
						}
					} else if ratio == image.YCbCrSubsampleRatio422 {
						in := row(y)
						{
							out[0], out[1] = in[0], (in[0]*3+in[1]+2)>>2
							for c := 1; c < cw-1; c++ {
								out[2*c] = (in[c]*3 + in[c-1] + 1) >> 2
								out[2*c+1] = (in[c]*3 + in[c+1] + 2) >> 2
							}
							out[2*cw-2], out[2*cw-1] = (in[cw-1]*3+in[cw-2]+1)>>2, in[cw-1]
						}
					} else {
						in0, in1 := row(y/2), row(y/2-1)
						if y%2 == 1 {
							in1 = row(y/2 + 1)
						}
						sum := func(c int) int { return in0[c]*3 + in1[c] }
						{
							out[0], out[1] = (sum(0)*4+8)>>4, (sum(0)*3+sum(1)+7)>>4
							for c := 1; c < cw-1; c++ {
								out[2*c] = (sum(c)*3 + sum(c-1) + 8) >> 4
								out[2*c+1] = (sum(c)*3 + sum(c+1) + 7) >> 4
							}
							out[2*cw-2], out[2*cw-1] = (sum(cw-1)*3+sum(cw-2)+8)>>4, (sum(cw-1)*4+7)>>4
						}
					}
					res = append(res, out[:w])
				}
				return res
			}
			cb, cr := up(m.Cb), up(m.Cr)
			got, err := identity(w, h, 3).Resized(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			g := got.(*image.NRGBA)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					rr, gg, bb := yccToRGB(m.Y[y*m.YStride+x], uint8(cb[y][x]), uint8(cr[y][x]))
					if c := g.NRGBAAt(x, y); c != (color.NRGBA{rr, gg, bb, 255}) {
						t.Fatalf("%v %dx%d: pixel (%d,%d) = %v, want %v", ratio, w, h, x, y, c, color.NRGBA{rr, gg, bb, 255})
					}
				}
			}
		}
	}
}
