package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// setBudget sets MaxDecodeBytes for one test.
func setBudget(t *testing.T, n int64) {
	t.Helper()
	old := MaxDecodeBytes
	MaxDecodeBytes = n
	t.Cleanup(func() { MaxDecodeBytes = old })
}

// allocated returns how many bytes f allocated (garbage included).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestDecodeBombs: small files declaring images that need far more memory
// than the budget are refused from their header, with one line that names
// the file, the format, the size, what it decodes to, the bytes needed and
// the budget, and without allocating anything like what they declare.
func TestDecodeBombs(t *testing.T) {
	setBudget(t, 256<<20)
	lossyChunk := webpChunk("VP8 ", vp8Frame(4000, 4000), 100<<20)
	lying := webpFile(lossyChunk)
	binary.LittleEndian.PutUint32(lying[4:], 4+100<<20+8)
	cases := []struct {
		name string
		file []byte
		want []string // in the error, besides the name
	}{
		// The bomb: 11000x11000 16-bit RGB, about 1 GB decoded.
		{"rgb16.png", craftPNG(11000, 11000, 16, 2, 0, nil), []string{
			"png image 11000x11000 (RGBA64, 8 bytes/pixel)", "needs 968307074 bytes", "image 968000000 + row buffers 176002 + decoder state 131072)"}},
		{"rgba16.png", craftPNG(8000, 8000, 16, 6, 0, nil), []string{"(NRGBA64, 8 bytes/pixel)", "needs 512259074 bytes"}},
		{"gray16-trns.png", craftPNG(6000, 6000, 16, 0, 0, nil, pngChunk("tRNS", []byte{0, 0})), []string{
			"(NRGBA64 (gray with tRNS), 8 bytes/pixel)", "image 288000000"}},
		{"gray-interlaced.png", craftPNG(12000, 12000, 8, 0, 1, nil), []string{
			"(Gray, 1 byte/pixel)", "image 144000000 + Adam7 pass images 144000000"}},
		{"progressive420.jpg", craftJPEG(16000, 16000, true, 0x22, 0x11, 0x11), []string{
			"jpeg image 16000x16000 (YCbCr 4:2:0, 1.5 bytes/pixel)", "needs 1920131072 bytes", "image 384000000 + progressive coefficients 1536000000"}},
		{"baseline444.jpg", craftJPEG(10000, 10000, false, 0x11, 0x11, 0x11), []string{"(YCbCr 4:4:4, 3 bytes/pixel)", "needs 300131072 bytes ("}},
		{"progressive-gray.jpg", craftJPEG(9000, 9000, true, 0x11), []string{"(Gray, 1 byte/pixel)", "image 81000000 + progressive coefficients 324000000"}},
		{"cmyk.jpg", craftJPEG(9000, 9000, false, 0x11, 0x11, 0x11, 0x11), []string{"(CMYK, 4 bytes/pixel)", "image 324000000 + component planes 324000000"}},
		{"screen.gif", craftGIF(65535, 65535, false), []string{"gif image 65535x65535 (Paletted, 1 byte/pixel)", "image 4294836225 + de-interlacing copy 4294836225"}},
		{"huge.bmp", craftBMP(16000, 16000), []string{"bmp image 16000x16000 (RGBA or NRGBA, 4 bytes/pixel)", "needs 1024131072 bytes ("}},
		// 64 MB of pixels, but one deflate strip may inflate to 8 bytes a
		// pixel whatever the depth.
		{"one-strip.tiff", tiffGray(8000, 8000, 8, 8, 0, 0, nil), []string{
			"tiff image 8000x8000 (Gray, 1 byte/pixel)", "image 64000000 + strip buffer (8000x8000, compressed) 1536000000"}},
		{"gray16.tiff", tiffGray(12000, 12000, 16, 8, 16, 0, nil), []string{"(Gray16, 2 bytes/pixel)", "image 288000000 + strip buffer (12000x16, compressed) 4608000"}},
		{"lossless.webp", webpFile(webpChunk("VP8L", vp8lHeader(16384, 16384), 0)), []string{
			"webp image 16384x16384 (NRGBA, 4 bytes/pixel)", "image 1073741824 + lossless transforms 805306368 + lossless Huffman tables 149094400"}},
		// VP8X says YCbCr; the chunk that follows is lossless (NRGBA).
		{"vp8x-lossless.webp", webpFile(vp8xChunk(9000, 9000, false), webpChunk("VP8L", vp8lHeader(9000, 9000), 0)), []string{"(NRGBA, 4 bytes/pixel)", "image 324000000"}},
		{"alpha.webp", webpFile(vp8xChunk(16000, 16000, true), webpChunk("ALPH", []byte{1}, 0), webpChunk("VP8 ", vp8Frame(16000, 16000), 0)), []string{
			"(NYCbCrA, 2.5 bytes/pixel)", "lossless alpha image"}},
		// A chunk claiming 100 MB in a 60-byte file: x/image/vp8 would
		// allocate its partitions at the claimed size.
		{"lying-chunk.webp", lying, []string{"webp data is truncated", `chunk "VP8 " of 104857600 bytes at offset 12 runs past the end of the`}},
	}
	for _, c := range cases {
		var err error
		n := allocated(func() { _, err = Decode(bytes.NewReader(c.file), c.name) })
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		msg := err.Error()
		for _, w := range append(c.want, "preprocess: "+c.name+": ") {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error\n\t%s\nwant %q", c.name, msg, w)
			}
		}
		if strings.Contains(msg, "needs") && (!errors.Is(err, ErrOverBudget) || !strings.HasSuffix(msg, "over the memory budget: MaxDecodeBytes is 268435456 bytes (256.0 MiB)")) {
			t.Errorf("%s: error %q does not end with the budget", c.name, msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: error is not one line: %q", c.name, msg)
		}
		if n > 1<<20 {
			t.Errorf("%s: refusing it allocated %d bytes", c.name, n)
		}
	}
}

