package edgeresnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
)

// TestErrorKinds checks that every kind of failure a caller acts on is
// matchable with errors.Is at the root, whichever package found it.
func TestErrorKinds(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	image, err := firmware.Encode(m.Image())
	if err != nil {
		t.Fatal(err)
	}
	future := append([]byte(nil), image...)
	binary.LittleEndian.PutUint16(future[8:], 99) // major version, header CRC re-signed (docs/FORMAT.md §1)
	binary.LittleEndian.PutUint32(future[60:], crc32.Checksum(future[:60], crc32.MakeTable(crc32.Castagnoli)))
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	onnxModel, err := os.ReadFile("testdata/models/cifar8_a_flatten.onnx")
	if err != nil {
		t.Fatal(err)
	}
	// Same-length op type, so the protobuf stays valid: Cosh runs on
	// activations nowhere in edge-resnet.
	unsupported := bytes.ReplaceAll(onnxModel, []byte("Conv"), []byte("Cosh"))
	s, err := m.NewSession(WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	closed, _ := m.NewSession(WithThreads(1))
	closed.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"truncated model image", loadErr(write("t.ern", image[:len(image)/2])), ErrCorrupt},
		{"flipped byte in a model image", loadErr(write("f.ern", flip(image, len(image)-10))), ErrCorrupt},
		{"future model image", loadErr(write("v.ern", future)), ErrVersion},
		{"truncated ONNX", loadErr(write("t.onnx", onnxModel[:len(onnxModel)/3])), ErrCorrupt},
		{"unsupported ONNX op", loadErr(write("u.onnx", unsupported)), ErrUnsupported},
		{"wrong input size", runErr(s.Run(make([]float32, 7))), ErrInput},
		{"wrong NCHW shape", runErr(s.RunNCHW([]int{1, 2, 3}, make([]float32, 6))), ErrInput},
		{"batch beyond the session's", runErr(s.RunBatch(2)), ErrInput},
		{"closed session", runErr(closed.Run(nil)), ErrClosed},
		{"bad precision", func() error { _, err := ParsePrecision("fp16"); return err }(), ErrInput},
		{"bad architecture", func() error { _, err := ParseArch("resnet19"); return err }(), ErrInput},
		{"unknown kernel path", func() error { _, err := m.NewSession(WithKernels("sse9")); return err }(), ErrKernels},
		{"unknown kernel path is bad input", func() error { _, err := m.NewSession(WithKernels("sse9")); return err }(), ErrInput},
		{"cancelled evaluation", func() error {
			_, err := EvaluateContext(ctx, m, fakeSet{n: 4}, EvalOptions{})
			return err
		}(), context.Canceled},
	}
	for _, c := range cases {
		if c.err == nil || !errors.Is(c.err, c.want) {
			t.Errorf("%s: error %v, want one matching %v", c.name, c.err, c.want)
		}
	}
	// The graph's own errors are ErrInvalid there, and ErrCorrupt once they
	// come from a file.
	if err := (&graph.Graph{}).InferShapes(); !errors.Is(err, graph.ErrInvalid) {
		t.Errorf("empty graph: %v", err)
	}
}

func loadErr(path string) error {
	m, err := Load(path)
	if err == nil {
		m.Close()
	}
	return err
}

func runErr(_ []float32, err error) error { return err }

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}
