package stream

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// testImage is a w x h gradient that differs by seed.
func testImage(w, h, seed int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x*7 + seed), uint8(y*5 + seed*3), uint8(x*y + seed), 255})
		}
	}
	return img
}

func encodeJPEG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(w, h, seed), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(w, h, seed)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withThumbnail puts thumb into an APP1 (EXIF) segment right after
// frame's SOI, as cameras store their EXIF thumbnails: thumb's FFD9 sits
// inside the frame.
func withThumbnail(frame, thumb []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), thumb...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{0xFF, 0xD8}, seg...)
	out = append(out, payload...)
	return append(out, frame[2:]...)
}

// multiScan is a hand-made JPEG skeleton with two scans, a table between
// them, restart markers, stuffed FF00 bytes and fill bytes: what
// progressive and restart-interval JPEGs hold (not decodable, but every
// byte where the format puts it).
func multiScan() []byte {
	return []byte{
		0xFF, 0xD8, // SOI
		0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01, // DRI
		0xFF, 0xDA, 0x00, 0x03, 0x00, // SOS
		0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD1, 0x78, // entropy: stuffing, RST0, fill + RST1
		0xFF, 0xC4, 0x00, 0x05, 0xFF, 0xD9, 0x00, // DHT whose payload holds FFD9
		0xFF, 0xFF, 0xDA, 0x00, 0x02, // fill byte, SOS
		0x9A, 0xFF, 0x00, 0xFF, 0xD7, // entropy
		0xFF, 0xD9, // EOI
	}
}

type event struct {
	frame  bool  // a Frame (else a SkipError)
	off, n int64 // offset and length
	skipF  bool  // SkipError.Frame
	reason string
}

// split runs a splitter to its end and lists what it returned.
func split(t *testing.T, r io.Reader, maxBytes int64) ([]event, [][]byte, error) {
	t.Helper()
	s := NewSplitter(r, maxBytes)
	var evs []event
	var frames [][]byte
	for range 10000 {
		f, err := s.Next()
		var skip *SkipError
		switch {
		case err == nil:
			if int64(len(f.Data)) > s.max {
				t.Fatalf("frame of %d bytes over the bound %d", len(f.Data), s.max)
			}
			evs = append(evs, event{frame: true, off: f.Offset, n: int64(len(f.Data))})
			frames = append(frames, f.Data)
		case errors.As(err, &skip):
			evs = append(evs, event{off: skip.Offset, n: skip.Bytes, skipF: skip.Frame, reason: skip.Reason})
		case err == io.EOF:
			return evs, frames, nil
		default:
			return evs, frames, err
		}
	}
	t.Fatal("the splitter did not end")
	return nil, nil, nil
}

