package stream

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// stripDHT removes every DHT segment before the first scan, as USB
// webcams' Motion-JPEG frames come.
func stripDHT(t *testing.T, b []byte) []byte {
	t.Helper()
	out := append([]byte(nil), b[:2]...)
	for i := 2; i+4 <= len(b); {
		if b[i+1] == markerSOS {
			return append(out, b[i:]...)
		}
		n := 2 + (int(b[i+2])<<8 | int(b[i+3]))
		if b[i+1] != 0xC4 {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	t.Fatal("no scan")
	return nil
}

// TestWithDefaultHuffman: a frame without tables decodes, after the
// repair, to exactly the image of the same frame with its tables (Go's
// encoder writes the standard ones); frames with tables, PNGs and
// fragments are left alone.
func TestWithDefaultHuffman(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 19, 13))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 37)
	}
	var g bytes.Buffer
	if err := jpeg.Encode(&g, gray, nil); err != nil {
		t.Fatal(err)
	}
	for _, full := range [][]byte{encodeJPEG(t, 33, 17, 5), g.Bytes()} {
		bare := stripDHT(t, full)
		if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
			t.Fatal("a frame without Huffman tables decoded: the test proves nothing")
		}
		fixed, ok := WithDefaultHuffman(bare)
		if !ok {
			t.Fatal("no tables inserted")
		}
		want, err1 := jpeg.Decode(bytes.NewReader(full))
		got, err2 := jpeg.Decode(bytes.NewReader(fixed))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		var a, b bytes.Buffer
		jpeg.Encode(&a, want, &jpeg.Options{Quality: 100})
		jpeg.Encode(&b, got, &jpeg.Options{Quality: 100})
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Error("the repaired frame decodes to another image")
		}
	}
	j := encodeJPEG(t, 8, 8, 1)
	for _, b := range [][]byte{j, encodePNG(t, 4, 4, 1), j[:3], nil} {
		if out, ok := WithDefaultHuffman(b); ok || !bytes.Equal(out, b) {
			t.Errorf("a frame of %d bytes was changed", len(b))
		}
	}
	// Its first scan has no tables before it (they come before the second).
	if out, ok := WithDefaultHuffman(multiScan()); !ok || len(out) != len(multiScan())+len(defaultDHT()) || len(defaultDHT()) < 400 {
		t.Errorf("the multi-scan skeleton: %v, %d bytes, tables of %d", ok, len(out), len(defaultDHT()))
	}
}
