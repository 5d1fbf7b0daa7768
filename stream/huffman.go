package stream

import (
	"bytes"
	"image"
	"image/jpeg"
	"sync"
)

// WithDefaultHuffman returns a JPEG frame with the standard Huffman tables
// (ITU T.81 Annex K.3) inserted before its first scan when it defines
// none there, and the frame itself (and false) otherwise. Motion-JPEG
// from USB webcams (AVI1 frames, and ffmpeg -c:v copy of them) leaves
// the tables out and relies on the standard ones, which Go's decoder does
// not assume ("uninitialized Huffman table"); ffmpeg's mjpeg2jpeg filter
// makes the same repair.
func WithDefaultHuffman(frame []byte) ([]byte, bool) {
	sos := firstScanWithoutTables(frame)
	if sos < 0 {
		return frame, false
	}
	dht := defaultDHT()
	if len(dht) == 0 {
		return frame, false
	}
	out := make([]byte, 0, len(frame)+len(dht))
	out = append(append(append(out, frame[:sos]...), dht...), frame[sos:]...)
	return out, true
}

// firstScanWithoutTables is the offset of the first SOS marker of a JPEG
// when no DHT segment comes before it, else -1 (also for anything that is
// not a well-formed JPEG up to its first scan).
func firstScanWithoutTables(b []byte) int {
	if len(b) < 4 || b[0] != 0xFF || b[1] != markerSOI {
		return -1
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			return -1
		}
		switch m := b[i+1]; {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0xC4: // DHT
			return -1
		case m == markerSOS:
			return i
		case m == markerEOI || m == markerTEM || markerRST <= m && m <= markerRST+7 || m == markerSOI || m == 0x00:
			return -1
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	return -1
}

// defaultDHT is a DHT segment of the four standard tables, taken from a
// JPEG Go's encoder writes: it uses exactly the tables of Annex K.3
// (nil if that failed, which encoding a blank image in memory does not).
var defaultDHT = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		return nil
	}
	var dht []byte
	d := b.Bytes()
	for i := 2; i+4 <= len(d) && d[i+1] != markerSOS; {
		n := 2 + (int(d[i+2])<<8 | int(d[i+3]))
		if d[i+1] == 0xC4 {
			dht = append(dht, d[i:i+n]...)
		}
		i += n
	}
	return dht
})
