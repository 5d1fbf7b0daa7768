package firmware

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestResNetRoundTrip stores real members of the family, as built and as
// fused for inference (option-A shortcuts bring Pad and Slice).
func TestResNetRoundTrip(t *testing.T) {
	cfgs := []resnet.Config{
		{Depth: 20, CIFAR: true, Shortcut: resnet.ShortcutA},
		{Depth: 50, Height: 32, Width: 32, BaseWidth: 8, Classes: 10},
	}
	if testing.Short() { // CI runs -short under qemu
		cfgs = cfgs[:1]
	}
	for _, cfg := range cfgs {
		g, err := resnet.Build(cfg, resnet.HeInit(1))
		if err != nil {
			t.Fatal(err)
		}
		fused, err := graph.Fuse(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []*graph.Graph{g, fused} {
			m := &Model{Graph: g, Meta: Meta{Name: cfg.Name(), Arch: cfg.Name(), Output: OutputLogits}}
			path := filepath.Join(t.TempDir(), "m.ern")
			if err := WriteFile(path, m); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, f.Graph) {
				t.Fatalf("%s: graph differs after the round trip", cfg.Name())
			}
			if a, b := evalBits(t, g, 1), evalBits(t, f.Graph, 1); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: outputs differ", cfg.Name())
			}
			f.Close()
		}
	}
}

func resnet50Image(b *testing.B) []byte {
	g, err := resnet.Build(resnet.Config{Depth: 50}, resnet.HeInit(1))
	if err != nil {
		b.Fatal(err)
	}
	if g, err = graph.Fuse(g); err != nil {
		b.Fatal(err)
	}
	labels := make([]string, 1000)
	for i := range labels {
		labels[i] = "class " + string(rune('A'+i%26))
	}
	return mustEncode(b, &Model{Graph: g, Meta: Meta{Name: "resnet50", Arch: "resnet50", Labels: labels, Output: OutputLogits}})
}

// BenchmarkDecodeResNet50 is dominated by the CRC over ~100 MB of weights;
// the weights themselves are not copied.
func BenchmarkDecodeResNet50(b *testing.B) {
	img := resnet50Image(b)
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Decode(img); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenResNet50(b *testing.B) {
	path := filepath.Join(b.TempDir(), "r50.ern")
	if err := os.WriteFile(path, resnet50Image(b), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkManifestResNet50 compares the two manifest parsers (~100 KB of
// JSON with 1000 labels), decoding included.
func BenchmarkManifestResNet50(b *testing.B) {
	man, _ := split(b, resnet50Image(b))
	for _, mode := range []string{"std", "simdjson"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "simdjson" && !simdAvailable {
				b.Skip("simdjson-go not available")
			}
			b.Setenv(envJSON, map[string]string{"std": "std", "simdjson": ""}[mode])
			b.SetBytes(int64(len(man)))
			for b.Loop() {
				if _, err := parseManifest(man); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
