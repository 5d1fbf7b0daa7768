package preprocess

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// npyFile builds a .npy file by hand: any version, any header text (padded
// like numpy unless raw), any data bytes.
func npyFile(major byte, header string, data []byte, raw bool) []byte {
	if !raw {
		lenBytes := 2
		if major >= 2 {
			lenBytes = 4
		}
		for (8+lenBytes+len(header)+1)%64 != 0 {
			header += " "
		}
		header += "\n"
	}
	b := []byte("\x93NUMPY")
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	}
	b = append(b, header...)
	return append(b, data...)
}

func le32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestNPYRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{}, {0}, {5}, {2, 3}, {1, 3, 4, 5}, {2, 0, 3}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.25 - 3
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		if buf.Len()%64 != n*4%64 {
			t.Errorf("shape %v: data not 64-byte aligned", shape)
		}
		gs, gd, err := ReadNPY(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if len(gs) != len(shape) || len(gd) != n {
			t.Fatalf("shape %v: got %v, %d values", shape, gs, len(gd))
		}
		for i := range shape {
			if gs[i] != shape[i] {
				t.Fatalf("shape %v: got %v", shape, gs)
			}
		}
		for i := range data {
			if gd[i] != data[i] {
				t.Fatalf("value %d: %v != %v", i, gd[i], data[i])
			}
		}
	}
	if err := WriteNPY(new(bytes.Buffer), []int{2, 2}, make([]float32, 3)); err == nil {
		t.Error("WriteNPY accepted a shape/data mismatch")
	}
	if err := WriteNPY(new(bytes.Buffer), []int{-1}, nil); err == nil {
		t.Error("WriteNPY accepted a negative dimension")
	}
}

// TestNPYFixtures reads .npy files written by numpy itself.
func TestNPYFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(pilDir, "*.npy"))
	if len(files) == 0 {
		t.Fatal("no .npy fixtures")
	}
	for _, f := range files {
		shape, data, err := ReadNPYFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != 3 || shape[0]*shape[1]*shape[2] != len(data) {
			t.Errorf("%s: shape %v, %d values", f, shape, len(data))
		}
	}
}

func TestNPYVersionsAndDtypes(t *testing.T) {
	f64 := func(v ...float64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	be32 := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	be64 := func(v ...float64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	want := []float32{1.5, -2, 3.25, 0, 1e-3, 100}
	wantU := []float32{0, 1, 127, 128, 254, 255}
	hdr := func(d string) string {
		return "{'descr': '" + d + "', 'fortran_order': False, 'shape': (2, 3), }"
	}
	cases := []struct {
		name string
		file []byte
		want []float32
	}{
		{"v1 <f4", npyFile(1, hdr("<f4"), le32(want...), false), want},
		{"v2 <f4", npyFile(2, hdr("<f4"), le32(want...), false), want},
		{"v3 <f4", npyFile(3, hdr("<f4"), le32(want...), false), want},
		{">f4", npyFile(1, hdr(">f4"), be32(want...), false), want},
		{"<f8", npyFile(1, hdr("<f8"), f64(1.5, -2, 3.25, 0, 1e-3, 100), false), want},
		{">f8", npyFile(1, hdr(">f8"), be64(1.5, -2, 3.25, 0, 1e-3, 100), false), want},
		{"|u1", npyFile(1, hdr("|u1"), []byte{0, 1, 127, 128, 254, 255}, false), wantU},
		{"key order, double quotes, no trailing comma, Python 2 longs",
			npyFile(1, `{"shape": (2L, 3L), "fortran_order": False, "descr": "<f4"}`, le32(want...), false), want},
		// Fortran order: columns stored first; read back in C order.
		{"fortran", npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
			le32(1.5, 0, -2, 1e-3, 3.25, 100), false), want},
	}
	for _, c := range cases {
		shape, data, err := ReadNPY(bytes.NewReader(c.file))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(shape) != 2 || shape[0] != 2 || shape[1] != 3 {
			t.Errorf("%s: shape %v", c.name, shape)
		}
		for i := range c.want {
			if data[i] != c.want[i] {
				t.Errorf("%s: data %v, want %v", c.name, data, c.want)
				break
			}
		}
	}
	// 3-d Fortran order.
	f := npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", le32(func() []float32 {
		v := make([]float32, 24)
		for i := 0; i < 2; i++ {
			for j := 0; j < 3; j++ {
				for k := 0; k < 4; k++ {
					v[i+2*j+6*k] = float32(100*i + 10*j + k)
				}
			}
		}
		return v
	}()...), false)
	_, data, err := ReadNPY(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 24; i++ {
		if want := float32(100*(i/12) + 10*(i/4%3) + i%4); data[i] != want {
			t.Fatalf("fortran 3-d: data[%d] = %v, want %v", i, data[i], want)
		}
	}
}

