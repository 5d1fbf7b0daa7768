package preprocess

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// NumPy .npy support: enough of the format (numpy/lib/format.py's
// documented layout) for model inputs and test fixtures.
//
//	"\x93NUMPY" major minor  header-length (uint16 LE for 1.0, uint32 LE
//	for 2.0 and 3.0)  header (a Python dict literal, padded with spaces
//	and a newline)  raw data
//
// Readers face untrusted files, so every size is checked before it is
// used: against the file's size when it is known, and against
// MaxDecodeBytes. Nothing is allocated up front from a stream header's
// claims (data is read in chunks and buffers grow only as bytes arrive),
// and malformed input is an error, never a panic.

const (
	npyMagic = "\x93NUMPY"
	// maxNPYHeader bounds the header length. Simple dtypes need ~100
	// bytes; numpy's own reader refuses more than 10000 by default.
	maxNPYHeader = 1 << 16
	// maxNPYDims bounds ndim (numpy allows 64).
	maxNPYDims = 64
	// npyChunk is how many bytes are read (and allocated) at a time.
	npyChunk = 1 << 16
)

// npyDtype is a supported element type.
type npyDtype struct {
	size    int
	bigEnd  bool
	kind    byte // 'f' or 'u'
	display string
}

func parseDescr(s string) (npyDtype, error) {
	switch s {
	case "<f4", ">f4":
		return npyDtype{4, s[0] == '>', 'f', s}, nil
	case "<f8", ">f8":
		return npyDtype{8, s[0] == '>', 'f', s}, nil
	case "|u1", "u1", "<u1", ">u1":
		return npyDtype{1, false, 'u', s}, nil
	}
	return npyDtype{}, fmt.Errorf("unsupported dtype %q (want <f4, >f4, <f8, >f8 or |u1)", s)
}

// npyHeader is the parsed header dict.
type npyHeader struct {
	dtype   npyDtype
	fortran bool
	shape   []int
	count   int // number of elements
}

// ReadNPY reads one NumPy .npy array (format version 1.0, 2.0 or 3.0) of
// dtype <f4, >f4, <f8, >f8 (rounded to float32) or |u1 (0..255 as float32)
// and returns its shape and its data in C (row-major) order.
// Fortran-ordered arrays are transposed to C order. A 0-d array has shape
// [] and one value. The array as float32 must fit in MaxDecodeBytes with
// a second copy for a Fortran-order array (the transpose) or half a copy
// for a stream (the buffer's last growth), checked from the header before
// any data is read. ReadNPY reads exactly the array's bytes and leaves any
// rest of r unread.
func ReadNPY(r io.Reader) (shape []int, data []float32, err error) {
	return readNPY(r, -1)
}

