// Package dataset reads labeled image sets for evaluation and calibration:
// a folder (or a .zip archive) with one subfolder per class, a Fashion-MNIST
// style IDX pair, or a CIFAR-10 binary file. Every sample comes out as an
// image.Image, so it goes through the model's own preprocessing.
package dataset

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// ErrFormat is wrapped by errors about data that is not a dataset we read.
var ErrFormat = errors.New("unrecognized dataset")

// Set is a labeled image set. Image may be called from several goroutines.
type Set interface {
	Len() int
	// Label is the class index of sample i.
	Label(i int) int
	// Name identifies sample i in messages (file name or record number).
	Name(i int) string
	// Image decodes sample i.
	Image(i int) (image.Image, error)
	// Classes are the class names by index, if the set has them.
	Classes() []string
	Close() error
}

// Open reads a dataset at path: a directory or .zip with one subfolder per
// class; an IDX images file (…-images-idx3-ubyte[.gz]) whose labels file
// (…-labels-idx1-ubyte[.gz]) sits beside it; or a CIFAR-10 binary file
// (.bin, 3073-byte records). labels are the model's class names: class
// folders named like a label (case-insensitive) or by a number take that
// index; otherwise folders are numbered in sorted order, as torchvision's
// ImageFolder does.
func Open(p string, labels []string) (Set, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	base := strings.ToLower(filepath.Base(p))
	switch {
	case st.IsDir():
		return openFolder(os.DirFS(p), p, labels, nil)
	case strings.HasSuffix(base, ".zip"):
		return openZip(p, func(z fs.FS, c io.Closer) (*folder, error) { return openFolder(z, p, labels, c) })
	case strings.Contains(base, "idx3"):
		return openIDX(p)
	case strings.HasSuffix(base, ".bin"):
		return openCIFAR(p)
	}
	return nil, fmt.Errorf("%s: %w: want a class folder, .zip, IDX images file or CIFAR-10 .bin", p, ErrFormat)
}

// OpenImages reads images for calibration, where labels do not matter:
// anything Open reads, and also a directory or .zip with images at any
// depth (a flat folder too), or a single image file. Unlabeled samples have
// label -1.
func OpenImages(p string) (Set, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	base := strings.ToLower(filepath.Base(p))
	switch {
	case st.IsDir():
		return openImages(os.DirFS(p), p, nil)
	case strings.HasSuffix(base, ".zip"):
		return openZip(p, func(z fs.FS, c io.Closer) (*folder, error) { return openImages(z, p, c) })
	case imageExts[filepath.Ext(base)]:
		dir, file := filepath.Split(p)
		if dir == "" {
			dir = "."
		}
		return &folder{fsys: os.DirFS(dir), where: dir, files: []string{file}, labels: []int{-1}}, nil
	}
	return Open(p, nil)
}

