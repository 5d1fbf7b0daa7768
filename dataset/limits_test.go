package dataset

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// setLimits lowers (or raises) the package's byte budgets for one test.
func setLimits(t testing.TB, image, raw int64) {
	oldImage, oldRaw := preprocess.MaxImageFileBytes, MaxRawBytes
	preprocess.MaxImageFileBytes, MaxRawBytes = image, raw
	t.Cleanup(func() { preprocess.MaxImageFileBytes, MaxRawBytes = oldImage, oldRaw })
}

// zipEntry is a member of a crafted archive: data deflated, with a
// declared uncompressed size that may lie (0: the true size).
type zipEntry struct {
	name     string
	data     []byte
	declared uint64
}

func zipBytes(t testing.TB, entries ...zipEntry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(e.data)
		fw.Close()
		size := e.declared
		if size == 0 {
			size = uint64(len(e.data))
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(e.data),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: size})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func idxBytes(magic uint32, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	binary.Write(&b, binary.BigEndian, dims)
	b.Write(data)
	return b.Bytes()
}

func gzBytes(data []byte) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write(data)
	z.Close()
	return b.Bytes()
}

func write(t testing.TB, p string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkErr checks an error: present, one line, containing every want.
func checkErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, want)
		return
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: error of several lines: %q", what, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: error %q does not contain %q", what, msg, w)
		}
	}
}