// ReadNPYFile reads a .npy file with ReadNPY, and also rejects a file
// whose size does not match its header (truncated, or trailing bytes).
// A path that is not a regular file (a pipe, /dev/stdin) is read as a
// stream: exactly the bytes the header declares, within MaxDecodeBytes,
// and one more to check that nothing follows.
func ReadNPYFile(path string) ([]int, []float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("preprocess: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("preprocess: %w", err)
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		size = -1
	}
	br := bufio.NewReaderSize(f, npyChunk)
	shape, data, err := readNPY(br, size)
	if err == nil && size < 0 {
		if _, e := br.ReadByte(); e == nil {
			err = npyErr("data goes on after the array's %d values", len(data))
		} else if e != io.EOF {
			err = npyErr("%v", e)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return shape, data, nil
}

// readNPY reads an array; size is the total input size when known (a
// file), or -1.
func readNPY(r io.Reader, size int64) ([]int, []float32, error) {
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, nil, npyErr("file too short for the .npy preamble: %v", err)
	}
	if string(pre[:6]) != npyMagic {
		return nil, nil, npyErr("not a .npy file (bad magic % x)", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int
	var pos int64 = 8
	switch {
	case major == 1 && minor == 0:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, nil, npyErr("truncated header length: %v", err)
		}
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
		pos += 2
	case (major == 2 || major == 3) && minor == 0:
		if _, err := io.ReadFull(r, pre[8:12]); err != nil {
			return nil, nil, npyErr("truncated header length: %v", err)
		}
		n := binary.LittleEndian.Uint32(pre[8:12])
		if n > maxNPYHeader {
			return nil, nil, npyErr("header length %d exceeds the limit %d", n, maxNPYHeader)
		}
		hlen = int(n)
		pos += 4
	default:
		return nil, nil, npyErr("unsupported format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	if size >= 0 && pos+int64(hlen) > size {
		return nil, nil, npyErr("header of %d bytes runs past the end of the %d-byte file", hlen, size)
	}
	hbuf, err := readChunked(r, hlen)
	if err != nil {
		return nil, nil, npyErr("truncated header (want %d bytes): %v", hlen, err)
	}
	pos += int64(hlen)
	h, err := parseNPYHeader(hbuf)
	if err != nil {
		return nil, nil, err
	}
	nbytes := int64(h.count) * int64(h.dtype.size) // checked in parseNPYHeader
	if size >= 0 {
		if have := size - pos; have != nbytes {
			return nil, nil, npyErr("shape %v of %s needs %d data bytes, file has %d", h.shape, h.dtype.display, nbytes, have)
		}
	}
	// The values as float32, plus a second copy for a Fortran-order
	// transpose or, read from a stream, for the buffer's last growth.
	c := cost{image: mulSat(int64(h.count), 4)}
	if h.fortran && len(h.shape) > 1 {
		c.add("Fortran-order transpose", c.image)
	} else if size < 0 {
		c.add("growing the buffer", c.image/2)
	}
	if err := c.check(MaxDecodeBytes, func() string {
		return fmt.Sprintf("npy: reading shape %v of %s as float32", h.shape, h.dtype.display)
	}); err != nil {
		return nil, nil, err
	}
	data, err := readNPYData(r, h, size >= 0)
	if err != nil {
		return nil, nil, err
	}
	if h.fortran && len(h.shape) > 1 {
		data = fortranToC(h.shape, data)
	}
	return h.shape, data, nil
}

func npyErr(format string, args ...any) error {
	return fmt.Errorf("preprocess: npy: "+format, args...)
}

// readChunked reads exactly n bytes, allocating as data arrives, so a
// header that lies about its length cannot make us allocate much.
func readChunked(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, npyChunk))
	for len(buf) < n {
		k := min(n-len(buf), npyChunk)
		if cap(buf)-len(buf) < k {
			nb := make([]byte, len(buf), min(n, 2*cap(buf)+k))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// readNPYData reads and converts h.count elements chunk by chunk. The
// output grows only as data arrives, unless sized (the file was checked
// to hold the data): then it is allocated once.
func readNPYData(r io.Reader, h npyHeader, sized bool) ([]float32, error) {
	sz := h.dtype.size
	per := npyChunk / sz
	var chunk [npyChunk]byte
	n := min(h.count, per)
	if sized {
		n = h.count
	}
	out := make([]float32, 0, n)
	for len(out) < h.count {
		k := min(h.count-len(out), per)
		b := chunk[:k*sz]
		if m, err := io.ReadFull(r, b); err != nil {
			got := int64(len(out))*int64(sz) + int64(m)
			return nil, npyErr("data truncated: shape %v of %s needs %d bytes, got %d", h.shape, h.dtype.display, int64(h.count)*int64(sz), got)
		}
		if len(out)+k > cap(out) {
			nb := make([]float32, len(out), min(h.count, 2*cap(out)+k))
			copy(nb, out)
			out = nb
		}
		for i := 0; i < k; i++ {
			var v float32
			switch {
			case h.dtype.kind == 'u':
				v = float32(b[i])
			case sz == 4 && !h.dtype.bigEnd:
				v = math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:]))
			case sz == 4:
				v = math.Float32frombits(binary.BigEndian.Uint32(b[i*4:]))
			case !h.dtype.bigEnd:
				v = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[i*8:])))
			default:
				v = float32(math.Float64frombits(binary.BigEndian.Uint64(b[i*8:])))
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// fortranToC reorders column-major data to row-major. An odometer walks
// the C-order index and tracks the matching Fortran offset.
func fortranToC(shape []int, data []float32) []float32 {
	n := len(shape)
	fstride := make([]int, n)
	s := 1
	for k := 0; k < n; k++ {
		fstride[k] = s
		s *= shape[k]
	}
	out := make([]float32, len(data))
	idx := make([]int, n)
	off := 0
	for i := range out {
		out[i] = data[off]
		for k := n - 1; k >= 0; k-- {
			idx[k]++
			off += fstride[k]
			if idx[k] < shape[k] {
				break
			}
			off -= idx[k] * fstride[k]
			idx[k] = 0
		}
	}
	return out
}

// parseNPYHeader parses the header dict: exactly the keys 'descr',
// 'fortran_order' and 'shape', Python literal syntax, then only padding.
func parseNPYHeader(b []byte) (npyHeader, error) {
	var h npyHeader
	p := &pyParser{s: b}
	fail := func(err error) (npyHeader, error) {
		return h, npyErr("bad header %q: %v", truncate(b, 120), err)
	}
	seen, err := p.headerDict(&h)
	if err != nil {
		return fail(err)
	}
	for ; p.i < len(b); p.i++ {
		if c := b[p.i]; c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			return fail(fmt.Errorf("unexpected %q after the dict", c))
		}
	}
	if !seen.descr || !seen.order || !seen.shape {
		return fail(errors.New("want keys 'descr', 'fortran_order' and 'shape'"))
	}
	if h.count, err = npyCount(h.shape, h.dtype.size); err != nil {
		return fail(err)
	}
	if h.shape == nil {
		h.shape = []int{}
	}
	return h, nil
}

// npyKeys records which keys of the header dict have been read.
type npyKeys struct{ descr, order, shape bool }

// headerDict parses the header dict into h, refusing unknown and repeated
// keys; it does not require all keys (the caller checks after the padding).
func (p *pyParser) headerDict(h *npyHeader) (npyKeys, error) {
	var seen npyKeys
	if err := p.expect('{'); err != nil {
		return seen, err
	}
	for {
		p.space()
		if p.peek() == '}' {
			p.i++
			return seen, nil
		}
		key, err := p.str()
		if err != nil {
			return seen, err
		}
		if err := p.expect(':'); err != nil {
			return seen, err
		}
		p.space()
		if err := p.headerValue(key, h, &seen); err != nil {
			return seen, err
		}
		p.space()
		if p.peek() == ',' {
			p.i++
			continue
		}
		return seen, p.expect('}')
	}
}

// headerValue parses the value of key into h and marks key seen.
func (p *pyParser) headerValue(key string, h *npyHeader, seen *npyKeys) error {
	var err error
	switch key {
	case "descr":
		if err := markKey(&seen.descr, key); err != nil {
			return err
		}
		var d string
		if d, err = p.str(); err != nil {
			return err
		}
		h.dtype, err = parseDescr(d)
	case "fortran_order":
		if err := markKey(&seen.order, key); err != nil {
			return err
		}
		h.fortran, err = p.boolean()
	case "shape":
		if err := markKey(&seen.shape, key); err != nil {
			return err
		}
		h.shape, err = p.tuple()
	default:
		err = fmt.Errorf("unexpected key %q", key)
	}
	return err
}

// markKey marks a header key seen, or fails if it was already.
func markKey(seen *bool, key string) error {
	if *seen {
		return fmt.Errorf("duplicate key '%s'", key)
	}
	*seen = true
	return nil
}

// npyCount is the number of elements of shape, refusing a negative
// dimension and any shape whose byte size (elements of size bytes)
// overflows an int.
func npyCount(shape []int, size int) (int, error) {
	count := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d", d)
		}
		if d != 0 && count > math.MaxInt/size/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		count *= d
	}
	return count, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// pyParser is a tiny parser for the Python literals an .npy header uses.
