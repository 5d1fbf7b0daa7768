package dataset

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func pngBytes(t testing.TB, v uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFolderAndZip(t *testing.T) {
	dir := t.TempDir()
	files := map[string]uint8{"top/dog/b.png": 20, "top/dog/a.png": 10, "top/cat/x.png": 30}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, v := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, pngBytes(t, v), 0o644)
		w, _ := zw.Create(name)
		w.Write(pngBytes(t, v))
	}
	zw.Close()
	zpath := filepath.Join(t.TempDir(), "set.zip")
	os.WriteFile(zpath, zb.Bytes(), 0o644)
	for _, p := range []string{dir, zpath} {
		// By the model's labels (case-insensitive): dog=0, cat=2.
		s, err := Open(p, []string{"Dog", "bird", "CAT"})
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 3 || s.Label(0) != 2 || s.Label(1) != 0 || s.Label(2) != 0 {
			t.Fatalf("%s: labels %d %d %d", p, s.Label(0), s.Label(1), s.Label(2))
		}
		img, err := s.Image(1) // dog/a.png
		if err != nil {
			t.Fatal(err)
		}
		if g := color.GrayModel.Convert(img.At(0, 0)).(color.Gray); g.Y != 10 {
			t.Fatalf("%s: pixel %d, want 10 (sorted order dog/a before dog/b)", p, g.Y)
		}
		s.Close()
		// Without matching labels: sorted folder order.
		s, err = Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.Classes(); len(c) != 2 || c[0] != "cat" || s.Label(0) != 0 || s.Label(2) != 1 {
			t.Fatalf("%s: classes %v", p, c)
		}
		s.Close()
	}
}

func writeGzIDX(t *testing.T, path string, magic uint32, dims []int, data []byte) {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	f, _ := os.Create(path)
	z := gzip.NewWriter(f)
	z.Write(b.Bytes())
	z.Close()
	f.Close()
}

func TestIDXAndCIFAR(t *testing.T) {
	dir := t.TempDir()
	pix := make([]byte, 2*4*5)
	for i := range pix {
		pix[i] = byte(i)
	}
	img := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
	writeGzIDX(t, img, 0x803, []int{2, 4, 5}, pix)
	writeGzIDX(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), 0x801, []int{2}, []byte{7, 3})
	s, err := Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := s.Image(1)
	if s.Len() != 2 || s.Label(1) != 3 || im.Bounds().Dx() != 5 || im.(*image.Gray).Pix[0] != 20 {
		t.Fatalf("IDX read wrong")
	}
	// Mismatched label count.
	writeGzIDX(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), 0x801, []int{3}, []byte{7, 3, 1})
	if _, err := Open(img, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("want ErrFormat, got %v", err)
	}

	rec := make([]byte, 2*3073)
	rec[0], rec[3073] = 4, 9
	rec[3073+1], rec[3073+1+1024], rec[3073+1+2048] = 200, 100, 50 // image 1, pixel 0: R, G, B
	bin := filepath.Join(dir, "x.bin")
	os.WriteFile(bin, rec, 0o644)
	s, err = Open(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	im, _ = s.Image(1)
	if r, g, b, _ := im.At(0, 0).RGBA(); s.Label(1) != 9 || r>>8 != 200 || g>>8 != 100 || b>>8 != 50 {
		t.Fatalf("CIFAR read wrong: label %d rgb %d %d %d", s.Label(1), r>>8, g>>8, b>>8)
	}
	os.WriteFile(bin, rec[:100], 0o644)
	if _, err := Open(bin, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("truncated CIFAR: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "loose.png"), pngBytes(t, 1), 0o644)
	if _, err := Open(dir, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("images outside class folders: %v", err)
	}
	if _, err := Open(t.TempDir(), nil); !errors.Is(err, ErrFormat) {
		t.Errorf("empty folder: %v", err)
	}
	other := filepath.Join(dir, "data.csv")
	os.WriteFile(other, []byte("x"), 0o644)
	if _, err := Open(other, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("csv: %v", err)
	}
	// A numbered class folder beyond the model's classes.
	d2 := t.TempDir()
	os.MkdirAll(filepath.Join(d2, "12"), 0o755)
	os.WriteFile(filepath.Join(d2, "12", "a.png"), pngBytes(t, 1), 0o644)
	if _, err := Open(d2, []string{"a", "b"}); err == nil {
		t.Errorf("class 12 of 2 accepted")
	}
}

func TestOpenImages(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.png"), pngBytes(t, 1), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "a.png"), pngBytes(t, 2), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	s, err := OpenImages(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 2 || s.Name(0) != filepath.Join(dir, "b.png") || s.Name(1) != filepath.Join(dir, "sub", "a.png") || s.Label(0) != -1 {
		t.Fatalf("flat+nested folder: %d images, %q %q, label %d", s.Len(), s.Name(0), s.Name(1), s.Label(0))
	}
	for i := range s.Len() {
		if _, err := s.Image(i); err != nil {
			t.Fatal(err)
		}
	}
	one, err := OpenImages(filepath.Join(dir, "sub", "a.png"))
	if err != nil || one.Len() != 1 || one.Name(0) != filepath.Join(dir, "sub", "a.png") {
		t.Fatalf("single image: %v", err)
	}
	if _, err := one.Image(0); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenImages(t.TempDir()); !errors.Is(err, ErrFormat) {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := OpenImages(filepath.Join(dir, "notes.txt")); !errors.Is(err, ErrFormat) {
		t.Errorf("text file: %v", err)
	}
}
