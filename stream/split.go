// Package stream splits a byte stream of concatenated JPEG and PNG images
// into whole frames: the MJPEG that `rpicam-vid --codec mjpeg -o -`,
// `libcamera-vid` and `ffmpeg -f image2pipe` write. Frames are found by
// the images' own structure, not by searching for end markers: a JPEG's
// marker segments are skipped by their lengths and its entropy-coded data
// is read with its FF00 stuffing and RST markers, so an FFD9 inside an
// EXIF thumbnail does not end a frame early; a PNG is read chunk by chunk
// up to IEND. No frame grows past the splitter's bound.
package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameBytes bounds one frame: above any camera's MJPEG frame
// (a 12-megapixel JPEG at quality 95 is about 6 MB).
const DefaultMaxFrameBytes = 32 << 20

// Frame is one whole encoded image.
type Frame struct {
	Data   []byte // the image, SOI to EOI or signature to IEND; the caller owns it
	Offset int64  // where it starts in the stream
	Format string // "jpeg" or "png"
}

// SkipError reports bytes that were not a whole frame and were skipped:
// data between frames (Frame false), or a frame that was corrupt,
// truncated or over the bound (Frame true). It is not fatal: Next may be
// called again and goes on after the skipped bytes.
type SkipError struct {
	Offset int64 // where the skipped bytes start
	Bytes  int64 // how many were skipped
	Frame  bool  // they began like a frame
	Reason string
}

func (e *SkipError) Error() string {
	what := "bytes"
	if e.Frame {
		what = "bytes of a frame"
	}
	return fmt.Sprintf("offset %d: skipped %d %s: %s", e.Offset, e.Bytes, what, e.Reason)
}

// Splitter reads frames from a stream, one at a time.
type Splitter struct {
	br    *bufio.Reader
	max   int64
	pos   int64 // stream offset of the next unread byte
	err   error // a read error, returned from then on
	frame []byte
	last  int // the previous frame's size, the next buffer's first guess
}

// NewSplitter reads r; maxFrameBytes bounds each frame (<= 0: the
// default) and each run of skipped data reported at once.
func NewSplitter(r io.Reader, maxFrameBytes int64) *Splitter {
	if maxFrameBytes <= 0 {
		maxFrameBytes = DefaultMaxFrameBytes
	}
	return &Splitter{br: bufio.NewReaderSize(r, 64<<10), max: maxFrameBytes}
}

// Offset is the stream offset of the next byte the splitter will read.
func (s *Splitter) Offset() int64 { return s.pos }

// parse errors inside a frame; each is turned into a SkipError.
var (
	errTooLarge = errors.New("over the bound")
	errNewFrame = errors.New("new frame")
)

type corruptError string

func (e corruptError) Error() string { return string(e) }

// Next returns the next frame, a *SkipError for skipped bytes, io.EOF at
// the end of the stream, or a read error (returned again by every later
// call).
func (s *Splitter) Next() (Frame, error) {
	if s.err != nil {
		return Frame{}, s.err
	}
	at := s.pos
	format, skipped, err := s.findStart()
	if skipped > 0 {
		return Frame{}, &SkipError{Offset: at, Bytes: skipped, Reason: "not a JPEG or PNG frame"}
	}
	if err != nil {
		return Frame{}, s.fail(err)
	}
	s.frame = make([]byte, 0, min(max(s.last, 4<<10), int(s.max)))
	if format == "jpeg" {
		err = s.jpeg()
	} else {
		err = s.png()
	}
	data := s.frame
	s.frame = nil
	if err == nil {
		s.last = len(data)
		return Frame{Data: data, Offset: at, Format: format}, nil
	}
	return Frame{}, s.frameError(at, int64(len(data)), format, err)
}

