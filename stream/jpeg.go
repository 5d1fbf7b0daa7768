package stream

import (
	"bytes"
	"fmt"
)

// JPEG markers the splitter treats specially.
const (
	markerSOI = 0xD8
	markerEOI = 0xD9
	markerSOS = 0xDA
	markerTEM = 0x01
	markerRST = 0xD0 // RST0..RST7: 0xD0..0xD7
)

// jpeg reads a JPEG from its SOI through its EOI: marker segments by their
// lengths, and after each SOS (one per scan; progressive JPEGs have
// several, with tables between them) the entropy-coded data up to the
// next marker that is not stuffing or a restart.
func (s *Splitter) jpeg() error {
	if err := s.copyN(2); err != nil { // SOI
		return err
	}
	m, err := s.marker()
	for err == nil {
		switch {
		case m == markerEOI:
			return nil
		case m == markerTEM || markerRST <= m && m <= markerRST+7:
			m, err = s.marker() // no length
			continue
		}
		at := s.pos
		var l []byte
		if l, err = s.readN(2); err != nil {
			return err
		}
		n := int64(l[0])<<8 | int64(l[1])
		if n < 2 {
			return corruptError(fmt.Sprintf("marker segment FF%02X at offset %d has length %d (at least 2)", m, at-2, n))
		}
		if err = s.copyN(n - 2); err != nil {
			return err
		}
		if m == markerSOS {
			m, err = s.entropy()
		} else {
			m, err = s.marker()
		}
	}
	return err
}

// marker reads the marker that must come next (fill bytes FF before it
// allowed) and returns its code. A SOI is not consumed: it starts the
// next frame, so this one was cut short.
func (s *Splitter) marker() (byte, error) {
	for {
		at := s.pos
		b, err := s.br.Peek(2)
		if len(b) < 2 {
			if len(b) == 1 && b[0] != 0xFF {
				return 0, corruptError(fmt.Sprintf("byte 0x%02X at offset %d where a marker should be", b[0], at))
			}
			return 0, err
		}
		switch {
		case b[0] != 0xFF:
			return 0, corruptError(fmt.Sprintf("byte 0x%02X at offset %d where a marker should be", b[0], at))
		case b[1] == 0xFF: // a fill byte
			if err := s.copyN(1); err != nil {
				return 0, err
			}
			continue
		case b[1] == markerSOI:
			return 0, errNewFrame
		case b[1] == 0x00:
			return 0, corruptError(fmt.Sprintf("stuffed FF00 at offset %d outside entropy-coded data", at))
		}
		m := b[1]
		return m, s.copyN(2)
	}
}

// entropy reads entropy-coded data: FF is followed by 00 (a stuffed FF
// byte), a restart marker or fill bytes inside it; any other marker ends
// it, and its code is returned.
func (s *Splitter) entropy() (byte, error) {
	for {
		b, err := s.peekSome()
		if err != nil {
			return 0, err
		}
		i := bytes.IndexByte(b, 0xFF)
		if i < 0 {
			i = len(b)
		}
		if err := s.copyN(int64(i)); err != nil {
			return 0, err
		}
		if i == len(b) {
			continue
		}
		b, err = s.br.Peek(2)
		if len(b) < 2 {
			return 0, err
		}
		if c := b[1]; c == 0x00 || markerRST <= c && c <= markerRST+7 {
			if err := s.copyN(2); err != nil {
				return 0, err
			}
			continue
		} else if c == 0xFF { // a fill byte; the next FF is looked at again
			if err := s.copyN(1); err != nil {
				return 0, err
			}
			continue
		}
		return s.marker()
	}
}
