package firmware

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// checkDecode is the property every input must satisfy: no panic, errors
// classified, Decode and Verify agree, and an accepted image re-encodes to
// an image that decodes and re-encodes to the same bytes.
func checkDecode(t *testing.T, data []byte) {
	m, err := Decode(data)
	verr := Verify(data)
	if (err == nil) != (verr == nil) || (err != nil && err.Error() != verr.Error()) {
		t.Fatalf("Decode: %v\nVerify: %v", err, verr)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	enc, err := Encode(m)
	if err != nil {
		t.Fatalf("decoded model does not encode: %v", err)
	}
	m2, err := Decode(enc)
	if err != nil {
		t.Fatalf("re-encoded image does not decode: %v", err)
	}
	enc2, err := Encode(m2)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("re-encoding is not stable: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		checkReadAll(t, data)
		// Re-signed, mutations get past the CRCs to the checks behind them.
		if r := resign(data); r != nil {
			checkDecode(t, r)
			checkReadAll(t, r)
		}
	})
}

// FuzzDecodeManifest fuzzes the manifest text directly (the fuzzer cannot
// grow a manifest inside an image without moving the blob), placed in a
// correctly signed image with the blob of allOpsModel.
func FuzzDecodeManifest(f *testing.F) {
	for _, img := range [][]byte{mustEncode(f, tinyModel()), mustEncode(f, allOpsModel()), int8Image(f)} {
		man, _ := split(f, img)
		f.Add(bytes.Clone(man))
	}
	for _, s := range trickyJSON {
		f.Add([]byte(s))
	}
	_, blob := split(f, mustEncode(f, allOpsModel()))
	f.Fuzz(func(t *testing.T, man []byte) {
		if len(man) > maxManifest {
			return
		}
		checkDecode(t, assemble(man, blob))
	})
}

// FuzzManifestJSON compares simdjson-go with encoding/json.
func FuzzManifestJSON(f *testing.F) {
	if !simdAvailable {
		f.Skip("simdjson-go not available on this CPU/build")
	}
	for _, img := range [][]byte{mustEncode(f, tinyModel()), mustEncode(f, allOpsModel()), int8Image(f)} {
		man, _ := split(f, img)
		f.Add(bytes.Clone(man))
	}
	for _, s := range trickyJSON {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkEquivalent(t, data)
	})
}

type seed struct {
	name string
	data []byte
}

// decodeSeeds are valid small images and mangled ones; -update writes them
// to testdata/fuzz/FuzzDecode so that plain `go test` replays them too.
func decodeSeeds(t testing.TB) []seed {
	tiny := mustEncode(t, tinyModel())
	all := mustEncode(t, allOpsModel())
	mut := func(img []byte, f func(d []byte)) []byte {
		d := bytes.Clone(img)
		f(d)
		return d
	}
	special := tinyModel()
	special.Meta.Preprocess.Mean = []float32{float32(negInf()), -0.0}
	seeds := []seed{
		{"valid-tiny", tiny},
		{"valid-all-ops", all},
		{"valid-special-floats", mustEncode(t, special)},
		{"truncated", tiny[:len(tiny)/2]},
		{"bad-crc", mut(tiny, func(d []byte) { d[len(d)-3] ^= 0x10 })},
		{"bad-magic", mut(tiny, func(d []byte) { d[1] = 'X' })},
		{"future-major", resign(mut(tiny, func(d []byte) { d[offMajor] = 2 }))},
		{"missing-tensor", editManifest(t, tiny, func(m map[string]any) { jnode(m, 1)["conv"].(map[string]any)["weight"] = "x" })},
		{"misaligned-tensor", editManifest(t, all, func(m map[string]any) { jtensor(m, 1)["offset"] = 900 })},
		{"overlap", editManifest(t, all, func(m map[string]any) { jtensor(m, 1)["offset"] = 0 })},
		{"bad-shape", editManifest(t, all, func(m map[string]any) { jnode(m, 6)["inputs"] = []any{5, 1} })},
		{"minor-7-extras", resign(mut(editManifest(t, tiny, func(m map[string]any) {
			m["format_minor"] = 7
			m["quant"] = map[string]any{"per_node": []any{1, 2.5, "x"}}
		}), func(d []byte) { d[offMinor] = 7 }))},
		{"manifest-syntax", func() []byte { man, blob := split(t, tiny); return assemble(man[:len(man)-2], blob) }()},
		// What ReadAll must refuse before reading: a header declaring 1 TiB,
		// and data after the declared end.
		{"header-declares-1tib", withBlobLen(tiny, 1<<40)},
		{"trailing-data", append(bytes.Clone(tiny), 0, 0, 0, 1)},
	}
	// int8 content: valid images with and without float weights, and the
	// damage TestInt8Corrupt covers, for the fuzzer to start from.
	tinyQ := tinyModel()
	quantize(tinyQ.Graph, true)
	i8 := mustEncode(t, tinyQ)
	bothQ := tinyModel()
	quantize(bothQ.Graph, false)
	allQ := int8Image(t)
	seeds = append(seeds,
		seed{"valid-int8-tiny", i8},
		seed{"valid-int8-and-fp32", mustEncode(t, bothQ)},
		seed{"valid-int8-all-ops", allQ},
		seed{"int8-minus-128", editBlob(t, i8, "c.weight_i8", func(b []byte) { b[0] = 0x80 })},
		seed{"int8-scale-nan", editBlob(t, i8, "fc.weight_scale", func(b []byte) { putF32(b, float32(math.NaN())) })},
		seed{"int8-zero-range", editManifest(t, i8, func(m map[string]any) { jnode(m, 2)["quant"].(map[string]any)["zero"] = 300 })},
		seed{"int8-no-requires", editManifest(t, i8, func(m map[string]any) { delete(m, "requires") })},
		seed{"int8-f32-as-i8", editManifest(t, i8, func(m map[string]any) {
			jnode(m, 1)["conv"].(map[string]any)["weight_i8"] = "c.bias"
		})},
	)
	return seeds
}

func negInf() float64 { var z float64; return -1 / z }

// TestWriteFuzzCorpus writes (with -update) or checks the committed seeds.
func TestWriteFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	seeds := decodeSeeds(t)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	committed := readCorpus(t, dir)
	if len(committed) < len(seeds) {
		t.Fatalf("%s holds %d seeds, want at least %d (run go test ./firmware -run TestWriteFuzzCorpus -update)", dir, len(committed), len(seeds))
	}
	valid := 0
	for _, d := range committed {
		if _, err := Decode(d); err == nil {
			valid++
		}
	}
	if valid < 3 {
		t.Fatalf("only %d committed seeds are valid images", valid)
	}
}
