package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"strings"

	// Registered decoders: what DecodeFile understands. decodeCost in
	// budget.go knows what each of them allocates.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// DecodeFile reads a JPEG, PNG, GIF (first frame), BMP, TIFF or WebP file.
// Errors name the file and say what went wrong: unknown or unsupported
// format (with a hint for common ones, such as .npy tensors), truncated
// data, corrupt data, or an image that needs more memory than
// MaxDecodeBytes (see there: the check is made from the header, before
// any pixel is decoded). EXIF orientation is not applied, which matches
// torchvision's Pillow loader (it ignores EXIF too). Decoding JPEG uses
// Go's decoder, which differs slightly from libjpeg-turbo (see Apply).
//
// A path that is not a regular file (a pipe, /dev/stdin, a device) is read
// into memory first, at most MaxImageFileBytes of it, and what it holds
// counts against MaxDecodeBytes.
func DecodeFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("preprocess: %s: is a directory, not an image", path)
	}
	if st.Mode().IsRegular() {
		return decode(f, path, 0)
	}
	m, err := readStream(f, MaxImageFileBytes)
	if err != nil {
		return nil, fmt.Errorf("preprocess: %s: reading %s: %w", path, FileKind(st.Mode()), err)
	}
	return decode(m, path, m.held())
}

// FileKind names what kind of file a mode is, for errors ("a named pipe",
// "a character device", "a directory", ...).
func FileKind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "a special file (" + m.Type().String() + ")"
}

// Decode is DecodeFile for data from any seekable reader (an archive
// member, a network buffer); name is used in errors. The image must start
// at offset 0. Readers that also implement io.ReaderAt (*os.File,
// *bytes.Reader) are read in place; TIFF is read through ReadAt.
func Decode(f io.ReadSeeker, name string) (image.Image, error) {
	return decode(f, name, 0)
}

// decode is Decode for input of which held bytes are already in memory
// (counted against the budget).
func decode(f io.ReadSeeker, name string, held int64) (image.Image, error) {
	rerr := func(err error) error { return fmt.Errorf("preprocess: reading %s: %w", name, err) }
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, rerr(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, rerr(err)
	}
	var head [24]byte // sniffing; a PNG's width and height end at byte 24
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, rerr(err)
	}
	if n == 0 {
		return nil, fmt.Errorf("preprocess: %s: empty file, not an image", name)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, rerr(err)
	}
	// TIFF gets random access: behind image.DecodeConfig's bufio.Reader,
	// x/image/tiff would buffer the file up to wherever its header points.
	isTIFF := isTIFFHeader(head[:n])
	cfg, format, err := decodeConfig(f, isTIFF)
	if err != nil {
		return nil, decodeError(name, format, head[:n], err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("preprocess: %s: %s image is %dx%d, an empty image", name, format, cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, rerr(err)
	}
	c, err := decodeCost(f, size, format, cfg)
	if err != nil {
		return nil, decodeError(name, format, head[:n], err)
	}
	c.add("file data held in memory", held)
	if err := c.check(MaxDecodeBytes, func() string {
		return fmt.Sprintf("%s: decoding the %s image %dx%d (%s)", name, format, cfg.Width, cfg.Height, c.kind)
	}); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, rerr(err)
	}
	img, err := decodeImage(f, isTIFF)
	if err != nil {
		return nil, decodeError(name, format, head[:n], err)
	}
	if b := img.Bounds(); b.Empty() { // e.g. a GIF whose first frame is 0 pixels wide
		return nil, fmt.Errorf("preprocess: %s: the %s image decodes to nothing (bounds %v)", name, format, b)
	}
	return img, nil
}

// isTIFFHeader reports whether head starts like a TIFF file.
func isTIFFHeader(head []byte) bool {
	return bytes.HasPrefix(head, []byte("II*\x00")) || bytes.HasPrefix(head, []byte("MM\x00*"))
}

// decodeConfig and decodeImage run the registered decoders (TIFF with
// random access) and turn a panic, a decoder's bug met by hostile input,
// into an error.
func decodeConfig(f io.ReadSeeker, isTIFF bool) (cfg image.Config, format string, err error) {
	defer recoverDecoder(&err)
	if isTIFF {
		cfg, err = tiff.DecodeConfig(asReaderAt(f))
		return cfg, "tiff", err
	}
	return image.DecodeConfig(f)
}

