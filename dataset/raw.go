package dataset

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// raw is a set of same-sized u8 images (IDX, CIFAR binary): records of
// rec bytes from offset off, read from file on demand or held in data
// (gzip'd IDX, inflated).
type raw struct {
	where    string
	n        int
	h, w, ch int   // ch 3: CIFAR's R, G, B planes; ch 1: IDX gray
	rec      int64 // bytes per record
	skip     int64 // bytes before the pixels in a record
	off      int64 // file offset of record 0
	data     []byte
	file     *os.File
	labels   []byte
}

func (r *raw) Len() int          { return r.n }
func (r *raw) Label(i int) int   { return int(r.labels[i]) }
func (r *raw) Name(i int) string { return printable(r.where + "#" + strconv.Itoa(i)) }
func (r *raw) Classes() []string { return nil }
func (r *raw) Close() error {
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}

func (r *raw) Image(i int) (image.Image, error) {
	if i < 0 || i >= r.n {
		return nil, fmt.Errorf("%s: no such record (the set has %d)", r.Name(i), r.n)
	}
	hw := r.h * r.w
	var buf []byte
	var gray *image.Gray
	if r.ch == 1 {
		gray = image.NewGray(image.Rect(0, 0, r.w, r.h))
		buf = gray.Pix
	} else {
		buf = make([]byte, r.ch*hw)
	}
	pos := int64(i)*r.rec + r.skip
	if r.data != nil {
		copy(buf, r.data[pos:])
	} else if _, err := r.file.ReadAt(buf, r.off+pos); err != nil {
		return nil, oneLine(fmt.Errorf("%s: reading the record: %w", r.Name(i), err))
	}
	if gray != nil {
		return gray, nil
	}
	img := image.NewNRGBA(image.Rect(0, 0, r.w, r.h))
	for p := 0; p < hw; p++ {
		img.Pix[4*p] = buf[p]
		img.Pix[4*p+1] = buf[hw+p]
		img.Pix[4*p+2] = buf[2*hw+p]
		img.Pix[4*p+3] = 255
	}
	return img, nil
}

// cifarRecord is the size of a CIFAR-10 record: one label byte, then 1024
// red, 1024 green and 1024 blue bytes (32x32, row-major).
const cifarRecord = 1 + 3*32*32

// openCIFAR reads the CIFAR-10 binary layout. Only the labels are read
// now; images are read from the file when asked for.
func openCIFAR(p string) (*raw, error) {
	f, size, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	if size == 0 || size%cifarRecord != 0 || size/cifarRecord > math.MaxInt {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %d bytes is not a whole number of %d-byte CIFAR-10 records", p, ErrFormat, size, cifarRecord)
	}
	n := int(size / cifarRecord)
	r := &raw{where: p, n: n, h: 32, w: 32, ch: 3, rec: cifarRecord, skip: 1, file: f, labels: make([]byte, n)}
	// The labels, a chunk of whole records at a time.
	const chunk = 256
	buf := make([]byte, chunk*cifarRecord)
	for i := 0; i < n; i += chunk {
		k := min(chunk, n-i)
		if _, err := f.ReadAt(buf[:k*cifarRecord], int64(i)*cifarRecord); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: reading labels: %w", p, err)
		}
		for j := range k {
			r.labels[i+j] = buf[j*cifarRecord]
		}
	}
	return r, nil
}

// openIDX reads an IDX images file (magic 0x00000803, dims n, h, w; u8) and
// the labels file beside it (0x00000801, n), gzip'd or not. Both headers
// are checked before any data is read; plain image data is then read from
// the file when asked for, gzip'd image data inflated once.
func openIDX(p string) (*raw, error) {
	img, err := openIDXFile(p, 0x803)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			img.f.Close()
		}
	}()
	n, h, w := img.dims[0], img.dims[1], img.dims[2]
	if rec := int64(h) * int64(w); rec > preprocess.MaxImageFileBytes {
		return nil, fmt.Errorf("%s: %w: IDX images of %dx%d are %d bytes each, over the limit of %d bytes per image (preprocess.MaxImageFileBytes)",
			p, ErrFormat, h, w, rec, preprocess.MaxImageFileBytes)
	}
	lp := strings.Replace(p, "images-idx3", "labels-idx1", 1)
	if lp == p {
		return nil, fmt.Errorf("%s: %w: cannot name the labels file (want …images-idx3… → …labels-idx1…)", p, ErrFormat)
	}
	lab, err := openIDXFile(lp, 0x801)
	if err != nil {
		return nil, err
	}
	defer lab.f.Close()
	if lab.dims[0] != n {
		return nil, fmt.Errorf("%s: %w: %d labels for the %d images of %s", lp, ErrFormat, lab.dims[0], n, p)
	}
	labels, err := lab.read()
	if err != nil {
		return nil, err
	}
	r := &raw{where: p, n: n, h: h, w: w, ch: 1, rec: int64(h) * int64(w), off: img.off, labels: labels}
	if img.gz {
		if r.data, err = img.read(); err != nil {
			return nil, err
		}
	} else {
		r.file, keep = img.f, true
	}
	return r, nil
}