// TestDecodeCostNormal: what a normal 24-megapixel photo needs, counted
// from the header, is inside the default budget.
func TestDecodeCostNormal(t *testing.T) {
	cases := []struct {
		name string
		file []byte
		want int64
	}{
		{"baseline 4:2:0 JPEG", craftJPEG(6000, 4000, false, 0x22, 0x11, 0x11), 36_000_000},
		{"baseline 4:4:4 JPEG", craftJPEG(6000, 4000, false, 0x11, 0x11, 0x11), 72_000_000},
		{"progressive 4:2:0 JPEG", craftJPEG(6000, 4000, true, 0x22, 0x11, 0x11), 180_000_000},
		{"8-bit RGB PNG", craftPNG(6000, 4000, 8, 2, 0, nil), 96_000_000 + 2*(6000*8+1)},
		{"16-bit RGB PNG", craftPNG(6000, 4000, 16, 2, 0, nil), 192_000_000 + 2*(6000*8+1)},
		{"TIFF in strips of 16 rows", tiffGray(6000, 4000, 8, 8, 16, 0, nil), 24_000_000 + 3*6000*16*8 + 250*24},
		{"TIFF in 256x256 tiles", tiffGray(6000, 4000, 8, 8, 0, 256, nil), 24_000_000 + 3*256*256*8 + 24*16*24},
	}
	for _, c := range cases {
		got := headerCost(t, c.file)
		c.want += decoderState
		if got.total() != c.want {
			t.Errorf("%s: cost %d, want %d", c.name, got.total(), c.want)
		}
		if got.total() > MaxDecodeBytes {
			t.Errorf("%s: %d is over the default budget", c.name, got.total())
		}
	}
}