func decodeImage(f io.ReadSeeker, isTIFF bool) (img image.Image, err error) {
	defer recoverDecoder(&err)
	if isTIFF {
		return tiff.Decode(asReaderAt(f))
	}
	img, _, err = image.Decode(f)
	return img, err
}

func recoverDecoder(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("decoder panic: %v", r)
	}
}

// readerAt is what x/image/tiff reads through without buffering.
type readerAt interface {
	io.Reader
	io.ReaderAt
}

func asReaderAt(f io.ReadSeeker) readerAt {
	if ra, ok := f.(readerAt); ok {
		return ra
	}
	return seekReaderAt{f}
}

// seekReaderAt implements ReadAt with Seek and Read (for one goroutine).
type seekReaderAt struct{ io.ReadSeeker }

func (s seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.ReadSeeker, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// memFile is a stream read into memory in chunks, so that holding n
// bytes never takes the 2n of a growing slice's copy.
type memFile struct {
	chunks    [][]byte
	size, off int64
}

const memChunk = 1 << 20

// readStream reads r to its end, failing once it has more than limit
// bytes.
func readStream(r io.Reader, limit int64) (*memFile, error) {
	m := new(memFile)
	for {
		buf := make([]byte, memChunk)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			m.chunks = append(m.chunks, buf[:n])
			m.size += int64(n)
		}
		if m.size > limit {
			return nil, fmt.Errorf("more than %d bytes (MaxImageFileBytes), stopped reading", limit)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// held is the memory the chunks take.
func (m *memFile) held() int64 { return int64(len(m.chunks)) * memChunk }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("preprocess: negative offset")
	}
	n := 0
	for n < len(p) && off < m.size {
		c := m.chunks[off/memChunk][off%memChunk:]
		k := copy(p[n:], c)
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) Read(p []byte) (int, error) {
	if m.off >= m.size {
		return 0, io.EOF
	}
	n, _ := m.ReadAt(p, m.off)
	m.off += int64(n)
	return n, nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += m.size
	}
	if off < 0 {
		return 0, errors.New("preprocess: seek before the start")
	}
	m.off = off
	return off, nil
}

// decodeError turns a decoder's terse error into one that names the file
// and the likely problem.
func decodeError(path, format string, head []byte, err error) error {
	if errors.Is(err, image.ErrFormat) {
		what := "unknown image format"
		if hint := sniffUnsupported(head); hint != "" {
			what = "unsupported format: " + hint
		}
		return fmt.Errorf("preprocess: %s: %s (file starts with % x); DecodeFile reads JPEG, PNG, GIF, BMP, TIFF and WebP", path, what, head)
	}
	if format == "" {
		format = "image"
	}
	// image/png refuses a width x height that int cannot hold (on 32-bit
	// platforms 60000x60000 already): over any budget, so say so.
	if strings.Contains(err.Error(), "dimension overflow") {
		dims := ""
		if len(head) >= 24 && bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")) && string(head[12:16]) == "IHDR" {
			dims = fmt.Sprintf(" %dx%d", binary.BigEndian.Uint32(head[16:20]), binary.BigEndian.Uint32(head[20:24]))
		}
		return fmt.Errorf("preprocess: %s: the %s image's size%s is more pixels than this platform's int holds: %w", path, format, dims, ErrOverBudget)
	}
	// image/png reports a short image stream as "not enough pixel data".
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "not enough pixel data") {
		return fmt.Errorf("preprocess: %s: %s data is truncated: %w", path, format, err)
	}
	return fmt.Errorf("preprocess: %s: corrupt or unsupported %s data: %w", path, format, err)
}

// sniffUnsupported names formats people commonly try that we cannot decode.
func sniffUnsupported(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return "a NumPy .npy array (use ReadNPYFile)"
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		switch string(head[8:12]) {
		case "avif", "avis":
			return "AVIF"
		case "heic", "heix", "mif1", "msf1", "hevc":
			return "HEIF/HEIC"
		}
		return "an ISO media (MP4/HEIF family) file"
	case bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cjP  ")), bytes.HasPrefix(head, []byte("\xff\x4f\xff\x51")):
		return "JPEG 2000"
	case bytes.HasPrefix(head, []byte("\xff\x0a")), bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cJXL ")):
		return "JPEG XL"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "a zip archive (.npz?)"
	case len(head) >= 3 && head[0] == 'P' && head[1] >= '1' && head[1] <= '7' && strings.ContainsRune(" \t\r\n", rune(head[2])):
		return "Netpbm (PBM/PGM/PPM)"
	}
	return ""
}
