package edgeresnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
)

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

func maxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func argmax[T float32 | float64](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func readNPY(t testing.TB, path string) ([]int, []float32) {
	t.Helper()
	shape, data, err := preprocess.ReadNPYFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return shape, data
}

// TestPyTorchFixtures runs every ONNX fixture made by tools/make_fixtures.py
// (both the BN-folded and the BN-kept export of each model) on its input,
// directly and through a model image round trip, and compares with
// PyTorch's logits: max|Δ| <= 1e-4 * max|logit|.
func TestPyTorchFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/models/*.onnx")
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata/models (run tools/make_fixtures.py)")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".onnx")
		base := strings.TrimSuffix(name, "_bn")
		t.Run(name, func(t *testing.T) {
			shape, input := readNPY(t, filepath.Join("testdata/models", base+".input.npy"))
			_, want := readNPY(t, filepath.Join("testdata/models", base+".logits.npy"))
			fm, err := ImportONNXFile(file, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := firmware.Encode(fm)
			if err != nil {
				t.Fatal(err)
			}
			for _, via := range []string{"onnx", "image"} {
				var m *Model
				if via == "onnx" {
					m, err = FromModel(fm)
				} else {
					m, err = LoadBytes(data)
				}
				if err != nil {
					t.Fatal(err)
				}
				s, err := m.NewSession(WithThreads(2))
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.RunTensor(shape, input) // NCHW, or NHWC for keras_nhwc (the model's layout travels in its metadata)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d outputs, want %d", via, len(got), len(want))
				}
				if d, tol := maxDiff(got, want), 1e-4*maxAbs(want); d > tol {
					t.Errorf("%s: max|Δ| %.3g > %.3g", via, d, tol)
				}
				s.Close()
			}
		})
	}
}

// sharedData locates ../shared/data (beside the checkout), which holds real
// models and images written by no one here.
func sharedData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "shared", "data")
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Skipf("real test data not found at %s (it sits beside the checkout in CI): %v", dir, err)
	}
	return dir
}

// cifarImages reads the CIFAR-10 binary layout: label byte + 1024 R, G, B.
func cifarImages(t *testing.T, path string, n int) (imgs [][3072]byte, labels []int) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n && (i+1)*3073 <= len(data); i++ {
		rec := data[i*3073 : (i+1)*3073]
		labels = append(labels, int(rec[0]))
		var px [3072]byte
		copy(px[:], rec[1:])
		imgs = append(imgs, px)
	}
	return imgs, labels
}

func readF32(t *testing.T, path string) []float32 {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// TestRealCIFAR runs the pretrained CIFAR-10 ResNet-20 (two ONNX exports:
// BN folded with a run-time pad subgraph, and BN kept) and the MLPerf Tiny
// ResNet-8 on the Pillow-decoded 1k reference images and compares with
// PyTorch's outputs: max|Δ| <= 1e-4 * max|ref| per image, and PyTorch's
// top-1 accuracy.
func TestRealCIFAR(t *testing.T) {
	dir := sharedData(t)
	n := 1000
	if testing.Short() {
		n = 40
	}
	imgs, labels := cifarImages(t, filepath.Join(dir, "images/cifar10_test_1k_pil.bin"), n)
	cases := []struct {
		model, ref string
		raw        bool    // input 0..255 without normalization
		top1       float64 // PyTorch's top-1 on all 1000
	}{
		{"onnx/cifar10_resnet20_opset13.onnx", "reference/cifar10_resnet20_logits_1k.f32", false, 0.804},
		{"onnx/cifar10_resnet20_opset13_bn_simplified.onnx", "reference/cifar10_resnet20_logits_1k.f32", false, 0.804},
		{"onnx/mlperf_tiny_resnet8_opset13.onnx", "reference/mlperf_tiny_resnet8_probs_1k.f32", true, 0.751},
	}
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	for _, c := range cases {
		t.Run(filepath.Base(c.model), func(t *testing.T) {
			m, err := Load(filepath.Join(dir, c.model))
			if err != nil {
				t.Fatal(err)
			}
			ref := readF32(t, filepath.Join(dir, c.ref))
			s, err := m.NewSession(WithThreads(2))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in := s.Input()
			correct, agree := 0, 0
			worst := 0.0
			for i, px := range imgs {
				for p := 0; p < 1024; p++ {
					for ch := 0; ch < 3; ch++ {
						v := float32(px[ch*1024+p])
						if !c.raw {
							v = (v/255 - mean[ch]) / std[ch]
						}
						in[p*3+ch] = v
					}
				}
				out, err := s.Run(nil)
				if err != nil {
					t.Fatal(err)
				}
				want := ref[i*10 : i*10+10]
				d := maxDiff(out, want) / maxAbs(want)
				worst = math.Max(worst, d)
				if d > 1e-4 {
					t.Errorf("image %d: max|Δ| %.3g relative", i, d)
				}
				if argmax(out) == labels[i] {
					correct++
				}
				if argmax(out) == argmax(want) {
					agree++
				}
			}
			acc := float64(correct) / float64(len(imgs))
			t.Logf("%d images: top-1 %.1f%%, agreement with PyTorch %d/%d, worst relative Δ %.2g", len(imgs), 100*acc, agree, len(imgs), worst)
			if len(imgs) == 1000 && math.Abs(acc-c.top1) > 1e-9 {
				t.Errorf("top-1 %.3f, PyTorch has %.3f", acc, c.top1)
			}
		})
	}
}

// TestSessionAllocatesNothing checks the zero-allocation promise for a
// ResNet-18 (basic blocks) and a ResNet-50 (bottlenecks), at 1 and 2
// threads, for Run and for Classify of an in-memory image.
func TestSessionAllocatesNothing(t *testing.T) {
	for _, depth := range []int{18, 50} {
		g, err := resnet.Build(resnet.Config{Depth: depth, Height: 64, Width: 64, Classes: 10}, resnet.HeInit(3))
		if err != nil {
			t.Fatal(err)
		}
		spec := preprocess.ImageNet()
		spec.Resize, spec.Height, spec.Width = 72, 64, 64
		m, err := FromModel(&firmware.Model{Graph: g, Meta: firmware.Meta{Preprocess: spec}})
		if err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 100, 80))
		for i := range img.Pix {
			img.Pix[i] = byte(i * 7)
		}
		for _, threads := range []int{1, 2} {
			s, err := m.NewSession(WithThreads(threads))
			if err != nil {
				t.Fatal(err)
			}
			s.Classify(img, 5) // warm the preprocessing scratch
			if a := testing.AllocsPerRun(3, func() { s.Run(nil) }); a != 0 {
				t.Errorf("resnet%d, %d threads: Run allocates %v times", depth, threads, a)
			}
			if a := testing.AllocsPerRun(3, func() { s.Classify(img, 5) }); a != 0 {
				t.Errorf("resnet%d, %d threads: Classify allocates %v times", depth, threads, a)
			}
			s.Close()
		}
	}
}

func TestTopK(t *testing.T) {
	g, _ := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 8, Shortcut: resnet.ShortcutA}, resnet.HeInit(1))
	m, err := FromModel(&firmware.Model{Graph: g, Meta: firmware.Meta{Labels: strings.Fields("a b c d e f g h i j")}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.NewSession(WithThreads(1))
	defer s.Close()
	top := s.TopK([]float32{0, 3, 1, 3, -2, 0, 0, 0, 5, 0}, 3)
	if len(top) != 3 || top[0].Class != 8 || top[1].Class != 1 || top[2].Class != 3 || top[0].Label != "i" {
		t.Fatalf("top-3 %+v", top)
	}
	var sum float64
	for _, p := range s.Probabilities([]float32{0, 3, 1, 3, -2, 0, 0, 0, 5, 0}) {
		sum += float64(p)
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Fatalf("probabilities sum to %v", sum)
	}
}

func TestParseLabels(t *testing.T) {
	txt, err := ParseLabels([]byte("cat\r\ndog\n\n"))
	if err != nil || len(txt) != 2 || txt[1] != "dog" {
		t.Fatalf("%q %v", txt, err)
	}
	js, err := ParseLabels([]byte(`{"1": ["n02", "dog"], "0": ["n01", "cat"]}`))
	if err != nil || len(js) != 2 || js[0] != "cat" || js[1] != "dog" {
		t.Fatalf("%q %v", js, err)
	}
	for _, bad := range []string{"", `{"5": "x"}`, `{"0": 3}`, `{`} {
		if _, err := ParseLabels([]byte(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	if n := len(ImageNetLabels()); n != 1000 {
		t.Fatalf("%d ImageNet labels", n)
	}
}

// TestBadInputs: broken models and inputs give errors, never panics.
func TestBadInputs(t *testing.T) {
	if _, err := LoadBytes([]byte("definitely not a model")); err == nil {
		t.Error("garbage loaded")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.ern")); err == nil {
		t.Error("missing file loaded")
	}
	g, _ := resnet.Build(resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4, Height: 8, Width: 8}, resnet.HeInit(1))
	m, err := FromModel(&firmware.Model{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.NewSession(WithThreads(1))
	defer s.Close()
	if _, err := s.Run(make([]float32, 5)); !errors.Is(err, ErrInput) {
		t.Errorf("short input: %v", err)
	}
	if _, err := s.RunNCHW([]int{1, 3, 8, 9}, make([]float32, 216)); !errors.Is(err, ErrInput) {
		t.Errorf("wrong shape: %v", err)
	}
	if _, err := FromModel(&firmware.Model{Graph: g, Meta: firmware.Meta{Labels: []string{"x"}}}); err == nil {
		t.Error("1 label for 10 classes accepted")
	}
	if _, err := m.NewSession(WithThreads(0)); err == nil {
		t.Error("0 threads accepted")
	}
	// A truncated model image.
	data, err := firmware.Encode(m.Image())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10, 64, len(data) / 2, len(data) - 1} {
		if _, err := LoadBytes(data[:n]); err == nil {
			t.Errorf("image truncated to %d bytes loaded", n)
		}
	}
	// A gray image into a color model is converted, not rejected.
	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	gray.Set(1, 1, color.Gray{200})
	if _, err := s.Classify(gray, 1); err != nil {
		t.Errorf("gray image: %v", err)
	}
	_ = bytes.MinRead
	_ = fmt.Sprint
}

// TestSafetensorsFamilyBuilder builds the CIFAR ResNet-20 with resnet.Build
// from the pretrained weights as safetensors (akamaster's checkpoint) and
// compares with PyTorch's logits on the reference images: the family
// builder, not only the ONNX importer, agrees with PyTorch on real weights.
func TestSafetensorsFamilyBuilder(t *testing.T) {
	dir := sharedData(t)
	cfg, err := ParseArch("cifar-resnet20")
	if err != nil {
		t.Fatal(err)
	}
	fm, err := ImportSafetensorsFile(filepath.Join(dir, "models/cifar10_resnet20.safetensors"), cfg, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := FromModel(fm)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.NewSession(WithThreads(2))
	defer s.Close()
	n := 1000
	if testing.Short() {
		n = 50
	}
	imgs, labels := cifarImages(t, filepath.Join(dir, "images/cifar10_test_1k_pil.bin"), n)
	ref := readF32(t, filepath.Join(dir, "reference/cifar10_resnet20_logits_1k.f32"))
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	correct := 0
	for i, px := range imgs {
		in := s.Input()
		for p := 0; p < 1024; p++ {
			for ch := 0; ch < 3; ch++ {
				in[p*3+ch] = (float32(px[ch*1024+p])/255 - mean[ch]) / std[ch]
			}
		}
		out, _ := s.Run(nil)
		want := ref[i*10 : i*10+10]
		if d := maxDiff(out, want) / maxAbs(want); d > 1e-4 {
			t.Fatalf("image %d: relative Δ %.3g", i, d)
		}
		if argmax(out) == labels[i] {
			correct++
		}
	}
	if n == 1000 && correct != 804 {
		t.Fatalf("%d correct, PyTorch has 804", correct)
	}
	// The wrong architecture is refused with a clear error, not run.
	cfg.Shortcut = resnet.ShortcutB
	if _, err := ImportSafetensorsFile(filepath.Join(dir, "models/cifar10_resnet20.safetensors"), cfg, ImportOptions{}); err == nil {
		t.Fatal("option-B ResNet-20 built from option-A weights")
	}
	if _, err := ParseArch("resnet19"); err == nil {
		t.Fatal("resnet19 accepted")
	}
}