// maxDeflateRatio bounds how much deflate data can grow: every 258-byte
// match costs at least two bits (a one-bit length code and a one-bit
// distance code), so a gzip file inflates to at most 1032 times its size.
const maxDeflateRatio = 1032

// idxFile is an IDX file whose header has been read and checked.
type idxFile struct {
	path string
	f    *os.File
	r    io.Reader // the data after the header: the file or its gzip stream
	gz   bool
	dims []int
	off  int64 // header bytes
	size int64 // data bytes the dimensions declare
}

// openIDXFile opens an IDX file of u8 values (gzip'd when its name ends in
// .gz), reads its header and checks the size the dimensions declare: a
// plain file must hold exactly that, a gzip'd one must be able to inflate
// to it, within MaxRawBytes. Nothing past the header is read.
func openIDXFile(p string, magic uint32) (*idxFile, error) {
	f, fileSize, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	x := &idxFile{path: p, f: f, r: f}
	fail := func(format string, args ...any) (*idxFile, error) {
		f.Close()
		return nil, fmt.Errorf("%s: "+format, append([]any{p}, args...)...)
	}
	if strings.HasSuffix(strings.ToLower(p), ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return fail("%w", err)
		}
		x.r, x.gz = z, true
	}
	nd := int(magic & 0xff)
	head := make([]byte, 4+4*nd)
	if n, err := io.ReadFull(x.r, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if n < 4 || binary.BigEndian.Uint32(head) != magic {
				return fail("%w: not an IDX file with magic %#08x (%d bytes)", ErrFormat, magic, n)
			}
			return fail("%w: truncated IDX header (%d of %d bytes)", ErrFormat, n, len(head))
		}
		return fail("%w", err)
	}
	if got := binary.BigEndian.Uint32(head); got != magic {
		return fail("%w: not an IDX file with magic %#08x (magic %#08x)", ErrFormat, magic, got)
	}
	x.off = int64(len(head))
	// The declared size, saturated at 2^62 (three 32-bit dimensions can
	// overflow int64).
	const huge = int64(1) << 62
	x.size = 1
	for i := range nd {
		d := int64(binary.BigEndian.Uint32(head[4+4*i:]))
		if d == 0 {
			return fail("%w: IDX dimension %d is 0", ErrFormat, i)
		}
		if d > huge/x.size {
			x.size = huge
		} else {
			x.size *= d
		}
		x.dims = append(x.dims, int(min(d, math.MaxInt)))
	}
	declared := func() string {
		if x.size >= huge {
			return "more than 2^62"
		}
		return strconv.FormatInt(x.size, 10)
	}
	// The budget first: the same error on 32- and 64-bit platforms.
	switch {
	case x.gz && x.size > MaxRawBytes:
		return fail("IDX dimensions %v declare %s bytes, over the limit of %d bytes for gzip'd IDX data held in memory (dataset.MaxRawBytes; decompress the file to read it from disk)",
			x.dims, declared(), MaxRawBytes)
	case x.size > math.MaxInt:
		return fail("%w: IDX dimensions %v declare %s bytes, too many for this platform", ErrFormat, x.dims, declared())
	case !x.gz && x.size != fileSize-x.off:
		return fail("%w: IDX dimensions %v declare %s bytes of data, the file holds %d", ErrFormat, x.dims, declared(), fileSize-x.off)
	case x.gz && x.size+x.off > maxDeflateRatio*fileSize:
		return fail("%w: IDX dimensions %v declare %s bytes, more than a %d-byte gzip file can hold", ErrFormat, x.dims, declared(), fileSize)
	}
	return x, nil
}

// read reads the data of an IDX file: exactly the declared size, with
// nothing after it.
func (x *idxFile) read() ([]byte, error) {
	b, err := readExact(x.r, x.size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: IDX data for dimensions %v: %w", x.path, ErrFormat, x.dims, err)
	}
	return b, nil
}