// allocated is the number of bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestImageFileBudget: image files and zip members over preprocess.MaxImageFileBytes
// (for members, as declared, before inflating), and members whose data
// disagrees with the declared size, are per-image errors naming the
// archive, the member and the sizes.
func TestImageFileBudget(t *testing.T) {
	setLimits(t, 1000, MaxRawBytes)
	good := pngBytes(t, 7)
	zeros := make([]byte, 5000)
	cases := []struct {
		name  string
		entry zipEntry
		want  []string // nil: the image decodes
	}{
		{"good", zipEntry{"c/a.png", good, 0}, nil},
		{"declares over the budget", zipEntry{"c/big.png", good, 1 << 30}, []string{"declares 1073741824 bytes", "limit of 1000 bytes", "preprocess.MaxImageFileBytes"}},
		{"inflates past its declared size", zipEntry{"c/bomb.png", zeros, 50}, []string{"50 bytes declared"}},
		{"shorter than declared", zipEntry{"c/short.png", good, 900}, []string{"truncated", "900"}},
		{"declares more than 2^63", zipEntry{"c/huge.png", good, 1 << 63}, []string{"declares 9223372036854775808 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "set.zip"), zipBytes(t, c.entry))
			s, err := Open(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			name := p + "/" + c.entry.name
			if s.Name(0) != name {
				t.Errorf("name %q, want %q", s.Name(0), name)
			}
			_, err = s.Image(0)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErr(t, c.name, err, append(c.want, name)...)
		})
	}

	// A file on disk: its size, from stat.
	dir := t.TempDir()
	write(t, filepath.Join(dir, "c", "big.png"), append(good, make([]byte, 2000)...))
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Image(0)
	checkErr(t, "big file", err, filepath.Join(dir, "c", "big.png"), "2", "bytes, over the limit of 1000 bytes")

	// With the default budget, a member declaring 1 GiB costs nothing.
	preprocess.MaxImageFileBytes = 64 << 20
	p := write(t, filepath.Join(t.TempDir(), "bomb.zip"), zipBytes(t, zipEntry{"c/bomb.png", good, 1 << 30}))
	s, err = Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a := allocated(func() { _, err = s.Image(0) }); err == nil || a > 1<<20 {
		t.Errorf("1 GiB member: %d bytes allocated, error %v", a, err)
	}
}

// TestIDXBounds: IDX headers are checked against the file size (plain) or
// MaxRawBytes and what a gzip file can inflate to, before data is read;
// data must match the header exactly.
func TestIDXBounds(t *testing.T) {
	pix := func(n int) []byte { return bytes.Repeat([]byte{9}, n) }
	imgs := func(dims []uint32, n int) []byte { return idxBytes(0x803, dims, pix(n)) }
	labs := func(n uint32) []byte { return idxBytes(0x801, []uint32{n}, pix(int(n))) }
	const maxU32 = 1<<32 - 1
	cases := []struct {
		name           string
		images, labels []byte
		gz             bool
		raw, image     int64 // budgets (0: 4096 and 1 MiB)
		want           []string
		format         bool // the error wraps ErrFormat
	}{
		{name: "plain", images: imgs([]uint32{2, 4, 5}, 40), labels: labs(2)},
		{name: "gzip", images: imgs([]uint32{2, 4, 5}, 40), labels: labs(2), gz: true},
		{name: "plain header declares more than the file", images: imgs([]uint32{2, 4, 5}, 39), labels: labs(2),
			want: []string{"declare 40 bytes of data, the file holds 39"}, format: true},
		{name: "plain trailing data", images: imgs([]uint32{2, 4, 5}, 41), labels: labs(2),
			want: []string{"the file holds 41"}, format: true},
		{name: "gzip header over MaxRawBytes", images: imgs([]uint32{100, 10, 10}, 0), labels: labs(100), gz: true,
			want: []string{"declare 10000 bytes", "limit of 4096 bytes", "MaxRawBytes"}},
		{name: "gzip header over what the file can inflate to", images: imgs([]uint32{1000, 100, 100}, 0), labels: labs(2), gz: true, raw: 1 << 40,
			want: []string{"declare 10000000 bytes, more than a", "gzip file can hold"}, format: true},
		{name: "gzip truncated data", images: imgs([]uint32{2, 4, 5}, 30), labels: labs(2), gz: true,
			want: []string{"truncated: 30 bytes where 40 are declared"}, format: true},
		{name: "gzip trailing data", images: imgs([]uint32{2, 4, 5}, 50), labels: labs(2), gz: true,
			want: []string{"more data than the 40 bytes declared"}, format: true},
		{name: "zero dimension", images: imgs([]uint32{0, 4, 5}, 0), labels: labs(0),
			want: []string{"IDX dimension 0 is 0"}, format: true},
		{name: "dimensions overflow", images: imgs([]uint32{maxU32, maxU32, maxU32}, 8), labels: labs(2),
			want: []string{"declare more than 2^62 bytes"}, format: true},
		{name: "dimensions overflow gzip", images: imgs([]uint32{maxU32, maxU32, maxU32}, 8), labels: labs(2), gz: true,
			want: []string{"declare more than 2^62 bytes"}},
		{name: "bad magic", images: idxBytes(0x801, []uint32{2, 4, 5}, pix(40)), labels: labs(2),
			want: []string{"not an IDX file with magic 0x00000803"}, format: true},
		{name: "short header", images: imgs([]uint32{2}, 0), labels: labs(2),
			want: []string{"truncated IDX header (8 of 16 bytes)"}, format: true},
		{name: "record over the image budget", images: imgs([]uint32{1, 40, 50}, 2000), labels: labs(1), image: 1000,
			want: []string{"2000 bytes each", "preprocess.MaxImageFileBytes"}, format: true},
		{name: "label count", images: imgs([]uint32{2, 4, 5}, 40), labels: labs(3),
			want: []string{"3 labels for the 2 images"}, format: true},
		{name: "labels truncated", images: imgs([]uint32{2, 4, 5}, 40), labels: labs(2)[:9],
			want: []string{"labels-idx1", "declare 2 bytes of data, the file holds 1"}, format: true},
		{name: "gzip labels over MaxRawBytes", images: imgs([]uint32{4000, 1, 1}, 4000), labels: idxBytes(0x801, []uint32{5000}, nil), gz: true,
			want: []string{"labels-idx1", "declare 5000 bytes", "MaxRawBytes"}},
		{name: "labels missing", images: imgs([]uint32{2, 4, 5}, 40),
			want: []string{"t-labels-idx1-ubyte"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, image := c.raw, c.image
			if raw == 0 {
				raw = 4096
			}
			if image == 0 {
				image = 1 << 20
			}
			setLimits(t, image, raw)
			dir := t.TempDir()
			ext, enc := "", func(b []byte) []byte { return b }
			if c.gz {
				ext, enc = ".gz", gzBytes
			}
			img := write(t, filepath.Join(dir, "t-images-idx3-ubyte"+ext), enc(c.images))
			if c.labels != nil {
				write(t, filepath.Join(dir, "t-labels-idx1-ubyte"+ext), enc(c.labels))
			}
			s, err := Open(img, nil)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				im, err := s.Image(1)
				if err != nil || s.Len() != 2 || s.Label(1) != 9 || im.Bounds().Dx() != 5 || im.Bounds().Dy() != 4 {
					t.Fatalf("read wrong: %v", err)
				}
				_, err = s.Image(2)
				checkErr(t, "record 2 of 2", err, img+"#2", "no such record")
				return
			}
			checkErr(t, c.name, err, c.want...)
			if c.format != errors.Is(err, ErrFormat) {
				t.Errorf("errors.Is(err, ErrFormat) = %v, want %v", !c.format, c.format)
			}
		})
	}
}