// encodedImages are small real files (w x h, with some fixed sizes) of
// every format and the color models their decoders return.
func encodedImages(t testing.TB, w, h int) map[string][]byte {
	r := rand.New(rand.NewPCG(11, 12))
	nrgba := randNRGBA(r, w, h, true)
	rect := nrgba.Rect
	rgba := image.NewRGBA(rect)
	gray := image.NewGray(rect)
	gray16 := image.NewGray16(rect)
	rgba64 := image.NewRGBA64(rect)
	nrgba64 := image.NewNRGBA64(rect)
	pal := image.NewPaletted(rect, color.Palette{color.Black, color.White, color.RGBA{200, 10, 30, 255}})
	for i := range w * h {
		x, y := i%w, i/w
		c := nrgba.NRGBAAt(x, y)
		rgba.Set(x, y, color.RGBA{c.R, c.G, c.B, 255})
		gray.SetGray(x, y, color.Gray{c.R})
		gray16.SetGray16(x, y, color.Gray16{uint16(c.R) << 8})
		rgba64.Set(x, y, color.RGBA64{uint16(c.R) << 8, uint16(c.G) << 8, 0, 0xffff})
		nrgba64.Set(x, y, color.NRGBA64{uint16(c.R) << 8, uint16(c.G) << 8, 0, 0x8000})
		pal.SetColorIndex(x, y, uint8(i%3))
	}
	out := map[string][]byte{}
	enc := func(name string, f func(*bytes.Buffer) error) {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b.Bytes()
	}
	for name, m := range map[string]image.Image{"gray": gray, "gray16": gray16, "rgba": rgba, "nrgba": nrgba, "rgba64": rgba64, "nrgba64": nrgba64, "paletted": pal} {
		enc(name+".png", func(b *bytes.Buffer) error { return png.Encode(b, m) })
		enc(name+".tiff", func(b *bytes.Buffer) error { return tiff.Encode(b, m, nil) })
		enc(name+".deflate.tiff", func(b *bytes.Buffer) error {
			return tiff.Encode(b, m, &tiff.Options{Compression: tiff.Deflate})
		})
	}
	enc("gray.jpg", func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, nil) })
	enc("ycbcr420.jpg", func(b *bytes.Buffer) error { return jpeg.Encode(b, nrgba, nil) })
	enc("paletted.gif", func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) })
	enc("gray.bmp", func(b *bytes.Buffer) error { return bmp.Encode(b, gray) })
	enc("paletted.bmp", func(b *bytes.Buffer) error { return bmp.Encode(b, pal) })
	enc("rgba.bmp", func(b *bytes.Buffer) error { return bmp.Encode(b, rgba) })
	enc("nrgba.bmp", func(b *bytes.Buffer) error { return bmp.Encode(b, nrgba) })
	out["progressive-gray.jpg"] = craftProgressiveGray()
	// 4x4 gray, Adam7: the passes hold 1, 0, 0, 1, 2x1, 2x2 and 4x2
	// pixels, each row after a filter byte: 23 bytes.
	out["interlaced.png"] = craftPNG(4, 4, 8, 0, 1, make([]byte, 23))
	out["gray-trns.png"] = craftPNG(4, 4, 8, 0, 0, make([]byte, 4*5), pngChunk("tRNS", []byte{0, 0}))
	out["lossy.webp"] = webpLossy1
	out["lossless.webp"] = webpLossless1
	out["lossy-alpha.webp"] = webpLossyAlpha1
	out["gray.tiled.tiff"] = tiffGray(16, 16, 8, 8, 0, 16, make([]byte, 256))
	out["gray16.crafted.tiff"] = tiffGray(16, 16, 16, 1, 0, 0, make([]byte, 512))
	return out
}

// TestDecodeBudgetEachModel lowers the budget to exactly what each file's
// header says it needs: it decodes there and not one byte lower, and the
// image it decodes to is the kind counted, no larger than counted.
func TestDecodeBudgetEachModel(t *testing.T) {
	for name, b := range encodedImages(t, 37, 23) {
		c := headerCost(t, b)
		total := c.total()
		setBudget(t, total)
		img, err := Decode(bytes.NewReader(b), name)
		if err != nil {
			t.Errorf("%s: within its own cost %d: %v", name, total, err)
			continue
		}
		if got := imageBytes(img); got > c.image {
			t.Errorf("%s: %T holds %d bytes, counted %d", name, img, got, c.image)
		}
		kind := strings.TrimPrefix(fmt.Sprintf("%T", img), "*image.")
		words := strings.FieldsFunc(c.kind, func(r rune) bool { return r == ' ' || r == ',' || r == '(' || r == ')' })
		if !slices.Contains(words, kind) {
			t.Errorf("%s: decoded %T, counted as %q", name, img, c.kind)
		}
		MaxDecodeBytes = total - 1
		_, err = Decode(bytes.NewReader(b), name)
		if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), fmt.Sprintf("needs %d bytes", total)) ||
			!strings.Contains(err.Error(), fmt.Sprintf("MaxDecodeBytes is %d bytes", total-1)) {
			t.Errorf("%s: one byte under its cost: %v", name, err)
		}
	}
}