func TestNPYMalformed(t *testing.T) {
	good := npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", le32(1, 2, 3, 4, 5, 6), false)
	// Every truncation is an error, for the stream and the file reader.
	dir := t.TempDir()
	for n := 0; n < len(good); n++ {
		if _, _, err := ReadNPY(bytes.NewReader(good[:n])); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}
	p := filepath.Join(dir, "x.npy")
	for _, n := range []int{0, 5, 9, 40, len(good) - 1} {
		os.WriteFile(p, good[:n], 0o644)
		if _, _, err := ReadNPYFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("file truncated to %d bytes: %v", n, err)
		}
	}
	os.WriteFile(p, append(append([]byte{}, good...), 0), 0o644)
	if _, _, err := ReadNPYFile(p); err == nil {
		t.Error("trailing byte accepted by ReadNPYFile")
	}
	// The stream reader reads one array and leaves the rest.
	r := bytes.NewReader(append(append([]byte{}, good...), good...))
	for i := 0; i < 2; i++ {
		if _, _, err := ReadNPY(r); err != nil {
			t.Fatalf("concatenated array %d: %v", i, err)
		}
	}

	h := func(s string) []byte { return npyFile(1, s, le32(1, 2, 3, 4, 5, 6), false) }
	bad := map[string][]byte{
		"magic":            append([]byte("\x93NUMPX\x01\x00"), good[8:]...),
		"version 4":        npyFile(4, "{}", nil, false),
		"version 1.1":      append([]byte("\x93NUMPY\x01\x01"), good[8:]...),
		"huge v2 header":   append([]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "{}"...),
		"descr":            h("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"),
		"object":           h("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }"),
		"structured":       h("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }"),
		"missing key":      h("{'descr': '<f4', 'shape': (2, 3), }"),
		"extra key":        h("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"),
		"duplicate key":    h("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
		"negative dim":     h("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -3), }"),
		"huge shape":       h("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
		"overflowing dim":  h("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"),
		"big shape":        h("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"),
		"shape too small":  h("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"),
		"shape too big":    h("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"),
		"not a tuple":      h("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }"),
		"bad bool":         h("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }"),
		"unterminated":     h("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3), }"),
		"garbage after":    h("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x"),
		"no dict":          h("'descr'"),
		"empty header":     npyFile(1, "", nil, true),
		"header past file": append([]byte("\x93NUMPY\x01\x00\x00\xf0"), "{}"...),
		"float dim":        h("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 3), }"),
		"too many dims":    h("{'descr': '<f4', 'fortran_order': False, 'shape': (" + strings.Repeat("1, ", 65) + "), }"),
	}
	for name, b := range bad {
		// Trailing data is left unread by the stream reader, by design;
		// only ReadNPYFile can tell that the shape is too small.
		if _, _, err := ReadNPY(bytes.NewReader(b)); err == nil && name != "shape too small" {
			t.Errorf("%s: accepted", name)
		} else if err != nil && !strings.HasPrefix(err.Error(), "preprocess: npy: ") {
			t.Errorf("%s: error %q", name, err)
		}
		os.WriteFile(p, b, 0o644)
		if _, _, err := ReadNPYFile(p); err == nil {
			t.Errorf("%s: accepted by ReadNPYFile", name)
		}
	}
}

// TestNPYNoHugeAllocation: a header claiming 1e10 floats with no data must
// fail without allocating anything like 40 GB.
func TestNPYNoHugeAllocation(t *testing.T) {
	b := npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", le32(1, 2, 3), false)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		if _, _, err := ReadNPY(bytes.NewReader(b)); err == nil {
			t.Fatal("accepted")
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 10<<20 {
		t.Errorf("10 reads of a lying header allocated %d bytes", d)
	}
}

func TestNCHWToNHWC(t *testing.T) {
	// [1,2,2,3]: value = 100c + 10h + w.
	data := make([]float32, 12)
	for c := 0; c < 2; c++ {
		for h := 0; h < 2; h++ {
			for w := 0; w < 3; w++ {
				data[c*6+h*3+w] = float32(100*c + 10*h + w)
			}
		}
	}
	for _, shape := range [][]int{{1, 2, 2, 3}, {2, 2, 3}} {
		dst := make([]float32, 12)
		if err := NCHWToNHWC(shape, data, dst); err != nil {
			t.Fatal(err)
		}
		for h := 0; h < 2; h++ {
			for w := 0; w < 3; w++ {
				for c := 0; c < 2; c++ {
					if got := dst[(h*3+w)*2+c]; got != float32(100*c+10*h+w) {
						t.Fatalf("dst[%d,%d,%d] = %v", h, w, c, got)
					}
				}
			}
		}
	}
	for _, bad := range []struct {
		shape []int
		n, m  int
	}{{[]int{2, 2, 2, 3}, 24, 24}, {[]int{2, 3}, 6, 6}, {[]int{1, 2, 2, 3}, 11, 12}, {[]int{1, 2, 2, 3}, 12, 11}, {[]int{0, 2, 3}, 0, 0}, {[]int{-1, -2, 3}, 6, 6}} {
		if err := NCHWToNHWC(bad.shape, make([]float32, bad.n), make([]float32, bad.m)); err == nil {
			t.Errorf("shape %v with %d/%d values accepted", bad.shape, bad.n, bad.m)
		}
	}
}

func FuzzReadNPY(f *testing.F) {
	var buf bytes.Buffer
	WriteNPY(&buf, []int{1, 3, 2, 2}, make([]float32, 12))
	f.Add(buf.Bytes())
	f.Add(npyFile(3, "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }", []byte{1, 2, 3, 4, 5, 6}, false))
	f.Add(npyFile(2, "{'descr': '>f8', 'fortran_order': False, 'shape': (), }", make([]byte, 8), false))
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, data, err := ReadNPY(bytes.NewReader(b))
		if err != nil {
			return
		}
		n := 1
		for _, d := range shape {
			if d < 0 {
				t.Fatalf("negative dim in %v", shape)
			}
			n *= d
		}
		if n != len(data) {
			t.Fatalf("shape %v but %d values", shape, len(data))
		}
		if len(data) > len(b) {
			t.Fatalf("%d values from %d bytes", len(data), len(b))
		}
		// What we read, we can write and read back identically.
		var out bytes.Buffer
		if err := WriteNPY(&out, shape, data); err != nil {
			t.Fatal(err)
		}
		s2, d2, err := ReadNPY(&out)
		if err != nil || len(s2) != len(shape) || len(d2) != len(data) {
			t.Fatalf("round trip: %v %v %v", s2, len(d2), err)
		}
		for i := range data {
			if math.Float32bits(d2[i]) != math.Float32bits(data[i]) {
				t.Fatalf("round trip value %d", i)
			}
		}
	})
}