// openImages is every image below the root of fsys, in sorted path order.
func openImages(fsys fs.FS, where string, closer io.Closer) (*folder, error) {
	f := &folder{fsys: fsys, where: where, closer: closer}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && imageExts[strings.ToLower(path.Ext(p))] {
			f.files = append(f.files, p)
			f.labels = append(f.labels, -1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(f.files) == 0 {
		return nil, fmt.Errorf("%s: %w: no images", where, ErrFormat)
	}
	return f, nil
}

// openZip opens the zip archive at p as a file system for open, which
// owns it on success; on failure it is closed here.
func openZip(p string, open func(fs.FS, io.Closer) (*folder, error)) (Set, error) {
	z, err := zip.OpenReader(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s, err := open(z, z)
	if err != nil {
		z.Close()
		return nil, err
	}
	return s, nil
}

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".tif": true, ".tiff": true, ".webp": true}

// folder is a class-per-subfolder set in a file system (a directory or a
// zip archive). Class folders are the deepest directories holding images,
// so a zip with a single top folder ("test/airplane/...") works too.
type folder struct {
	fsys    fs.FS
	where   string
	files   []string
	labels  []int
	classes []string
	closer  io.Closer
}

func openFolder(fsys fs.FS, where string, modelLabels []string, closer io.Closer) (*folder, error) {
	byDir := map[string][]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && imageExts[strings.ToLower(path.Ext(p))] {
			byDir[path.Dir(p)] = append(byDir[path.Dir(p)], p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(byDir) == 0 {
		return nil, fmt.Errorf("%s: %w: no images in class subfolders", where, ErrFormat)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		if d == "." {
			return nil, fmt.Errorf("%s: %w: images must sit in one subfolder per class", where, ErrFormat)
		}
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	index, classes, err := classIndex(dirs, modelLabels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	f := &folder{fsys: fsys, where: where, classes: classes, closer: closer}
	for _, d := range dirs {
		files := byDir[d]
		slices.Sort(files)
		for _, file := range files {
			f.files = append(f.files, file)
			f.labels = append(f.labels, index[d])
		}
	}
	return f, nil
}

// classIndex maps class folders to class indices: by the model's label
// names, else by number, else by sorted order.
func classIndex(dirs, modelLabels []string) (map[string]int, []string, error) {
	index := map[string]int{}
	byLabel := map[string]int{}
	for i, l := range modelLabels {
		byLabel[strings.ToLower(l)] = i
	}
	named, numbered := true, true
	for _, d := range dirs {
		name := path.Base(d)
		if _, ok := byLabel[strings.ToLower(name)]; !ok {
			named = false
		}
		if _, err := strconv.Atoi(name); err != nil {
			numbered = false
		}
	}
	classes := modelLabels
	for i, d := range dirs {
		name := path.Base(d)
		switch {
		case named && len(modelLabels) > 0:
			index[d] = byLabel[strings.ToLower(name)]
		case numbered:
			index[d], _ = strconv.Atoi(name)
		default:
			index[d] = i
		}
	}
	if !(named && len(modelLabels) > 0) {
		classes = nil
		if !numbered {
			for _, d := range dirs {
				classes = append(classes, path.Base(d))
			}
		}
	}
	for d, i := range index {
		if i < 0 || (len(modelLabels) > 0 && i >= len(modelLabels)) {
			return nil, nil, fmt.Errorf("class folder %q is class %d, outside the model's %d classes", d, i, len(modelLabels))
		}
	}
	return index, classes, nil
}

func (f *folder) Len() int          { return len(f.files) }
func (f *folder) Label(i int) int   { return f.labels[i] }
func (f *folder) Name(i int) string { return f.files[i] }
func (f *folder) Classes() []string { return f.classes }
func (f *folder) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

func (f *folder) Image(i int) (image.Image, error) {
	data, err := fs.ReadFile(f.fsys, f.files[i])
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", f.where, f.files[i], err)
	}
	return preprocess.Decode(bytes.NewReader(data), f.where+": "+f.files[i])
}

// raw is a set of same-sized u8 images held in memory (IDX, CIFAR binary).
type raw struct {
	where    string
	n        int
	h, w, ch int
	planar   bool // CIFAR stores R, G, B planes; IDX is gray
	pix      []byte
	stride   int // bytes per record
	skip     int // bytes before the pixels in a record
	labels   []byte
}

func (r *raw) Len() int          { return r.n }
func (r *raw) Label(i int) int   { return int(r.labels[i]) }
func (r *raw) Name(i int) string { return fmt.Sprintf("%s#%d", filepath.Base(r.where), i) }
func (r *raw) Classes() []string { return nil }
func (r *raw) Close() error      { return nil }

func (r *raw) Image(i int) (image.Image, error) {
	rec := r.pix[i*r.stride+r.skip : (i+1)*r.stride]
	if r.ch == 1 {
		g := image.NewGray(image.Rect(0, 0, r.w, r.h))
		copy(g.Pix, rec)
		return g, nil
	}
	img := image.NewNRGBA(image.Rect(0, 0, r.w, r.h))
	hw := r.h * r.w
	for p := 0; p < hw; p++ {
		img.Pix[4*p] = rec[p]
		img.Pix[4*p+1] = rec[hw+p]
		img.Pix[4*p+2] = rec[2*hw+p]
		img.Pix[4*p+3] = 255
	}
	return img, nil
}

// openCIFAR reads the CIFAR-10 binary layout: per record one label byte,
// then 1024 red, 1024 green and 1024 blue bytes (32x32, row-major).
func openCIFAR(p string) (*raw, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	const rec = 1 + 3*32*32
	if len(data) == 0 || len(data)%rec != 0 {
		return nil, fmt.Errorf("%s: %w: %d bytes is not a whole number of %d-byte CIFAR-10 records", p, ErrFormat, len(data), rec)
	}
	n := len(data) / rec
	r := &raw{where: p, n: n, h: 32, w: 32, ch: 3, planar: true, pix: data, stride: rec, skip: 1, labels: make([]byte, n)}
	for i := range n {
		r.labels[i] = data[i*rec]
	}
	return r, nil
}

// openIDX reads an IDX images file (magic 0x00000803, dims n, h, w; u8) and
// the labels file beside it (0x00000801, n), gzip'd or not.
func openIDX(p string) (*raw, error) {
	dims, pix, err := readIDX(p, 0x803)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 {
		return nil, fmt.Errorf("%s: %w: IDX images need 3 dimensions, have %v", p, ErrFormat, dims)
	}
	lp := strings.Replace(p, "images-idx3", "labels-idx1", 1)
	if lp == p {
		return nil, fmt.Errorf("%s: %w: cannot name the labels file (want …images-idx3… → …labels-idx1…)", p, ErrFormat)
	}
	ldims, labels, err := readIDX(lp, 0x801)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 || ldims[0] != dims[0] {
		return nil, fmt.Errorf("%s: %w: %v labels for %d images", lp, ErrFormat, ldims, dims[0])
	}
	return &raw{where: p, n: dims[0], h: dims[1], w: dims[2], ch: 1, pix: pix, stride: dims[1] * dims[2], labels: labels}, nil
}

func readIDX(p string, magic uint32) (dims []int, data []byte, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		r = z
	}
	all, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(all) < 4 || binary.BigEndian.Uint32(all) != magic {
		return nil, nil, fmt.Errorf("%s: %w: not an IDX file with magic %#08x", p, ErrFormat, magic)
	}
	nd := int(magic & 0xff)
	if len(all) < 4+4*nd {
		return nil, nil, fmt.Errorf("%s: %w: truncated IDX header", p, ErrFormat)
	}
	size := int64(1)
	for i := 0; i < nd; i++ {
		d := int64(binary.BigEndian.Uint32(all[4+4*i:]))
		if d <= 0 || d > 1<<28 || size > int64(len(all))/d {
			return nil, nil, fmt.Errorf("%s: %w: bad IDX dimension %d", p, ErrFormat, d)
		}
		size *= d
		dims = append(dims, int(d))
	}
	data = all[4+4*nd:]
	if int64(len(data)) != size {
		return nil, nil, fmt.Errorf("%s: %w: IDX holds %d bytes, dimensions %v need %d", p, ErrFormat, len(data), dims, size)
	}
	return dims, data, nil
}