// TestDecodeAllocations checks the counts against what the decoders really
// allocate (garbage included), on images large enough that the fixed
// overheads (tables, bufio and zlib buffers) do not dominate.
func TestDecodeAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	m := randNRGBA(r, 640, 480, false)
	gray := image.NewGray(m.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = m.Pix[4*i]
	}
	files := map[string][]byte{}
	var b bytes.Buffer
	png.Encode(&b, m)
	files["png"] = bytes.Clone(b.Bytes())
	b.Reset()
	jpeg.Encode(&b, m, nil)
	files["jpeg"] = bytes.Clone(b.Bytes())
	b.Reset()
	tiff.Encode(&b, gray, &tiff.Options{Compression: tiff.Deflate})
	files["tiff"] = bytes.Clone(b.Bytes())
	b.Reset()
	gif.Encode(&b, m, nil)
	files["gif"] = bytes.Clone(b.Bytes())
	// Go's own decoder test images: progressive and subsampled JPEGs,
	// interlaced GIFs and PNGs of every kind.
	var dir string
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		dir = filepath.Join(strings.TrimSpace(string(out)), "src", "image", "testdata")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && !strings.Contains(e.Name(), "truncated") {
			files[e.Name()] = b
		}
	}
	if len(ents) == 0 {
		t.Logf("no Go tree's image/testdata (%q): checked only the images made here", dir)
	}
	for name, f := range files {
		if _, _, err := image.DecodeConfig(bytes.NewReader(f)); err != nil {
			continue
		}
		c := headerCost(t, f)
		var err error
		n := allocated(func() { _, err = Decode(bytes.NewReader(f), name) })
		if err != nil {
			if !strings.HasSuffix(name, ".jpeg") { // a few use features Go lacks
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		t.Logf("%s: counted %d, allocated %d", name, c.total(), n)
		if int64(n) > c.total()+64<<10 {
			t.Errorf("%s: counted %d bytes, the decoder allocated %d", name, c.total(), n)
		}
	}
}

// TestApplyBudget: Apply counts the image and its scratch buffers, and
// refuses (with one line naming the image and the sizes) what does not
// fit, before allocating.
func TestApplyBudget(t *testing.T) {
	img := randNRGBA(rand.New(rand.NewPCG(1, 2)), 300, 200, false)
	for _, s := range append(testSpecs(), identity(300, 200, 3)) {
		dst := make([]float32, s.Height*s.Width*s.Channels)
		setBudget(t, 1)
		err := s.Apply(img, dst, nil)
		if !errors.Is(err, ErrOverBudget) {
			t.Fatalf("%+v: budget 1: %v", s, err)
		}
		msg := err.Error()
		var need int64
		i := strings.Index(msg, " needs ")
		if i < 0 {
			t.Fatalf("error %q", msg)
		}
		fmt.Sscanf(msg[i:], " needs %d bytes", &need)
		if need <= int64(len(img.Pix)) || !strings.Contains(msg, "preprocessing the 300x200 *image.NRGBA into") ||
			!strings.Contains(msg, fmt.Sprintf("image %d + converted source rows", len(img.Pix))) {
			t.Errorf("%+v: error %q", s, msg)
		}
		MaxDecodeBytes = need - 1
		if err := s.Apply(img, dst, nil); !errors.Is(err, ErrOverBudget) {
			t.Errorf("%+v: one byte short: %v", s, err)
		}
		MaxDecodeBytes = need
		var scr Scratch
		if err := s.Apply(img, dst, &scr); err != nil {
			t.Errorf("%+v: within %d: %v", s, need, err)
		}
		held := int64(cap(scr.src)+cap(scr.tmp)+cap(scr.out)) + 4*int64(cap(scr.acc)) + scr.h.bytes(true) + scr.v.bytes(true)
		if held+int64(len(img.Pix)) > need {
			t.Errorf("%+v: scratch holds %d bytes, counted %d", s, held, need-int64(len(img.Pix)))
		}
	}
	// The scratch of a large image is a band of converted rows and the
	// resized rows, not a converted copy of the whole image.
	big := image.NewGray16(image.Rect(0, 0, 4000, 3000))
	setBudget(t, int64(len(big.Pix))+4<<20)
	if err := ImageNet().Apply(big, make([]float32, 224*224*3), nil); err != nil {
		t.Errorf("4000x3000 Gray16 with 4 MiB of scratch: %v", err)
	}
}

// TestApplyBands: converting the source in bands of rows gives the same
// result whatever the band size.
func TestApplyBands(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	nrgba := randNRGBA(r, 211, 157, true)
	ycc := image.NewYCbCr(nrgba.Rect, image.YCbCrSubsampleRatio420)
	for _, p := range [][]uint8{ycc.Y, ycc.Cb, ycc.Cr} {
		for i := range p {
			p[i] = uint8(r.IntN(256))
		}
	}
	pal := image.NewPaletted(nrgba.Rect, color.Palette{color.Black, color.White, color.NRGBA{1, 2, 3, 4}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(r.IntN(3))
	}
	for _, img := range []image.Image{nrgba, ycc, pal, opaque{nrgba}} {
		want := applyAll(t, testSpecs(), img)
		for _, band := range []int64{1, 700, 5000} {
			old := loadBand
			loadBand = band
			got := applyAll(t, testSpecs(), img)
			loadBand = old
			sameTensors(t, fmt.Sprintf("%T band %d", img, band), want, got)
		}
	}
}

// TestValidateParams: every bound of Validate, with the field and value in
// the error.
func TestValidateParams(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name string
		f    func(*Spec)
		want string // "" for a spec that must pass
	}{
		{"imagenet", func(s *Spec) {}, ""},
		{"caffe raw pixels", func(s *Spec) { s.Scale, s.Mean, s.Std = 1, []float32{103.939, 116.779, 123.68}, ones(3) }, ""},
		{"mmcv", func(s *Spec) {
			s.Scale, s.Mean, s.Std = 1, []float32{123.675, 116.28, 103.53}, []float32{58.395, 57.12, 57.375}
		}, ""},
		{"tf [-1,1]", func(s *Spec) { s.Scale, s.Mean, s.Std = 1.0/127.5, ones(3), ones(3) }, ""},
		{"smallest", func(s *Spec) { s.Scale, s.Std = 1e-6, []float32{1e-6, 1e-6, 1e-6} }, ""},
		{"largest", func(s *Spec) { s.Scale, s.Mean, s.Std = 1e6, []float32{-1e6, 1e6, 0}, []float32{1e6, 1e6, 1e6} }, ""},
		{"std 1e-45", func(s *Spec) { s.Std[0] = 1e-45 }, "spec std[0] = 1e-45 is outside [1e-06, 1e+06]"},
		{"std subnormal", func(s *Spec) { s.Std[2] = 1e-39 }, "spec std[2] = 1e-39 is outside"},
		{"std 1e-7", func(s *Spec) { s.Std[1] = 1e-7 }, "spec std[1] = 1e-07 is outside"},
		{"std 0", func(s *Spec) { s.Std[1] = 0 }, "spec std[1] = 0 is outside"},
		{"std negative", func(s *Spec) { s.Std[1] = -0.2 }, "spec std[1] = -0.2 is outside"},
		{"std huge", func(s *Spec) { s.Std[0] = 1e7 }, "spec std[0] = 1e+07 is outside"},
		{"std NaN", func(s *Spec) { s.Std[0] = nan }, "spec std[0] = NaN is not finite"},
		{"std Inf", func(s *Spec) { s.Std[0] = inf }, "spec std[0] = +Inf is not finite"},
		{"mean NaN", func(s *Spec) { s.Mean[1] = nan }, "spec mean[1] = NaN is not finite"},
		{"mean -Inf", func(s *Spec) { s.Mean[2] = -inf }, "spec mean[2] = -Inf is not finite"},
		{"mean huge", func(s *Spec) { s.Mean[2] = -2e6 }, "spec mean[2] = -2e+06 is outside [-1e+06, 1e+06]"},
		{"scale NaN", func(s *Spec) { s.Scale = nan }, "spec scale = NaN is not finite"},
		{"scale Inf", func(s *Spec) { s.Scale = inf }, "spec scale = +Inf is not finite"},
		{"scale 0", func(s *Spec) { s.Scale = 0 }, "spec scale = 0 is outside"},
		{"scale tiny", func(s *Spec) { s.Scale = 1e-30 }, "spec scale = 1e-30 is outside"},
		{"scale huge", func(s *Spec) { s.Scale = 1e30 }, "spec scale = 1e+30 is outside"},
		{"resize -1", func(s *Spec) { s.Resize = -1 }, "spec resize -1 out of range 0..8192"},
		{"resize huge", func(s *Spec) { s.Resize = 1 << 20 }, "spec resize 1048576 out of range"},
		{"height 0", func(s *Spec) { s.Height = 0 }, "spec height 0 out of range 1..8192"},
		{"height -5", func(s *Spec) { s.Height = -5 }, "spec height -5 out of range"},
		{"width huge", func(s *Spec) { s.Width = 16385 }, "spec width 16385 out of range 1..8192"},
		{"channels 4", func(s *Spec) { s.Channels = 4 }, "spec channels 4: want 1 or 3"},
		{"channels 0", func(s *Spec) { s.Channels = 0 }, "spec channels 0"},
		{"bgr gray", func(s *Spec) { s.BGR, s.Channels, s.Mean, s.Std = true, 1, s.Mean[:1], s.Std[:1] }, "spec bgr needs 3 channels"},
		{"std count", func(s *Spec) { s.Std = s.Std[:2] }, "spec has 3 mean and 2 std values for 3 channels"},
	}
	for _, c := range cases {
		s := ImageNet()
		c.f(&s)
		err := s.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), "preprocess: "+c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

// TestApplyFinite: with any spec Validate accepts, Apply's output is
// finite for every pixel value: the corners of the parameter ranges, on
// an image holding all 256 levels.
func TestApplyFinite(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	for _, scale := range []float32{1e-6, 1.0 / 255, 1e6} {
		for _, mean := range []float32{-1e6, 0, 1e6} {
			for _, std := range []float32{1e-6, 1, 1e6} {
				s := Spec{Height: 16, Width: 16, Channels: 1, Scale: scale, Mean: []float32{mean}, Std: []float32{std}}
				dst := make([]float32, 256)
				if err := s.Apply(img, dst, nil); err != nil {
					t.Fatal(err)
				}
				for i, v := range dst {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("scale %v mean %v std %v: value %d is %v", scale, mean, std, i, v)
					}
				}
			}
		}
	}
}

// TestNPYBudget: the array a header declares must fit in the budget, as
// float32 (twice for Fortran order or a stream), before any data is read.
func TestNPYBudget(t *testing.T) {
	setBudget(t, 1000)
	c250 := npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (250,), }", make([]byte, 1000), false)
	if _, _, err := readNPY(bytes.NewReader(c250), int64(len(c250))); err != nil {
		t.Errorf("1000 bytes within 1000: %v", err)
	}
	cases := []struct {
		name string
		file []byte
		size int64
		want string
	}{
		{"u1 grows 4x", npyFile(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (251,), }", make([]byte, 251), false), 0,
			"npy: reading shape [251] of |u1 as float32 needs 1004 bytes"},
		{"fortran", npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (10, 13), }", make([]byte, 520), false), 0,
			"needs 1040 bytes (0.0 MiB; image 520 + Fortran-order transpose 520)"},
		{"stream", c250, -1, "needs 1500 bytes (0.0 MiB; image 1000 + growing the buffer 500)"},
		{"lying stream", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (10000, 10000), }", nil, false), -1,
			"shape [10000 10000] of <f8 as float32 needs 600000000 bytes"},
	}
	for _, c := range cases {
		size := c.size
		if size == 0 {
			size = int64(len(c.file))
		}
		_, _, err := readNPY(bytes.NewReader(c.file), size)
		if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "MaxDecodeBytes is 1000 bytes") {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestDimensionOverflow: image/png refuses a width x height that int
// cannot hold (32-bit platforms: 60000x60000), before any budget check;
// the error is then an ErrOverBudget naming the size from the header.
func TestDimensionOverflow(t *testing.T) {
	head := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), 0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60)
	err := decodeError("bomb.png", "png", head, errors.New("png: unsupported feature: dimension overflow"))
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "60000x60000") || !strings.Contains(err.Error(), "bomb.png") {
		t.Errorf("%v", err)
	}
}
