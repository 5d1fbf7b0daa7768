package stream

import (
	"bytes"
	"testing"
)

// FuzzSplit splits arbitrary bytes with a small bound: no panic, no frame
// over the bound, and what Next returns tiles the input exactly (each
// frame is the input's bytes at its offset, each skip starts where the
// previous piece ended), so nothing is lost, repeated or invented. Seeds:
// encoded JPEGs and PNGs, one with an EXIF thumbnail, the multi-scan
// skeleton, and pieces of them after garbage.
//
//	go test -run '^$' -fuzz '^FuzzSplit$' -fuzztime 20s ./stream
func FuzzSplit(f *testing.F) {
	j := encodeJPEG(f, 12, 9, 1)
	p := encodePNG(f, 6, 5, 2)
	for _, seed := range [][]byte{
		j, p, multiScan(), withThumbnail(j, encodeJPEG(f, 4, 4, 3)),
		append(append([]byte("junk\xff"), j...), p[:40]...),
		append(j[:len(j)-10], j...),
		append(pngSignature, 0xFF, 0xD8, 0xFF, 0xD9),
	} {
		f.Add(seed, uint16(200))
		f.Add(seed, uint16(4000))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxBytes uint16) {
		bound := int64(maxBytes%4096) + 16
		evs, frames, err := split(t, bytes.NewReader(data), bound)
		if err != nil {
			t.Fatalf("error other than a skip: %v", err)
		}
		var end int64
		fi := 0
		for _, e := range evs {
			if e.off != end || e.n <= 0 {
				t.Fatalf("event %+v after offset %d: pieces must tile the input", e, end)
			}
			if e.frame {
				if e.n > bound || !bytes.Equal(frames[fi], data[e.off:e.off+e.n]) {
					t.Fatalf("frame %+v is not the input there, or over the bound %d", e, bound)
				}
				fi++
			} else if e.n > bound {
				t.Fatalf("skip %+v over the bound %d", e, bound)
			}
			end = e.off + e.n
		}
		if end != int64(len(data)) {
			t.Fatalf("pieces end at %d of %d bytes", end, len(data))
		}
	})
}