// TestIDXNoEarlyAllocation: a small gzip IDX whose header declares a big
// set (within MaxRawBytes) is refused before any buffer is allocated, and
// a plain one is read from disk, record by record.
func TestIDXNoEarlyAllocation(t *testing.T) {
	dir := t.TempDir()
	img := write(t, filepath.Join(dir, "x-images-idx3-ubyte.gz"), gzBytes(idxBytes(0x803, []uint32{60000, 40, 80}, nil)))
	write(t, filepath.Join(dir, "x-labels-idx1-ubyte.gz"), gzBytes(idxBytes(0x801, []uint32{60000}, nil)))
	var err error
	if a := allocated(func() { _, err = Open(img, nil) }); err == nil || a > 1<<20 {
		t.Errorf("gzip IDX declaring 192 MB: %d bytes allocated, error %v", a, err)
	}
	// Plain: 4 records of 100x100, read on demand; a closed set says so.
	pix := make([]byte, 4*100*100)
	pix[3*10000+5] = 77
	img = write(t, filepath.Join(dir, "p-images-idx3-ubyte"), idxBytes(0x803, []uint32{4, 100, 100}, pix))
	write(t, filepath.Join(dir, "p-labels-idx1-ubyte"), idxBytes(0x801, []uint32{4}, []byte{0, 1, 2, 3}))
	var s Set
	if a := allocated(func() { s, err = Open(img, nil) }); err != nil || a > 20000 {
		t.Fatalf("plain IDX: %d bytes allocated to open 40 KB, error %v", a, err)
	}
	im, err := s.Image(3)
	if err != nil || im.At(5, 0) == im.At(4, 0) || s.Label(3) != 3 {
		t.Fatalf("record 3: %v", err)
	}
	s.Close()
	_, err = s.Image(0)
	checkErr(t, "closed set", err, img+"#0")
}

func TestCIFARBounds(t *testing.T) {
	cases := []struct {
		name string
		size int
		want string
	}{
		{"empty", 0, "0 bytes is not a whole number of 3073-byte CIFAR-10 records"},
		{"partial record", 3073 + 100, "3173 bytes is not"},
		{"one record short", 3072, "3072 bytes is not"},
		{"two records", 2 * 3073, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := make([]byte, c.size)
			if c.size > 3073 {
				data[3073] = 6
			}
			p := write(t, filepath.Join(t.TempDir(), "b.bin"), data)
			s, err := Open(p, nil)
			if c.want != "" {
				checkErr(t, c.name, err, p, c.want)
				if !errors.Is(err, ErrFormat) {
					t.Errorf("not ErrFormat: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Len() != 2 || s.Label(1) != 6 || s.Name(1) != p+"#1" {
				t.Fatalf("%d records, label %d, name %q", s.Len(), s.Label(1), s.Name(1))
			}
			_, err = s.Image(-1)
			checkErr(t, "record -1", err, p+"#-1")
		})
	}
}

// TestSymlinks: a symbolic link to a folder works as the argument, linked
// subfolders are followed, and loops and links to folders already walked
// are walked once.
func TestSymlinks(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "real", "cat", "a.png"), pngBytes(t, 1))
	write(t, filepath.Join(root, "other", "b.png"), pngBytes(t, 2))
	links := [][2]string{
		{"real", "link"},                  // the argument
		{"../other", "real/dog"},          // a class folder elsewhere
		{".", "real/self"},                // a loop to itself
		{"..", "real/cat/up"},             // a loop to an ancestor
		{"../other", "real/zz_again"},     // a folder already walked
		{"nowhere.png", "real/cat/x.png"}, // broken: listed, fails to read
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Skipf("symlinks: %v", err)
		}
	}
	link := filepath.Join(root, "link")
	s, err := Open(link, []string{"cat", "dog"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var names []string
	for i := range s.Len() {
		names = append(names, s.Name(i))
	}
	want := []string{filepath.Join(link, "cat", "a.png"), filepath.Join(link, "cat", "x.png"), filepath.Join(link, "dog", "b.png")}
	if strings.Join(names, " ") != strings.Join(want, " ") || s.Label(2) != 1 {
		t.Fatalf("samples %q, want %q", names, want)
	}
	if _, err := s.Image(2); err != nil {
		t.Fatal(err)
	}
	_, err = s.Image(1)
	checkErr(t, "broken link", err, want[1], "no such file")

	// Links to links: 2^24 paths, 24 directories.
	dag := t.TempDir()
	for i := 0; i < 24; i++ {
		d := filepath.Join(dag, "d"+string(rune('a'+i)))
		os.Mkdir(d, 0o755)
		next := "../d" + string(rune('a'+i+1))
		os.Symlink(next, filepath.Join(d, "l1"))
		os.Symlink(next, filepath.Join(d, "l2"))
	}
	write(t, filepath.Join(dag, "dy", "last.png"), pngBytes(t, 3))
	s2, err := OpenImages(filepath.Join(dag, "da"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Len() != 1 {
		t.Fatalf("%d images, want 1", s2.Len())
	}
}

// TestOpenErrorsNilSet: a failed Open returns a nil Set (not a typed nil),
// for every kind of set.
func TestOpenErrorsNilSet(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"x-images-idx3-ubyte", "x.bin", "x.zip", "x.png"} {
		p := write(t, filepath.Join(dir, name), []byte("junk"))
		s, err := Open(p, nil)
		if err == nil || s != nil {
			t.Errorf("Open(%s): %v, %#v", name, err, s)
		}
		if name == "x.png" {
			continue // a single image opens; decoding it fails
		}
		if s, err := OpenImages(p); err == nil || s != nil {
			t.Errorf("OpenImages(%s): %v, %#v", name, err, s)
		}
	}
	if s, err := Open(t.TempDir(), nil); err == nil || s != nil {
		t.Errorf("Open(empty folder): %v, %#v", err, s)
	}
}
