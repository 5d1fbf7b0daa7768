package edgeresnet

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/importer/safetensors"
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
// "linear" (common CIFAR code) serves as "fc"; see package
// importer/safetensors. The result is fused (BatchNorm folded) like an
// imported ONNX model. A damaged file is ErrCorrupt, one larger than
// firmware.MaxModelBytes ErrTooLarge, and one that does not fit the
// configuration (or a bad configuration) ErrInput.
func ImportSafetensorsFile(path string, cfg resnet.Config, opt ImportOptions) (*firmware.Model, error) {
	tensors, meta, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if opt.Height > 0 {
		cfg.Height, cfg.Width = opt.Height, opt.Width
	}
	g, err := safetensors.Build(tensors, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInput, path, err)
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
