package firmware

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edge-resnet/edge-resnet/arena"
)

// MaxModelBytes caps the size of one model file: model images (Open maps
// regular files, and reads pipes, devices and standard input into one
// buffer; either way checking the CRC touches every byte), ONNX files
// (package onnx reads them through ReadAll) and safetensors files
// (package safetensors reads them through ReadCapped). Larger files are
// refused before they are read, streams as soon as they pass it.
//
// 1 GiB holds every network this runtime is for with room to spare
// (ResNet-152 is 240 MB in float32, Wide ResNet-101-2 about 510 MB), is
// below the 2 GiB a protobuf (ONNX) message can hold, and still leaves
// room for the arena on a 2-4 GB board. Raise it for larger models.
var MaxModelBytes int64 = 1 << 30

// ErrTooLarge is wrapped by the errors about a model larger than the limit
// it is read under (MaxModelBytes unless the caller gives another).
var ErrTooLarge = errors.New("model too large")

// ReadAll reads a whole model file from r, a model image or an ONNX
// (protobuf) file, refusing more than limit bytes (MaxModelBytes if limit
// <= 0) with an error that wraps ErrTooLarge and names the limit. It is
// meant for pipes, devices and standard input; a regular *os.File larger
// than limit is refused before anything is read.
//
// It does not read what cannot be a model: a model image is read as far
// as its header says, after the header's CRC and the size it declares are
// checked, and more data after that is an ErrCorrupt error; anything else
// is read as the sequence of protobuf fields an ONNX file is, checking
// each field's length against the limit before reading it, so data that
// is not protobuf (/dev/zero, text) is an ErrCorrupt error at its first
// bytes. Truncation is not an error here: the decoder (Decode,
// onnx.Import) reports it.
//
// Errors have no "firmware:" prefix and no path: callers add them.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	return readModel(r, limit, imageOrProtobuf)
}

// ReadCapped reads a whole file of another format from r under the rules
// of ReadAll: at most limit bytes (MaxModelBytes if limit <= 0), a regular
// *os.File larger than that refused before it is read, a stream as soon as
// it passes it, with an error that wraps ErrTooLarge. A stream's first
// head bytes are read first and given to plausible: if it returns false,
// or the stream ends before them, what was read is returned, so that data
// that cannot be of the format (/dev/zero) is not read to the limit and
// the caller's decoder reports it. Errors have no prefix and no path.
func ReadCapped(r io.Reader, limit int64, head int, plausible func(head []byte) bool) ([]byte, error) {
	return readStream(r, limit, func(br *bufio.Reader, limit int64) ([]byte, error) {
		data, err := appendN(nil, br, int64(head), 0)
		if err != nil || len(data) < head || !plausible(data) {
			return data, err
		}
		return readRest(data, br, limit)
	})
}

// streamKind is what readModel reads.
type streamKind uint8

const (
	imageOrProtobuf streamKind = iota // ReadAll
	imageOnly                         // Open: the first bytes of anything else go to decode to report
)

// readModel is ReadAll for the given kind of file.
func readModel(r io.Reader, limit int64, kind streamKind) ([]byte, error) {
	return readStream(r, limit, func(br *bufio.Reader, limit int64) ([]byte, error) {
		head, err := br.Peek(len(magic))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if IsImage(head) {
			return readImage(br, limit)
		}
		if kind == imageOnly || len(head) == 0 {
			return append([]byte(nil), head...), nil
		}
		return readProtobuf(br, limit)
	})
}

// readStream reads r whole under limit (MaxModelBytes if <= 0): a regular
// file by its size, anything else (pipes, devices) with stream.
func readStream(r io.Reader, limit int64, stream func(br *bufio.Reader, limit int64) ([]byte, error)) ([]byte, error) {
	if limit <= 0 {
		limit = MaxModelBytes
	}
	limit = min(limit, math.MaxInt-1) // what one buffer can hold (32-bit systems)
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return readRegular(f, fi.Size(), limit)
		}
	}
	return stream(bufio.NewReader(r), limit)
}

// tooLarge is the ErrTooLarge error for data beyond limit bytes.
func tooLarge(limit int64, format string, args ...any) error {
	lim := arena.FormatBytes(limit)
	if limit == MaxModelBytes {
		lim += ", firmware.MaxModelBytes"
	}
	return fmt.Errorf("%w: %s (limit %s)", ErrTooLarge, fmt.Sprintf(format, args...), lim)
}

// readRegular reads a regular file of the given size whole.
func readRegular(f *os.File, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, tooLarge(limit, "the file is %s", arena.FormatBytes(size))
	}
	// Room for one byte more than the size, which shows a file that grew.
	return readRest(make([]byte, 0, size+1), f, limit)
}

// readRest appends the rest of r to buf, failing once the whole passes
// limit.
func readRest(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	data, err := appendN(buf, r, limit+1-int64(len(buf)), 0)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(limit, "more than %s of data", arena.FormatBytes(limit))
	}
	return data, nil
}

