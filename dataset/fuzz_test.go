package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// fuzzLimits keeps fuzzing inputs cheap: small byte budgets and a small
// decoded-pixel budget (a tiny PNG may declare 2^27 pixels).
func fuzzLimits(t *testing.T) {
	setLimits(t, 1<<20, 1<<20)
	old := preprocess.MaxDecodeBytes
	preprocess.MaxDecodeBytes = 1 << 20
	t.Cleanup(func() { preprocess.MaxDecodeBytes = old })
}

// checkSet reads up to limit samples of an opened set (and the last one):
// names are set, labels in range, errors are one line naming the sample.
func checkSet(t *testing.T, s Set, classes, limit int) {
	defer s.Close()
	n := s.Len()
	if n < 1 {
		t.Fatalf("opened a set of %d samples", n)
	}
	for i := range n {
		if i >= limit && i != n-1 {
			continue
		}
		name := s.Name(i)
		if name == "" {
			t.Fatalf("sample %d has no name", i)
		}
		if l := s.Label(i); l < -1 || (classes > 0 && l >= classes) {
			t.Fatalf("%s: label %d", name, l)
		}
		img, err := s.Image(i)
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, name) || strings.Contains(msg, "\n") {
				t.Fatalf("sample %q: error %q does not name it on one line", name, msg)
			}
			continue
		}
		if b := img.Bounds(); b.Empty() {
			t.Fatalf("%s: empty image %v", name, b)
		}
	}
}

func checkOpenErr(t *testing.T, err error) {
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Fatalf("error of several lines: %q", err)
	}
}

// FuzzOpenZip opens arbitrary bytes as a .zip of class folders and of
// images, and reads every sample. Seeds: testdata/fuzz/FuzzOpenZip (see
// TestWriteFuzzSeeds), as for the other targets.
func FuzzOpenZip(f *testing.F) {
	p := filepath.Join(f.TempDir(), "f.zip")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLimits(t)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, []string{"c", "d", "1", "2"})
		checkOpenErr(t, err)
		if err == nil {
			checkSet(t, s, 4, 64)
		}
		s, err = OpenImages(p)
		checkOpenErr(t, err)
		if err == nil {
			checkSet(t, s, 0, 64)
		}
	})
}

// FuzzReadIDX opens an arbitrary IDX images and labels pair: plain (mode
// 0), gzip'd here (1) or given as gzip data (2).
func FuzzReadIDX(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, images, labels []byte, mode uint8) {
		fuzzLimits(t)
		ext := ""
		switch mode % 3 {
		case 1:
			images, labels = gzBytes(images), gzBytes(labels)
			fallthrough
		case 2:
			ext = ".gz"
		}
		p := filepath.Join(dir, "f-images-idx3-ubyte"+ext)
		if err := os.WriteFile(p, images, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f-labels-idx1-ubyte"+ext), labels, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, nil)
		checkOpenErr(t, err)
		if err == nil {
			checkSet(t, s, 256, 64)
		}
	})
}

// FuzzOpenCIFAR opens arbitrary bytes as a CIFAR-10 .bin file.
func FuzzOpenCIFAR(f *testing.F) {
	p := filepath.Join(f.TempDir(), "f.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLimits(t)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, nil)
		checkOpenErr(t, err)
		if err == nil {
			if s.Len() != len(data)/3073 {
				t.Fatalf("%d records in %d bytes", s.Len(), len(data))
			}
			checkSet(t, s, 256, 64)
		}
	})
}

// TestWriteFuzzSeeds rewrites the named seed files of testdata/fuzz (in
// go test's corpus format) when DATASET_WRITE_FUZZ_SEEDS is set; the
// seeds are small valid and invalid inputs of each reader.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("DATASET_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set DATASET_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	seed := func(target, name string, args ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case uint8:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			}
		}
		write(t, filepath.Join("testdata", "fuzz", target, name), []byte(b.String()))
	}
	png := pngBytes(t, 5)
	seed("FuzzOpenZip", "class_folders", zipBytes(t, zipEntry{"c/a.png", png, 0}, zipEntry{"d/b.png", png, 0}))
	seed("FuzzOpenZip", "flat", zipBytes(t, zipEntry{"a.png", png, 0}))
	seed("FuzzOpenZip", "not_an_image", zipBytes(t, zipEntry{"c/a.jpg", []byte("not a jpeg"), 0}))
	seed("FuzzOpenZip", "declares_1tib", zipBytes(t, zipEntry{"c/big.png", png, 1 << 40}))
	seed("FuzzOpenZip", "inflates_past_declared", zipBytes(t, zipEntry{"c/bomb.png", make([]byte, 4000), 10}))
	seed("FuzzOpenZip", "truncated_archive", zipBytes(t, zipEntry{"c/a.png", png, 0})[:60])

	pix := make([]byte, 2*3*4)
	for i := range pix {
		pix[i] = byte(i)
	}
	images := idxBytes(0x803, []uint32{2, 3, 4}, pix)
	labels := idxBytes(0x801, []uint32{2}, []byte{1, 7})
	seed("FuzzReadIDX", "plain", images, labels, uint8(0))
	seed("FuzzReadIDX", "gzip", images, labels, uint8(1))
	seed("FuzzReadIDX", "gzip_given", gzBytes(images), gzBytes(labels), uint8(2))
	seed("FuzzReadIDX", "truncated", images[:20], labels, uint8(0))
	seed("FuzzReadIDX", "trailing", append(images, 1, 2, 3), labels, uint8(1))
	seed("FuzzReadIDX", "header_declares_1tib", idxBytes(0x803, []uint32{1 << 20, 1 << 10, 1 << 10}, nil), labels, uint8(1))
	seed("FuzzReadIDX", "label_count", images, idxBytes(0x801, []uint32{3}, []byte{1, 2, 3}), uint8(0))

	rec := make([]byte, 2*3073)
	rec[0], rec[3073] = 3, 9
	seed("FuzzOpenCIFAR", "two_records", rec)
	seed("FuzzOpenCIFAR", "partial_record", rec[:3000])
	seed("FuzzOpenCIFAR", "empty", []byte{})
}
