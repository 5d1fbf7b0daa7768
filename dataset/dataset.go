// Package dataset reads labeled image sets for evaluation and calibration:
// a folder (or a .zip archive) with one subfolder per class, a Fashion-MNIST
// style IDX pair, or a CIFAR-10 binary file. Every sample comes out as an
// image.Image, so it goes through the model's own preprocessing.
//
// Sizes are checked before memory is spent: an image file or .zip member
// against preprocess.MaxImageFileBytes (for a member, the size the archive
// declares, before anything is inflated), an IDX header against the size
// of its file
// or, gzip'd, against MaxRawBytes. Plain IDX and CIFAR-10 files are read
// record by record from disk, files in folders are decoded straight from
// the file, and only .zip members and gzip'd IDX data are held in memory.
package dataset

import (
	"archive/zip"
	"bytes"
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
	"unicode"
	"unicode/utf8"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// ErrFormat is wrapped by errors about data that is not a dataset we read.
var ErrFormat = errors.New("unrecognized dataset")

// MaxRawBytes bounds the uncompressed data of a gzip'd IDX file, which is
// inflated into memory and held while the set is open. The size the header
// declares is checked against it before anything is inflated. Plain (not
// gzip'd) IDX and CIFAR-10 .bin files are read record by record from disk
// and need no budget: their headers are checked against the file size.
// 256 MiB holds every gzip'd MNIST-family file (Fashion-MNIST's training
// images are 47 MB, EMNIST digits 188 MB); decompress larger ones (EMNIST
// byclass, 547 MB) to read them from disk.
var MaxRawBytes int64 = 256 << 20

// Set is a labeled image set. Image may be called from several goroutines.
type Set interface {
	Len() int
	// Label is the class index of sample i.
	Label(i int) int
	// Name identifies sample i, set included, in messages: the file's path
	// for a folder ("data/cat/1.png"), the archive's path and the member
	// for a .zip ("data/set.zip/cat/1.png"), the file's path and record
	// number for IDX and CIFAR-10 ("data/test_batch.bin#17").
	Name(i int) string
	// Image decodes sample i. Its errors name the sample (they contain
	// Name(i)).
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
// ImageFolder does. Symbolic links to directories are followed (path
// itself too), each directory once.
func Open(p string, labels []string) (Set, error) {
	s, err := open(p, labels)
	if err != nil {
		return nil, oneLine(err) // not a typed nil in s
	}
	return s, nil
}

func open(p string, labels []string) (Set, error) {
	st, err := statInput(p)
	if err != nil {
		return nil, err
	}
	base := strings.ToLower(filepath.Base(p))
	switch {
	case st.IsDir():
		return openFolder(os.DirFS(p), p, false, labels, nil)
	case strings.HasSuffix(base, ".zip"):
		return openZip(p, func(z fs.FS, c io.Closer) (*folder, error) { return openFolder(z, p, true, labels, c) })
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
	s, err := openImagesAt(p)
	if err != nil {
		return nil, oneLine(err)
	}
	return s, nil
}

func openImagesAt(p string) (Set, error) {
	st, err := statInput(p)
	if err != nil {
		return nil, err
	}
	base := strings.ToLower(filepath.Base(p))
	switch {
	case st.IsDir():
		return openImages(os.DirFS(p), p, false, nil)
	case strings.HasSuffix(base, ".zip"):
		return openZip(p, func(z fs.FS, c io.Closer) (*folder, error) { return openImages(z, p, true, c) })
	case imageExts[filepath.Ext(base)]:
		dir, file := filepath.Split(p)
		if dir == "" {
			dir = "."
		}
		return &folder{fsys: os.DirFS(dir), where: dir, files: []string{file}, labels: []int{-1}}, nil
	}
	return open(p, nil)
}

// statInput stats a dataset argument (following symbolic links): a
// directory or a regular file. Anything else (a pipe, a device) is refused
// before it is opened, which for a pipe would block.
func statInput(p string) (fs.FileInfo, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s, not a regular file or directory", p, preprocess.FileKind(st.Mode()))
	}
	return st, nil
}

// openRegular opens a regular file and returns it with its size.
func openRegular(p string) (*os.File, int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: %s, not a regular file", p, preprocess.FileKind(st.Mode()))
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: %s, not a regular file", p, preprocess.FileKind(st.Mode()))
		}
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// openImages is every image below the root of fsys, in walk order.
func openImages(fsys fs.FS, where string, isZip bool, closer io.Closer) (*folder, error) {
	f := &folder{fsys: fsys, where: where, isZip: isZip, closer: closer}
	err := walk(fsys, !isZip, func(p string) {
		if imageExts[strings.ToLower(path.Ext(p))] {
			f.files = append(f.files, p)
			f.labels = append(f.labels, -1)
		}
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
	f, size, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	z, err := zip.NewReader(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s, err := open(z, f)
	if err != nil {
		f.Close()
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
	isZip   bool
	files   []string // slash-separated paths in fsys
	labels  []int
	classes []string
	closer  io.Closer
}

func openFolder(fsys fs.FS, where string, isZip bool, modelLabels []string, closer io.Closer) (*folder, error) {
	byDir := map[string][]string{}
	err := walk(fsys, !isZip, func(p string) {
		if imageExts[strings.ToLower(path.Ext(p))] {
			byDir[path.Dir(p)] = append(byDir[path.Dir(p)], p)
		}
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
	f := &folder{fsys: fsys, where: where, isZip: isZip, classes: classes, closer: closer}
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
func (f *folder) Classes() []string { return f.classes }
func (f *folder) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

func (f *folder) Name(i int) string {
	if f.isZip {
		return printable(f.where + "/" + f.files[i])
	}
	return printable(filepath.Join(f.where, filepath.FromSlash(f.files[i])))
}

// printable quotes a name that holds control characters or invalid UTF-8
// (file names may), so that messages stay on one line and say what the
// name is.
func printable(s string) string {
	if needsEscape(s) {
		return strconv.Quote(s)
	}
	return s
}

func needsEscape(s string) bool {
	return !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// oneLine keeps err (for errors.Is and As) but shows its message on one
// line: control characters and invalid UTF-8 (from names inside an
// archive, say) are escaped as in Go strings. Printable text, quoted names
// included, is left as it is.
func oneLine(err error) error {
	if err == nil || !needsEscape(err.Error()) {
		return err
	}
	var b strings.Builder
	for s := err.Error(); s != ""; {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, "\\x%02x", s[0])
		case unicode.IsPrint(r):
			b.WriteString(s[:n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return &lineError{b.String(), err}
}

type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

func (f *folder) Image(i int) (image.Image, error) {
	name := f.Name(i)
	r, c, err := f.open(f.files[i], name)
	if err != nil {
		return nil, oneLine(err)
	}
	defer c.Close()
	img, err := preprocess.Decode(r, name)
	return img, oneLine(err)
}

// open checks the size of an image file (for a zip member, the size the
// archive declares) against preprocess.MaxImageFileBytes, then opens it: a file on
// disk is read in place, a zip member is inflated into memory (exactly the
// declared size; archive/zip also refuses to inflate past it).
func (f *folder) open(file, name string) (io.ReadSeeker, io.Closer, error) {
	st, err := fs.Stat(f.fsys, file)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %s, not an image file", name, preprocess.FileKind(st.Mode()))
	}
	size := st.Size()
	if h, ok := st.Sys().(*zip.FileHeader); ok && h.UncompressedSize64 > uint64(preprocess.MaxImageFileBytes) {
		return nil, nil, fmt.Errorf("%s: the zip member declares %d bytes uncompressed, over the limit of %d bytes per image (preprocess.MaxImageFileBytes)",
			name, h.UncompressedSize64, preprocess.MaxImageFileBytes)
	}
	if size < 0 || size > preprocess.MaxImageFileBytes {
		return nil, nil, fmt.Errorf("%s: %d bytes, over the limit of %d bytes per image file (preprocess.MaxImageFileBytes)", name, size, preprocess.MaxImageFileBytes)
	}
	h, err := f.fsys.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, unwrapPath(err))
	}
	if ra, ok := h.(io.ReaderAt); ok && !f.isZip {
		return io.NewSectionReader(ra, 0, size), h, nil
	}
	data, err := readExact(h, size)
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return bytes.NewReader(data), h, nil
}

// unwrapPath drops the path of an *fs.PathError (messages name the sample
// already) but keeps the operation.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// readExact reads exactly size bytes from r, which must end there: a
// shorter stream is truncated, a longer one is refused without reading
// more than one byte past size.
func readExact(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("%d bytes is too large", size)
	}
	buf := make([]byte, size)
	if n, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("truncated: %d bytes where %d are declared", n, size)
		}
		return nil, err
	}
	var one [1]byte
	if n, err := io.ReadFull(r, one[:]); n > 0 {
		return nil, fmt.Errorf("more data than the %d bytes declared", size)
	} else if err != io.EOF {
		return nil, fmt.Errorf("reading past the %d bytes declared: %w", size, err)
	}
	return buf, nil
}
