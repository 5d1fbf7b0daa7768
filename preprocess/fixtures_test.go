package preprocess

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Fixtures made by tools/gen_preprocess_fixtures.py with torchvision 0.14.1
// and Pillow 9.4.0; see that script for what each file is.
const pilDir = "testdata/pil"

type fixtureDigest struct {
	TensorShape  []int     `json:"tensor_shape"`
	TensorSHA    string    `json:"tensor_sha256"`
	ChannelSums  []float64 `json:"channel_sums"`
	SampleIndex  []int     `json:"sample_index"`
	SampleValue  []float64 `json:"sample_value"`
	ResizedSize  [2]int    `json:"resized_size"` // width, height
	ResizedSHA   string    `json:"resized_sha256"`
	ResizedIndex []int     `json:"resized_sample_index"`
	ResizedValue []int     `json:"resized_sample_value"`
}

type fixtureCase struct {
	Name       string `json:"name"`
	Input      string `json:"input"`
	Spec       string `json:"spec"`
	ResizedPNG string `json:"resized_png"`
	TensorNPY  string `json:"tensor_npy"`
	fixtureDigest
}

type fixturePhoto struct {
	File string `json:"file"`
	Spec string `json:"spec"`
	fixtureDigest
}

type fixtures struct {
	Versions map[string]string `json:"versions"`
	Specs    map[string]Spec   `json:"specs"`
	Cases    []fixtureCase     `json:"cases"`
	Photos   []fixturePhoto    `json:"photos"`
}

func loadFixtures(t testing.TB) *fixtures {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pilDir, "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// packed returns the pixels of a Resized result as packed RGB or L bytes,
// the layout of numpy's array of a Pillow image.
func packed(img image.Image) []byte {
	switch m := img.(type) {
	case *image.Gray:
		return m.Pix
	case *image.NRGBA:
		out := make([]byte, 0, len(m.Pix)/4*3)
		for i := 0; i < len(m.Pix); i += 4 {
			out = append(out, m.Pix[i:i+3]...)
		}
		return out
	}
	panic("unexpected type")
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tensorStats compares got with a digest and returns the max |diff| over
// the samples (and the full .npy if given) and whether the hash matched.
//
// Channel sums must agree within 1e-6 per value when strict; otherwise the
// largest per-value mean difference of the sums is logged.
func tensorStats(t *testing.T, name string, got []float32, d fixtureDigest, npy string, strict bool) (maxDiff float64, exact bool) {
	exact = shaHex(f32bytes(got)) == d.TensorSHA
	for i, idx := range d.SampleIndex {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[idx])-d.SampleValue[i]))
	}
	if npy != "" {
		shape, want, err := ReadNPYFile(filepath.Join(pilDir, npy))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(got) || len(shape) != 3 {
			t.Fatalf("%s: npy shape %v, have %d values", name, shape, len(got))
		}
		for i := range want {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-want[i])))
		}
	}
	nc := d.TensorShape[len(d.TensorShape)-1]
	for c := 0; c < nc; c++ {
		var s float64
		for i := c; i < len(got); i += nc {
			s += float64(got[i])
		}
		// The sum is over <=180k values; 1e-6 per value bounds any drift.
		tol := 1e-6 * float64(len(got)/nc)
		if !strict {
			t.Logf("%s: channel %d mean differs from torchvision by %.3g", name, c, (s-d.ChannelSums[c])/float64(len(got)/nc))
			continue
		}
		if math.Abs(s-d.ChannelSums[c]) > tol+1e-9*math.Abs(s) {
			t.Errorf("%s: channel %d sum %.6f, torchvision %.6f", name, c, s, d.ChannelSums[c])
		}
	}
	return maxDiff, exact
}