// frameError is the SkipError of a frame that ended with err, or the
// read error itself.
func (s *Splitter) frameError(at, n int64, format string, err error) error {
	var c corruptError
	skip := &SkipError{Offset: at, Bytes: n, Frame: true}
	switch {
	case errors.As(err, &c):
		skip.Reason = fmt.Sprintf("corrupt %s: %s", format, c)
	case errors.Is(err, errTooLarge):
		skip.Reason = fmt.Sprintf("the %s frame is larger than the bound of %d bytes (--max-frame-bytes); skipped what was read of it", format, s.max)
	case errors.Is(err, errNewFrame):
		skip.Reason = fmt.Sprintf("truncated: a new frame starts at offset %d before this %s frame's end", s.pos, format)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		skip.Reason = fmt.Sprintf("truncated: the stream ends inside the %s frame", format)
	default:
		return s.fail(err)
	}
	return skip
}

// fail makes a read error sticky, naming the offset.
func (s *Splitter) fail(err error) error {
	if err != io.EOF {
		err = fmt.Errorf("stream: reading at offset %d: %w", s.pos, err)
	}
	s.err = err
	return err
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// findStart skips to the next JPEG SOI (FFD8 and a marker's FF) or PNG
// signature without consuming it; it stops after s.max skipped bytes so
// that endless garbage is reported in bounded runs.
func (s *Splitter) findStart() (format string, skipped int64, err error) {
	for skipped < s.max {
		b, err := s.br.Peek(len(pngSignature))
		if len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF {
			return "jpeg", skipped, nil
		}
		if bytes.Equal(b, pngSignature) {
			return "png", skipped, nil
		}
		if len(b) == 0 {
			return "", skipped, err
		}
		// Skip to the next byte that could start a frame.
		buf, _ := s.br.Peek(s.br.Buffered())
		n := len(buf)
		for i := 1; i < len(buf); i++ {
			if buf[i] == 0xFF || buf[i] == 0x89 {
				n = i
				break
			}
		}
		n = int(min(int64(n), s.max-skipped))
		s.br.Discard(n)
		s.pos += int64(n)
		skipped += int64(n)
	}
	return "", skipped, nil
}

// take appends p to the frame, refusing to grow it past the bound.
func (s *Splitter) take(p []byte) error {
	if int64(len(s.frame))+int64(len(p)) > s.max {
		return errTooLarge
	}
	if len(s.frame)+len(p) > cap(s.frame) {
		grown := make([]byte, len(s.frame), min(max(2*cap(s.frame), len(s.frame)+len(p)), int(s.max)))
		copy(grown, s.frame)
		s.frame = grown
	}
	s.frame = append(s.frame, p...)
	return nil
}

// copyN moves n bytes from the stream into the frame, checking the bound
// before reading them.
func (s *Splitter) copyN(n int64) error {
	if int64(len(s.frame))+n > s.max {
		return errTooLarge
	}
	for n > 0 {
		b, err := s.peekSome()
		if err != nil {
			return err
		}
		k := int(min(n, int64(len(b))))
		s.take(b[:k])
		s.br.Discard(k)
		s.pos += int64(k)
		n -= int64(k)
	}
	return nil
}

// readN copies n bytes into the frame and returns them.
func (s *Splitter) readN(n int) ([]byte, error) {
	if err := s.copyN(int64(n)); err != nil {
		return nil, err
	}
	return s.frame[len(s.frame)-n:], nil
}

// peekSome returns what is buffered, reading more when nothing is.
func (s *Splitter) peekSome() ([]byte, error) {
	if s.br.Buffered() == 0 {
		if _, err := s.br.Peek(1); err != nil {
			return nil, err
		}
	}
	return s.br.Peek(s.br.Buffered())
}

// png reads a PNG from its signature through the IEND chunk.
func (s *Splitter) png() error {
	if err := s.copyN(int64(len(pngSignature))); err != nil {
		return err
	}
	for {
		at := s.pos
		hdr, err := s.readN(8)
		if err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		typ := hdr[4:8]
		if n > 1<<31-1 {
			return corruptError(fmt.Sprintf("chunk at offset %d declares %d bytes, over PNG's limit of 2^31-1", at, n))
		}
		for _, c := range typ {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return corruptError(fmt.Sprintf("chunk type %q at offset %d is not four letters", typ, at+4))
			}
		}
		end := string(typ) == "IEND"
		if err := s.copyN(int64(n) + 4); err != nil { // data and CRC
			return err
		}
		if end {
			return nil
		}
	}
}
