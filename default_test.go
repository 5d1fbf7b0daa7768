package edgeresnet

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// TestDefaultModelMatchesPyTorch: the embedded model (trained by edge-resnet
// train) gives the logits PyTorch computes from its own file
// (tools/ern_torch.py, an evaluator independent of Go) on the checked test
// images, and PyTorch's top-1 and probability on the committed samples.
func TestDefaultModelMatchesPyTorch(t *testing.T) {
	m, s := defaultSession(t, WithThreads(2))
	if len(m.Labels()) != 10 || m.Labels()[9] != "Ankle boot" || m.Meta().Name != "resnet20-fashion-mnist" {
		t.Fatalf("name %q, labels %q", m.Meta().Name, m.Labels())
	}
	checkLogits(t, s, "testdata/default/check.input.npy", "testdata/default/embedded.logits.npy")

	var expected struct {
		Samples []struct {
			File        string  `json:"file"`
			Predicted   int     `json:"predicted"`
			Probability float64 `json:"probability"`
		} `json:"samples"`
	}
	data, err := os.ReadFile("testdata/samples/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	for _, smp := range expected.Samples {
		img, err := preprocess.DecodeFile(filepath.Join("testdata/samples", smp.File))
		if err != nil {
			t.Fatal(err)
		}
		top, err := s.Classify(img, 1)
		if err != nil {
			t.Fatal(err)
		}
		if top[0].Class != smp.Predicted || abs(float64(top[0].Prob)-smp.Probability) > 1e-4 {
			t.Errorf("%s: got %d (%.5f), PyTorch %d (%.5f)", smp.File, top[0].Class, top[0].Prob, smp.Predicted, smp.Probability)
		}
	}
}

// TestReferenceModelMatchesPyTorch: the PyTorch-trained reference model
// (tools/train_fashion_mnist.py's ONNX export, which the embedded model
// was compared with) loads and gives PyTorch's logits.
func TestReferenceModelMatchesPyTorch(t *testing.T) {
	m, err := Load("testdata/default/resnet20_fashion_mnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkLogits(t, s, "testdata/default/check.input.npy", "testdata/default/check.logits.npy")
}

// checkLogits runs each image of the [N,C,H,W] .npy input through s and
// compares the logits with want's rows, within 1e-4 of the largest.
func checkLogits(t *testing.T, s *Session, input, want string) {
	t.Helper()
	shape, in := readNPY(t, input)
	_, ref := readNPY(t, want)
	per := shape[1] * shape[2] * shape[3]
	for i := 0; i < shape[0]; i++ {
		got, err := s.RunNCHW(shape[1:], in[i*per:(i+1)*per])
		if err != nil {
			t.Fatal(err)
		}
		w := ref[i*len(got) : (i+1)*len(got)]
		if d, tol := maxDiff(got, w), 1e-4*maxAbs(w); d > tol {
			t.Errorf("%s image %d: max|Δ| %.3g > %.3g", want, i, d, tol)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// readIDX reads a gzip'd IDX file (Fashion-MNIST): big-endian magic and
// dimensions, then u8 data.
func readIDX(t *testing.T, path string) (dims []int, data []byte) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	nd := int(raw[3])
	for i := 0; i < nd; i++ {
		b := raw[4+4*i:]
		dims = append(dims, int(b[0])<<24|int(b[1])<<16|int(b[2])<<8|int(b[3]))
	}
	return dims, raw[4+4*nd:]
}

// TestDefaultModelAccuracy measures the embedded model on the Fashion-MNIST
// test set (../shared/data/images/fashion_mnist): on all 10,000 images it
// gets as many right as PyTorch does with the same file
// (testdata/default/embedded.accuracy.json, from tools/ern_torch.py);
// -short uses 200.
func TestDefaultModelAccuracy(t *testing.T) {
	dir := sharedData(t)
	dims, pix := readIDX(t, filepath.Join(dir, "images/fashion_mnist/t10k-images-idx3-ubyte.gz"))
	_, labels := readIDX(t, filepath.Join(dir, "images/fashion_mnist/t10k-labels-idx1-ubyte.gz"))
	n := dims[0]
	if testing.Short() {
		n = 200
	}
	_, s := defaultSession(t, WithThreads(2))
	in := s.Input()
	correct := 0
	for i := 0; i < n; i++ {
		for p := 0; p < 784; p++ {
			// The training script's preprocessing, in float32.
			in[p] = (float32(pix[i*784+p])/255 - 0.2860) / 0.3530
		}
		out, err := s.Run(nil)
		if err != nil {
			t.Fatal(err)
		}
		if argmax(out) == int(labels[i]) {
			correct++
		}
	}
	acc := float64(correct) / float64(n)
	t.Logf("top-1 on %d Fashion-MNIST test images: %.2f%%", n, 100*acc)
	var ref struct{ Correct, Images int }
	data, err := os.ReadFile("testdata/default/embedded.accuracy.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ref); err != nil || ref.Images != 10000 {
		t.Fatalf("testdata/default/embedded.accuracy.json: %v %+v", err, ref)
	}
	if n == 10000 && correct != ref.Correct {
		t.Errorf("%d of 10000 correct, PyTorch has %d (tools/ern_torch.py)", correct, ref.Correct)
	}
	if acc < 0.88 {
		t.Errorf("accuracy %.3f", acc)
	}
}