type pyParser struct {
	s []byte
	i int
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyParser) expect(c byte) error {
	p.space()
	if p.peek() != c {
		return p.unexpected(fmt.Sprintf("%q", c))
	}
	p.i++
	return nil
}

func (p *pyParser) unexpected(want string) error {
	if p.i >= len(p.s) {
		return fmt.Errorf("header ends where %s was expected", want)
	}
	return fmt.Errorf("at byte %d: want %s, found %q", p.i, want, p.s[p.i])
}

// str parses a quoted string without escapes (none of the valid keys or
// dtypes we accept need them).
func (p *pyParser) str() (string, error) {
	p.space()
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.unexpected("a quoted string")
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch p.s[j] {
		case q:
			p.i = j + 1
			return string(p.s[start:j]), nil
		case '\\', '\n':
			return "", fmt.Errorf("at byte %d: unsupported character %q in string", j, p.s[j])
		}
	}
	return "", errors.New("unterminated string")
}

func (p *pyParser) boolean() (bool, error) {
	p.space()
	rest := p.s[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "True":
		p.i += 4
		return true, nil
	case len(rest) >= 5 && string(rest[:5]) == "False":
		p.i += 5
		return false, nil
	}
	return false, p.unexpected("True or False")
}

// tuple parses "(d0, d1, ...)" with an optional trailing comma; Python 2
// writers may add an L suffix to the numbers.
func (p *pyParser) tuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var dims []int
	for {
		p.space()
		if p.peek() == ')' {
			p.i++
			return dims, nil
		}
		if len(dims) == maxNPYDims {
			return nil, fmt.Errorf("more than %d dimensions", maxNPYDims)
		}
		start := p.i
		if p.peek() == '-' || p.peek() == '+' {
			p.i++
		}
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		num := string(p.s[start:p.i])
		if p.peek() == 'L' {
			p.i++
		}
		d, err := strconv.Atoi(num)
		if err != nil {
			if num == "" || num == "-" || num == "+" {
				return nil, p.unexpected("a dimension")
			}
			return nil, fmt.Errorf("dimension %s out of range", num)
		}
		dims = append(dims, d)
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case ')':
		default:
			return nil, p.unexpected("',' or ')'")
		}
	}
}