// TestTorchvisionFixtures checks Resized byte for byte against Pillow and
// Apply against torchvision's tensor on every synthetic (input, spec) pair.
func TestTorchvisionFixtures(t *testing.T) {
	f := loadFixtures(t)
	scr := new(Scratch)
	var exactCount int
	var worst float64
	for _, c := range f.Cases {
		spec, ok := f.Specs[c.Spec]
		if !ok {
			t.Fatalf("%s: unknown spec %q", c.Name, c.Spec)
		}
		img, err := DecodeFile(filepath.Join(pilDir, c.Input))
		if err != nil {
			t.Fatal(err)
		}
		res, err := spec.Resized(img, scr)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if b := res.Bounds(); b.Dx() != c.ResizedSize[0] || b.Dy() != c.ResizedSize[1] {
			t.Errorf("%s: resized to %dx%d, torchvision %dx%d", c.Name, b.Dx(), b.Dy(), c.ResizedSize[0], c.ResizedSize[1])
			continue
		}
		gotPix := packed(res)
		if shaHex(gotPix) != c.ResizedSHA {
			msg := "sha256 differs"
			if c.ResizedPNG != "" {
				want, err := DecodeFile(filepath.Join(pilDir, c.ResizedPNG))
				if err != nil {
					t.Fatal(err)
				}
				wp := packed(toSame(want, spec.Channels))
				for i := range wp {
					if wp[i] != gotPix[i] {
						msg += "; first byte " + strconv.Itoa(i) + ": got " + strconv.Itoa(int(gotPix[i])) + " want " + strconv.Itoa(int(wp[i]))
						break
					}
				}
			}
			t.Errorf("%s: resized uint8 image differs from Pillow: %s", c.Name, msg)
		}
		dst := make([]float32, spec.Height*spec.Width*spec.Channels)
		if err := spec.Apply(img, dst, scr); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		d, exact := tensorStats(t, c.Name, dst, c.fixtureDigest, c.TensorNPY, true)
		if d > 1e-6 {
			t.Errorf("%s: tensor max |diff| %g > 1e-6", c.Name, d)
		}
		if exact {
			exactCount++
		}
		worst = math.Max(worst, d)
	}
	t.Logf("%d/%d cases bit-identical to torchvision %s (Pillow %s); max |diff| %g",
		exactCount, len(f.Cases), f.Versions["torchvision"], f.Versions["pillow"], worst)
	if exactCount != len(f.Cases) {
		t.Errorf("only %d/%d cases are bit-identical", exactCount, len(f.Cases))
	}
}

// toSame converts a decoded reference PNG (Gray or RGB) to Resized's types.
func toSame(img image.Image, ch int) image.Image {
	s := Spec{Height: img.Bounds().Dy(), Width: img.Bounds().Dx(), Channels: ch, Scale: 1,
		Mean: make([]float32, ch), Std: ones(ch)}
	out, err := s.Resized(img, nil)
	if err != nil {
		panic(err)
	}
	return out
}