func TestSplit(t *testing.T) {
	j1, j2 := encodeJPEG(t, 40, 30, 1), encodeJPEG(t, 64, 48, 2)
	p1 := encodePNG(t, 20, 10, 3)
	thumb := withThumbnail(j2, encodeJPEG(t, 8, 8, 4))
	ms := multiScan()
	garbage := []byte("--frame\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\x00")
	badPNG := append(append([]byte{}, pngSignature...), 0, 0, 0, 0, '1', 'E', 'N', 'D', 0, 0, 0, 0)
	n := func(b []byte) int64 { return int64(len(b)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	frame := func(off int64, b []byte) event { return event{frame: true, off: off, n: n(b)} }
	cases := []struct {
		name string
		data []byte
		max  int64
		want []event
	}{
		{"jpeg png jpeg", cat(j1, p1, j2), 0, []event{frame(0, j1), frame(n(j1), p1), frame(n(j1)+n(p1), j2)}},
		{"exif thumbnail", cat(thumb, j1), 0, []event{frame(0, thumb), frame(n(thumb), j1)}},
		{"scans restarts stuffing", cat(ms, ms), 0, []event{frame(0, ms), frame(n(ms), ms)}},
		{"garbage around", cat(garbage, j1, garbage, p1, []byte("tail")), 0, []event{
			{off: 0, n: n(garbage), reason: "not a JPEG or PNG frame"}, frame(n(garbage), j1),
			{off: n(garbage) + n(j1), n: n(garbage), reason: "not a JPEG or PNG frame"}, frame(2*n(garbage)+n(j1), p1),
			{off: 2*n(garbage) + n(j1) + n(p1), n: 4, reason: "not a JPEG or PNG frame"}}},
		{"truncated last jpeg", cat(j1, j2[:len(j2)/2]), 0, []event{frame(0, j1),
			{off: n(j1), n: n(j2) / 2, skipF: true, reason: "truncated: the stream ends inside the jpeg frame"}}},
		{"truncated last png", cat(p1[:len(p1)-3]), 0, []event{
			{off: 0, n: n(p1) - 3, skipF: true, reason: "truncated: the stream ends inside the png frame"}}},
		// Cut in its entropy-coded data (a cut in the headers can let a
		// segment length swallow the next frame's start too).
		{"jpeg cut by the next", cat(j1[:n(j1)-20], j2), 0, []event{
			{off: 0, n: n(j1) - 20, skipF: true, reason: fmt.Sprintf("truncated: a new frame starts at offset %d", n(j1)-20)}, frame(n(j1)-20, j2)}},
		{"over the bound", cat(j2, j1), n(j1) + 10, []event{
			{off: 0, skipF: true, reason: "larger than the bound of"}, {reason: "not a JPEG or PNG frame"}, frame(n(j2), j1)}},
		{"bad png chunk", cat(badPNG, j1), 0, []event{
			{off: 0, n: 16, skipF: true, reason: `corrupt png: chunk type "1END" at offset 12 is not four letters`},
			{off: 16, n: 4, reason: "not a JPEG or PNG frame"}, frame(n(badPNG), j1)}},
		{"bad jpeg marker", cat([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0x41}, j1), 0, []event{
			{off: 0, n: 8, skipF: true, reason: "corrupt jpeg: byte 0x41 at offset 8 where a marker should be"},
			{off: 8, n: 1, reason: "not a JPEG or PNG frame"}, frame(9, j1)}},
		{"long garbage in bounded runs", cat(bytes.Repeat([]byte{0}, 2500), j1[:1]), 1000, []event{
			{off: 0, n: 1000, reason: "not"}, {off: 1000, n: 1000, reason: "not"}, {off: 2000, n: 501, reason: "not"}}},
		{"empty", nil, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time too: frames may straddle any read.
			for _, r := range []io.Reader{bytes.NewReader(tc.data), iotest.OneByteReader(bytes.NewReader(tc.data))} {
				evs, frames, err := split(t, r, tc.max)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != len(tc.want) {
					t.Fatalf("got %+v, want %+v", evs, tc.want)
				}
				for i, w := range tc.want {
					g := evs[i]
					if g.frame != w.frame || g.skipF != w.skipF || !strings.Contains(g.reason, w.reason) ||
						(w.n != 0 || w.off != 0) && (g.off != w.off || g.n != w.n) {
						t.Errorf("event %d: got %+v, want %+v", i, g, w)
					}
				}
				for _, f := range frames {
					if !bytes.Contains(tc.data, f) {
						t.Errorf("a frame of %d bytes is not a piece of the input", len(f))
					}
				}
			}
		})
	}
}

// TestSplitFramesDecode: frames split from a stream decode to the images
// encoded, EXIF thumbnail and all.
func TestSplitFramesDecode(t *testing.T) {
	var all bytes.Buffer
	for i := range 20 {
		b := encodeJPEG(t, 16+i, 12+i, i)
		if i%3 == 0 {
			b = withThumbnail(b, encodeJPEG(t, 4, 4, i))
		}
		if i%5 == 0 {
			b = encodePNG(t, 10, 8+i, i)
		}
		all.Write(b)
	}
	_, frames, err := split(t, &all, 0)
	if err != nil || len(frames) != 20 {
		t.Fatalf("%d frames, %v", len(frames), err)
	}
	for i, f := range frames {
		img, _, err := image.Decode(bytes.NewReader(f))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if b := img.Bounds(); b.Dy() != 12+i && b.Dy() != 8+i {
			t.Errorf("frame %d is %v", i, b)
		}
	}
}

// TestSplitReadError: a read error is returned with the offset, and again
// by every later call.
func TestSplitReadError(t *testing.T) {
	j := encodeJPEG(t, 16, 16, 0)
	boom := errors.New("boom")
	s := NewSplitter(io.MultiReader(bytes.NewReader(j), iotest.ErrReader(boom)), 0)
	if f, err := s.Next(); err != nil || len(f.Data) != len(j) {
		t.Fatalf("first frame: %v", err)
	}
	for range 2 {
		if _, err := s.Next(); !errors.Is(err, boom) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", len(j))) {
			t.Fatalf("got %v", err)
		}
	}
}
