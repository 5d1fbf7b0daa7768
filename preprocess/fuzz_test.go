package preprocess

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzBudget is MaxDecodeBytes while fuzzing: small, so that each input
// decodes quickly, and the property is the same at any size.
const fuzzBudget = 8 << 20

// FuzzDecodeImage decodes arbitrary bytes behind the budget: no panic; an
// image that decodes is no larger than its header said (the count the
// budget is checked against) nor than the budget; and Apply turns it into
// finite values with a color and a gray spec. Seeds, committed under
// testdata/fuzz/FuzzDecodeImage (written by go test -run
// TestDecodeSeeds -write-decode-seeds): tiny files of every format and
// color model, and header bombs of each format.
//
//	go test -run '^$' -fuzz '^FuzzDecodeImage$' -fuzztime 20s ./preprocess
func FuzzDecodeImage(f *testing.F) {
	specs := []Spec{
		{Resize: 0, Height: 8, Width: 8, Channels: 3, Scale: 1.0 / 255, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
		{Resize: 10, Height: 8, Width: 6, Channels: 1, Scale: 1, Mean: []float32{100}, Std: []float32{1}},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		old := MaxDecodeBytes
		MaxDecodeBytes = fuzzBudget
		defer func() { MaxDecodeBytes = old }()
		img, err := Decode(bytes.NewReader(b), "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		bounds := img.Bounds()
		if bounds.Empty() {
			t.Fatalf("empty image %v", bounds)
		}
		counted := headerCost(t, b)
		if n := imageBytes(img); n > counted.image || n > fuzzBudget {
			t.Fatalf("%T %v holds %d bytes; the header said %d (%s), the budget is %d", img, bounds, n, counted.image, counted.kind, fuzzBudget)
		}
		var scr Scratch
		for _, s := range specs {
			dst := make([]float32, s.Height*s.Width*s.Channels)
			if err := s.Apply(img, dst, &scr); err != nil {
				if errors.Is(err, ErrOverBudget) {
					continue
				}
				t.Fatalf("Apply %T %v: %v", img, bounds, err)
			}
			for i, v := range dst {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("Apply %T: value %d is %v", img, i, v)
				}
			}
		}
	})
}

// headerCost is what decode counts for the file b from its header.
func headerCost(t *testing.T, b []byte) cost {
	r := bytes.NewReader(b)
	cfg, format, err := decodeConfig(r, isTIFFHeader(b))
	if err != nil {
		t.Fatalf("DecodeConfig: %v", err)
	}
	r.Seek(0, 0)
	c, err := decodeCost(r, int64(len(b)), format, cfg)
	if err != nil {
		t.Fatalf("decodeCost: %v", err)
	}
	return c
}

var writeDecodeSeeds = flag.Bool("write-decode-seeds", false, "write FuzzDecodeImage's seed corpus")

// decodeSeeds are FuzzDecodeImage's seeds: name, bytes, and whether the
// file decodes (else its header is refused by the budget).
func decodeSeeds(t *testing.T) map[string]struct {
	b  []byte
	ok bool
} {
	seeds := map[string]struct {
		b  []byte
		ok bool
	}{}
	all := encodedImages(t, 8, 6)
	for _, n := range []string{
		"gray.png", "gray16.png", "rgba.png", "nrgba64.png", "paletted.png", "interlaced.png", "gray-trns.png",
		"gray.jpg", "ycbcr420.jpg", "progressive-gray.jpg", "paletted.gif", "paletted.bmp", "rgba.bmp",
		"gray.deflate.tiff", "rgba64.tiff", "gray.tiled.tiff", "lossy.webp", "lossless.webp", "lossy-alpha.webp",
	} {
		seeds[n] = struct {
			b  []byte
			ok bool
		}{all[n], true}
	}
	seeds["interlaced.gif"] = struct {
		b  []byte
		ok bool
	}{craftGIF(1, 1, true), true}
	for n, b := range map[string][]byte{
		// The bomb: 11000x11000 16-bit RGB with a tiny body.
		"bomb-rgb16-11000.png":       craftPNG(11000, 11000, 16, 2, 0, make([]byte, 64)),
		"bomb-progressive-16000.jpg": craftJPEG(16000, 16000, true, 0x22, 0x11, 0x11),
		"bomb-screen-65535.gif":      craftGIF(65535, 65535, false),
		"bomb-16000.bmp":             craftBMP(16000, 16000),
		"bomb-one-strip-8000.tiff":   tiffGray(8000, 8000, 8, 8, 0, 0, make([]byte, 64)),
		"bomb-lossless-16384.webp":   webpFile(webpChunk("VP8L", vp8lHeader(16384, 16384), 0)),
	} {
		seeds[n] = struct {
			b  []byte
			ok bool
		}{b, false}
	}
	return seeds
}

// TestDecodeSeeds checks the committed corpus: every seed is there, the
// small files decode and the bombs are refused by the budget (at the
// default budget; the fuzz budget is smaller still).
func TestDecodeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeImage")
	for name, s := range decodeSeeds(t) {
		p := filepath.Join(dir, name)
		if *writeDecodeSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.b)) + ")\n"
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("seed %s: %v (write the corpus with -write-decode-seeds)", name, err)
			continue
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		q, ok := strings.CutPrefix(lines[min(1, len(lines)-1)], "[]byte(")
		if !ok || lines[0] != "go test fuzz v1" {
			t.Errorf("seed %s: not a corpus file", name)
			continue
		}
		b, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if err != nil {
			t.Errorf("seed %s: %v", name, err)
			continue
		}
		_, err = Decode(strings.NewReader(b), name)
		switch {
		case s.ok && err != nil:
			t.Errorf("seed %s: %v", name, err)
		case !s.ok && !errors.Is(err, ErrOverBudget):
			t.Errorf("seed %s: want the budget's error, got %v", name, err)
		}
	}
}
