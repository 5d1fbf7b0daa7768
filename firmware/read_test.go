package firmware

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// countingReader counts what was read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless repeats a byte, or random bytes if rnd is set, without end.
type endless struct {
	b   byte
	rnd *rand.Rand
}

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		if e.rnd != nil {
			p[i] = byte(e.rnd.Uint32())
		} else {
			p[i] = e.b
		}
	}
	return len(p), nil
}

// withHeader returns img with its header's blob length replaced, re-signed.
func withBlobLen(img []byte, n uint64) []byte {
	d := bytes.Clone(img)
	binary.LittleEndian.PutUint64(d[offBlobLen:], n)
	return resign(d)
}

func TestReadAll(t *testing.T) {
	img := mustEncode(t, tinyModel())
	onnxLike := bytes.Repeat([]byte{0x08, 0x07}, 100) // protobuf: field 1 varint 7, repeated
	cases := []struct {
		name  string
		in    io.Reader
		limit int64
		want  []byte // the data read, when no error
		err   error  // else the sentinel
		msg   string // and part of the message
		most  int64  // read at most this much (0: no check)
	}{
		{name: "image", in: bytes.NewReader(img), want: img},
		{name: "image one byte at a time", in: &oneByte{bytes.NewReader(img)}, want: img},
		{name: "image at the limit", in: bytes.NewReader(img), limit: int64(len(img)), want: img},
		{name: "image over the limit", in: bytes.NewReader(img), limit: int64(len(img)) - 1, err: ErrTooLarge,
			msg: "declares", most: 4096},
		{name: "image header declares 1 TiB", in: io.MultiReader(bytes.NewReader(withBlobLen(img, 1<<40)), endless{}),
			err: ErrTooLarge, msg: "(limit 1.0 GiB, firmware.MaxModelBytes)", most: 4096},
		{name: "image followed by more", in: io.MultiReader(bytes.NewReader(img), endless{b: 1}), err: ErrCorrupt,
			msg: "continues after", most: int64(len(img)) + 4096},
		{name: "truncated image", in: bytes.NewReader(img[:len(img)/2]), want: img[:len(img)/2]},
		{name: "truncated header", in: bytes.NewReader(img[:10]), want: img[:10]},
		{name: "bad header CRC", in: io.MultiReader(bytes.NewReader(func() []byte { d := bytes.Clone(img); d[20] ^= 1; return d }()), endless{}),
			err: ErrCorrupt, msg: "header CRC32C", most: 4096},
		{name: "newer format", in: io.MultiReader(bytes.NewReader(func() []byte { d := bytes.Clone(img); d[offMajor] = 9; return resign(d) }()), endless{}),
			err: ErrVersion, most: 4096},
		{name: "protobuf", in: bytes.NewReader(onnxLike), want: onnxLike},
		{name: "protobuf over the limit", in: bytes.NewReader(onnxLike), limit: 100, err: ErrTooLarge, msg: "model too large: more than 100 B of data (limit 100 B)", most: 4096},
		{name: "protobuf field longer than the limit", in: io.MultiReader(bytes.NewReader([]byte{0x3a, 0xff, 0xff, 0xff, 0x7f}), endless{}),
			limit: 1 << 20, err: ErrTooLarge, msg: "field 7 at byte 0 declares 268435455 bytes", most: 4096},
		{name: "zeros (/dev/zero)", in: endless{}, err: ErrCorrupt, msg: "neither a model image nor an ONNX file", most: 4096},
		{name: "text", in: strings.NewReader("not a model\n"), err: ErrCorrupt, msg: "neither"},
		{name: "random bytes", in: endless{rnd: rand.New(rand.NewPCG(1, 2))}, limit: 1 << 20, most: 1<<20 + 4096},
		{name: "empty", in: strings.NewReader(""), want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: tc.in}
			t0 := time.Now()
			got, err := ReadAll(cr, tc.limit)
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.most > 0 && cr.n > tc.most {
				t.Errorf("read %d bytes, want at most %d", cr.n, tc.most)
			}
			switch {
			case tc.name == "random bytes": // any clean error, within the limit
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("err = %v", err)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.err, tc.msg)
				}
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(got, tc.want):
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// A regular file over the limit is refused before it is read; under it,
// it is read whole, whatever it holds.
func TestReadAllRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m")
	data := bytes.Repeat([]byte("not protobuf, but a regular file is read as it is "), 100)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int64{int64(len(data)), int64(len(data)) - 1} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadAll(f, limit)
		off, _ := f.Seek(0, io.SeekCurrent)
		f.Close()
		if limit < int64(len(data)) {
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "the file is") || off != 0 {
				t.Fatalf("limit %d: err %v, read %d bytes", limit, err, off)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("limit %d: %d bytes, %v", limit, len(got), err)
		}
	}
}

// Every image Decode accepts reads back whole, and ReadAll never fails
// other than cleanly.
func checkReadAll(t *testing.T, data []byte) {
	got, err := ReadAll(bytes.NewReader(data), 0)
	_, derr := Decode(data)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ReadAll: unclassified error: %v", err)
		}
		if derr == nil {
			t.Fatalf("ReadAll fails on an image Decode accepts: %v", err)
		}
		return
	}
	if !bytes.HasPrefix(data, got) {
		t.Fatal("ReadAll returned other bytes than the input's")
	}
	if derr == nil && len(got) != len(data) {
		t.Fatalf("ReadAll read %d of the %d bytes of a valid image", len(got), len(data))
	}
}

// Open refuses a regular file larger than MaxModelBytes, mapped or read.
func TestOpenTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.ern")
	if err := WriteFile(path, tinyModel()); err != nil {
		t.Fatal(err)
	}
	defer func(old int64) { MaxModelBytes = old }(MaxModelBytes)
	MaxModelBytes = 100
	_, err := Open(path)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path+": model too large: the file is") ||
		!strings.Contains(err.Error(), "(limit 100 B, firmware.MaxModelBytes)") {
		t.Fatalf("err = %v", err)
	}
}
