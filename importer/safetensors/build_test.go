package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/resnet"
)

// stateDict is the state dict of cfg with resnet.HeInit weights, as
// PyTorch saves it (F32, with num_batches_tracked counters), and the graph
// resnet.Build makes of the same weights.
func stateDict(t *testing.T, cfg resnet.Config) (map[string]Tensor, any) {
	init := resnet.HeInit(1)
	sd := map[string]Tensor{}
	g, err := resnet.Build(cfg, func(name string, shape []int) ([]float32, error) {
		v, err := init(name, shape)
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		sd[name] = Tensor{DType: "F32", Shape: shape, Data: b}
		if strings.HasSuffix(name, ".running_var") {
			counter := strings.TrimSuffix(name, "running_var") + "num_batches_tracked"
			sd[counter] = Tensor{DType: "I64", Shape: []int{}, Data: make([]byte, 8)}
		}
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sd, g
}

func TestBuild(t *testing.T) {
	cfg := resnet.Config{CIFAR: true, Depth: 8, Shortcut: resnet.ShortcutA, Classes: 7}
	sd, want := stateDict(t, cfg)
	cfg.Classes = 0 // taken from fc.weight
	g, err := Build(sd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, want) {
		t.Fatal("the graph differs from resnet.Build's")
	}
	// DataParallel's "module." prefix, and "linear" for "fc".
	renamed := map[string]Tensor{}
	for name, x := range sd {
		renamed["module."+strings.Replace(name, "fc.", "linear.", 1)] = x
	}
	if g, err = Build(renamed, cfg); err != nil || !reflect.DeepEqual(g, want) {
		t.Fatalf("renamed: %v", err)
	}
}

func TestBuildMismatch(t *testing.T) {
	cfg := resnet.Config{CIFAR: true, Depth: 8, Shortcut: resnet.ShortcutA}
	sd, _ := stateDict(t, cfg)
	edit := func(f func(map[string]Tensor)) map[string]Tensor {
		c := map[string]Tensor{}
		for k, v := range sd {
			c[k] = v
		}
		f(c)
		return c
	}
	projection := cfg
	projection.Shortcut = resnet.ShortcutB
	cases := []struct {
		name string
		sd   map[string]Tensor
		cfg  resnet.Config
		msg  string
	}{
		{"missing", edit(func(m map[string]Tensor) { delete(m, "layer1.0.conv2.weight") }), cfg, "weight layer1.0.conv2.weight: state dict mismatch: not in the file"},
		{"shape", edit(func(m map[string]Tensor) { x := m["bn1.bias"]; x.Shape = []int{4, 4}; m["bn1.bias"] = x }), cfg,
			"weight bn1.bias: state dict mismatch: shape [4 4] in the file, the architecture needs [16]"},
		{"dtype", edit(func(m map[string]Tensor) { x := m["bn1.bias"]; x.DType = "I32"; m["bn1.bias"] = x }), cfg, "dtype I32 is not floating point"},
		{"unused", edit(func(m map[string]Tensor) { m["extra.weight"] = m["bn1.bias"] }), cfg, `tensor "extra.weight" is not part of cifar-resnet8`},
		{"architecture", sd, projection, "layer2.0.downsample.0.weight: state dict mismatch: not in the file"},
	}
	for _, tc := range cases {
		if _, err := Build(tc.sd, tc.cfg); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want ErrMismatch with %q", tc.name, err, tc.msg)
		}
	}
}