func ones(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// TestImageNetConstants checks that ImageNet() holds the very float32
// values torch uses for the Python literals (decimal -> float64 -> float32
// could in principle differ from Go's decimal -> float32).
func TestImageNetConstants(t *testing.T) {
	f := loadFixtures(t)
	got, want := ImageNet(), f.Specs["imagenet"]
	if got.Resize != want.Resize || got.Height != want.Height || got.Width != want.Width ||
		got.Channels != want.Channels || got.Scale != want.Scale {
		t.Fatalf("ImageNet() = %+v, fixtures %+v", got, want)
	}
	for c := 0; c < 3; c++ {
		if got.Mean[c] != want.Mean[c] || got.Std[c] != want.Std[c] {
			t.Errorf("channel %d: mean %v std %v, torch %v %v", c, got.Mean[c], got.Std[c], want.Mean[c], want.Std[c])
		}
	}
}

const skimageDir = "/work/shared/data/images/skimage"

// TestRealPhotos runs skimage's photos through the ImageNet spec and
// compares with digests of torchvision's output: bit-exact for the PNGs,
// a measured tolerance for the JPEG (Go's decoder is not libjpeg-turbo).
func TestRealPhotos(t *testing.T) {
	if _, err := os.Stat(skimageDir); err != nil {
		t.Skipf("real photos not available: %v", err)
	}
	f := loadFixtures(t)
	scr := new(Scratch)
	for _, p := range f.Photos {
		path := filepath.Join(skimageDir, p.File)
		img, err := DecodeFile(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		spec := f.Specs[p.Spec]
		res, err := spec.Resized(img, scr)
		if err != nil {
			t.Fatal(err)
		}
		pix := packed(res)
		var rdiff int
		for i, idx := range p.ResizedIndex {
			rdiff = max(rdiff, abs(int(pix[idx])-p.ResizedValue[i]))
		}
		dst := make([]float32, spec.Height*spec.Width*spec.Channels)
		if err := spec.Apply(img, dst, scr); err != nil {
			t.Fatal(err)
		}
		d, exact := tensorStats(t, p.File, dst, p.fixtureDigest, "", strings.HasSuffix(p.File, ".png"))
		resizedExact := shaHex(pix) == p.ResizedSHA
		t.Logf("%s: resized %v exact=%v (sampled max |diff| %d levels); tensor exact=%v, sampled max |diff| %.6g",
			p.File, p.ResizedSize, resizedExact, rdiff, exact, d)
		if strings.HasSuffix(p.File, ".png") {
			if !resizedExact || !exact {
				t.Errorf("%s: not bit-identical to torchvision", p.File)
			}
		} else if d > jpegTol {
			t.Errorf("%s: sampled max |diff| %g exceeds the measured JPEG tolerance %g", p.File, d, jpegTol)
		}
	}
}

// jpegTol bounds |Apply - torchvision| for the ImageNet tensor of
// rocket.jpg: measured 0.035014 over the full tensor with
// TestRealPhotosFull (2 levels: 2/255/0.224), 97.43% of values identical.
// The rest is Go's IDCT versus libjpeg-turbo's.
const jpegTol = 0.04

// TestRealPhotosFull compares full tensors when the generator was run with
// --full DIR and PREPROCESS_FULL_DIR=DIR is set; it reports the exact max
// |diff| and the share of identical values for each photo.
func TestRealPhotosFull(t *testing.T) {
	dir := os.Getenv("PREPROCESS_FULL_DIR")
	if dir == "" {
		t.Skip("set PREPROCESS_FULL_DIR to a directory made by gen_preprocess_fixtures.py --full")
	}
	spec := ImageNet()
	for _, name := range []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"} {
		img, err := DecodeFile(filepath.Join(skimageDir, name))
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(name, filepath.Ext(name))
		_, want, err := ReadNPYFile(filepath.Join(dir, base+"_imagenet.npy"))
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, len(want))
		if err := spec.Apply(img, dst, nil); err != nil {
			t.Fatal(err)
		}
		var md float64
		same := 0
		for i := range want {
			md = math.Max(md, math.Abs(float64(dst[i]-want[i])))
			if dst[i] == want[i] {
				same++
			}
		}
		wantRes, err := DecodeFile(filepath.Join(dir, base+"_resized.png"))
		if err != nil {
			t.Fatal(err)
		}
		res, _ := spec.Resized(img, nil)
		gp, wp := packed(res), packed(toSame(wantRes, 3))
		rd, rsame := 0, 0
		for i := range wp {
			rd = max(rd, abs(int(gp[i])-int(wp[i])))
			if gp[i] == wp[i] {
				rsame++
			}
		}
		t.Logf("%s: tensor max |diff| %.6g, %.2f%% identical; resized uint8 max |diff| %d, %.2f%% identical",
			name, md, 100*float64(same)/float64(len(want)), rd, 100*float64(rsame)/float64(len(wp)))
		if strings.HasSuffix(name, ".png") && md != 0 {
			t.Errorf("%s: not bit-identical", name)
		}
		if md > jpegTol {
			t.Errorf("%s: max |diff| %g > %g", name, md, jpegTol)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