// WriteNPY writes data as a version 1.0 .npy array of dtype <f4 in C
// order with the given shape (any rank, including 0-d).
func WriteNPY(w io.Writer, shape []int, data []float32) error {
	if len(shape) > maxNPYDims {
		return npyErr("%d dimensions, at most %d", len(shape), maxNPYDims)
	}
	count := 1
	for _, d := range shape {
		if d < 0 {
			return npyErr("negative dimension in shape %v", shape)
		}
		if d != 0 && count > math.MaxInt/4/d {
			return npyErr("shape %v is too large", shape)
		}
		count *= d
	}
	if count != len(data) {
		return npyErr("shape %v holds %d values, data has %d", shape, count, len(data))
	}
	hdr := []byte("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			hdr = append(hdr, ", "...)
		}
		hdr = strconv.AppendInt(hdr, int64(d), 10)
	}
	if len(shape) == 1 {
		hdr = append(hdr, ',')
	}
	hdr = append(hdr, "), }"...)
	// Pad with spaces so that the data starts 64-byte aligned, as numpy does.
	total := len(npyMagic) + 4 + len(hdr) + 1
	for total%64 != 0 {
		hdr = append(hdr, ' ')
		total++
	}
	hdr = append(hdr, '\n')
	if len(hdr) > math.MaxUint16 {
		return npyErr("header of %d bytes does not fit format 1.0", len(hdr))
	}
	pre := []byte(npyMagic + "\x01\x00\x00\x00")
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(hdr)))
	if _, err := w.Write(append(pre, hdr...)); err != nil {
		return err
	}
	var buf [npyChunk]byte
	for len(data) > 0 {
		k := min(len(data), npyChunk/4)
		for i, v := range data[:k] {
			binary.LittleEndian.PutUint32(buf[i*4:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:k*4]); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

// NCHWToNHWC converts a [1,C,H,W] or [C,H,W] tensor (as .npy model inputs
// from PyTorch are laid out) to NHWC in dst, which must have the same
// number of values.
func NCHWToNHWC(shape []int, data []float32, dst []float32) error {
	var c, h, w int
	switch {
	case len(shape) == 4 && shape[0] == 1:
		c, h, w = shape[1], shape[2], shape[3]
	case len(shape) == 3:
		c, h, w = shape[0], shape[1], shape[2]
	default:
		return fmt.Errorf("preprocess: NCHWToNHWC: shape %v is not [1,C,H,W] or [C,H,W]", shape)
	}
	if c <= 0 || h <= 0 || w <= 0 || c > math.MaxInt/h/w {
		return fmt.Errorf("preprocess: NCHWToNHWC: bad shape %v", shape)
	}
	n := c * h * w
	if len(data) != n || len(dst) != n {
		return fmt.Errorf("preprocess: NCHWToNHWC: shape %v holds %d values, data has %d, dst %d", shape, n, len(data), len(dst))
	}
	hw := h * w
	for ci := 0; ci < c; ci++ {
		plane := data[ci*hw : (ci+1)*hw]
		for i, v := range plane {
			dst[i*c+ci] = v
		}
	}
	return nil
}