// appendN appends up to n bytes of r to buf, stopping early at EOF. The
// buffer grows as data arrives, by doubling, to at most len(buf)+want
// before it must grow further: a declared size that the data does not
// bear out costs no memory.
func appendN(buf []byte, r io.Reader, n, want int64) ([]byte, error) {
	end := int64(len(buf)) + n
	target := int64(len(buf)) + min(max(want, 0), n)
	for int64(len(buf)) < end {
		if len(buf) == cap(buf) {
			c := max(2*int64(cap(buf)), 64<<10)
			if int64(cap(buf)) < target {
				c = min(c, target)
			}
			c = min(c, end)
			nb := make([]byte, len(buf), c)
			copy(nb, buf)
			buf = nb
		}
		k, err := r.Read(buf[len(buf):min(int64(cap(buf)), end)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// readImage reads a model image as far as its header declares.
func readImage(br *bufio.Reader, limit int64) ([]byte, error) {
	head, err := appendN(nil, br, offHeaderSize+4, 0)
	if err != nil {
		return nil, err
	}
	if len(head) < offHeaderSize+4 {
		return head, nil // truncated: decode says so
	}
	hs := binary.LittleEndian.Uint32(head[offHeaderSize:])
	if hs < headerSize || hs > maxHeaderSize {
		return head, nil // decode reports the bad header size
	}
	if head, err = appendN(head, br, int64(hs)-int64(len(head)), 0); err != nil {
		return nil, err
	}
	h, err := parseFixedHeader(head)
	if err != nil {
		return nil, err
	}
	bo := binary.LittleEndian.Uint64(head[offBlobOff:])
	bl := binary.LittleEndian.Uint64(head[offBlobLen:])
	if bo > uint64(limit) || bl > uint64(limit)-bo {
		return nil, tooLarge(limit, "the image header declares a blob of %d bytes at offset %d", bl, bo)
	}
	size := int64(bo + bl)
	if size <= int64(h.size) {
		return head, nil // decode reports the inconsistent sections
	}
	data, err := appendN(head, br, size-int64(len(head)), size-int64(len(head)))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) == size {
		if _, err := br.ReadByte(); err == nil {
			return nil, corruptf("data continues after the %d bytes the image header declares", size)
		}
	}
	return data, nil
}

// readProtobuf reads a protobuf message field by field, checking each tag
// and each length against the limit before reading further.
func readProtobuf(br *bufio.Reader, limit int64) ([]byte, error) {
	var buf []byte
	var groups []protowire.Number // open groups, innermost last
	for {
		start := len(buf)
		var err error
		if buf, err = appendVarint(buf, br); err != nil {
			return nil, err
		}
		if len(buf) == start {
			return buf, nil // the end
		}
		num, typ, n := protowire.ConsumeTag(buf[start:])
		if n < 0 {
			return nil, notProtobuf(start, "bad field tag: %v", protowire.ParseError(n))
		}
		var k int64 // bytes of the value that follow
		switch typ {
		case protowire.VarintType:
			buf, err = appendVarint(buf, br)
		case protowire.Fixed32Type:
			k = 4
		case protowire.Fixed64Type:
			k = 8
		case protowire.BytesType:
			at := len(buf)
			if buf, err = appendVarint(buf, br); err != nil {
				return nil, err
			}
			v, m := protowire.ConsumeVarint(buf[at:])
			if m < 0 {
				return buf, nil // truncated: the decoder says so
			}
			if v > uint64(limit) {
				return nil, tooLarge(limit, "protobuf field %d at byte %d declares %d bytes", num, start, v)
			}
			k = int64(v)
		case protowire.StartGroupType: // not used by ONNX, but valid protobuf
			if len(groups) == protowire.DefaultRecursionLimit {
				return nil, notProtobuf(start, "groups nested more than %d deep", len(groups))
			}
			groups = append(groups, num)
		case protowire.EndGroupType:
			if len(groups) == 0 || groups[len(groups)-1] != num {
				return nil, notProtobuf(start, "end of group %d that is not open", num)
			}
			groups = groups[:len(groups)-1]
		default:
			return nil, notProtobuf(start, "wire type %d does not exist", typ)
		}
		if err != nil {
			return nil, err
		}
		if k > 0 {
			if buf, err = appendN(buf, br, min(k, limit+1-int64(len(buf))), k); err != nil {
				return nil, err
			}
		}
		if int64(len(buf)) > limit {
			return nil, tooLarge(limit, "more than %s of data", arena.FormatBytes(limit))
		}
	}
}

func notProtobuf(at int, format string, args ...any) error {
	return corruptf("neither a model image nor an ONNX file: at byte %d: %s", at, fmt.Sprintf(format, args...))
}

// appendVarint appends the bytes of one varint (at most 10, fewer at EOF).
func appendVarint(buf []byte, br *bufio.Reader) ([]byte, error) {
	for range binary.MaxVarintLen64 {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		buf = append(buf, c)
		if c < 0x80 {
			break
		}
	}
	return buf, nil
}
