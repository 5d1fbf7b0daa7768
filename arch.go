package edgeresnet

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// ParseArch turns an architecture name such as "resnet50",
// "resnext50_32x4d", "wide_resnet50_2" or "cifar-resnet20" into a family
// configuration (resnet.ParseArch); an unknown name is ErrInput.
func ParseArch(name string) (resnet.Config, error) {
	cfg, err := resnet.ParseArch(name)
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return cfg, nil
}

// ImportSafetensorsFile builds a ResNet of the given configuration with the
// weights of a PyTorch state dict saved as safetensors (torchvision names:
// conv1.weight, bn1.running_var, layer2.0.downsample.0.weight, fc.bias). A
// "module." prefix (DataParallel) is ignored, and a classifier named
// "linear" (common CIFAR code) serves as "fc". The result is fused
// (BatchNorm folded) like an imported ONNX model.
func ImportSafetensorsFile(path string, cfg resnet.Config, opt ImportOptions) (*firmware.Model, error) {
	tensors, meta, err := firmware.ReadSafetensorsFile(path)
	if err != nil {
		return nil, err
	}
	byName := map[string]firmware.SafeTensor{}
	for name, t := range tensors {
		byName[strings.TrimPrefix(name, "module.")] = t
	}
	used := map[string]bool{}
	weights := func(name string, shape []int) ([]float32, error) {
		t, ok := byName[name]
		if !ok && strings.HasPrefix(name, "fc.") {
			name = "linear." + strings.TrimPrefix(name, "fc.")
			t, ok = byName[name]
		}
		if !ok {
			return nil, fmt.Errorf("%w: not in %s", ErrInput, filepath.Base(path))
		}
		used[name] = true
		if !equalInts(t.Shape, shape) {
			return nil, fmt.Errorf("%w: shape %v in the file, the architecture needs %v", ErrInput, t.Shape, shape)
		}
		return t.Float32s()
	}
	if opt.Height > 0 {
		cfg.Height, cfg.Width = opt.Height, opt.Width
	}
	if cfg.Classes == 0 {
		// Take the class count from the classifier, if the file has one.
		for _, n := range []string{"fc.weight", "linear.weight"} {
			if t, ok := byName[n]; ok && len(t.Shape) == 2 {
				cfg.Classes = t.Shape[0]
			}
		}
	}
	g, err := resnet.Build(cfg, weights)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name, t := range byName {
		// Unused parameters mean the architecture does not match the file
		// (running statistics counters are the one harmless extra).
		if !used[name] && !strings.HasSuffix(name, "num_batches_tracked") && t.DType != "I64" {
			return nil, fmt.Errorf("%w: %s: tensor %q is not part of %s (wrong --arch or shortcut?)", ErrInput, path, name, cfg.Name())
		}
	}
	f, err := graph.Fuse(g)
	if err != nil {
		return nil, err
	}
	norm, _ := cfg.Normalize()
	m := &firmware.Model{Graph: f, Meta: firmware.Meta{
		Name: opt.Name, Arch: norm.Name(), Labels: opt.Labels, Output: firmware.OutputLogits,
		Provenance: map[string]string{"converter": "edge-resnet " + Version, "source": filepath.Base(path)},
	}}
	for k, v := range meta {
		m.Meta.Provenance["safetensors."+k] = v
	}
	if m.Meta.Name == "" {
		m.Meta.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if opt.Preprocess != nil {
		m.Meta.Preprocess = *opt.Preprocess
	} else {
		m.Meta.Preprocess = DefaultPreprocess(f.Input())
	}
	if m.Meta.Labels == nil && f.OutputShape().Size() == 1000 {
		m.Meta.Labels = ImageNetLabels()
	}
	return m, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
