package safetensors

import (
	"maps"
	"slices"
	"strings"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// Build builds the ResNet of the given configuration (resnet.Build) with
// the weights of a PyTorch state dict with torchvision's names:
// conv1.weight, bn1.running_var, layer2.0.downsample.0.weight, fc.bias. A
// "module." prefix (DataParallel) is ignored, and a classifier named
// "linear" (common CIFAR code) serves as "fc". If cfg.Classes is 0 the
// class count is the classifier's. The graph is unfused (BatchNorm as
// Affine), as resnet.Build makes it.
//
// A tensor the architecture needs that is missing or of another shape, a
// dtype that is not floating point, and a tensor the architecture does not
// use (other than integer counters such as num_batches_tracked) are
// ErrMismatch errors that name the tensor.
func Build(tensors map[string]Tensor, cfg resnet.Config) (*graph.Graph, error) {
	byName := map[string]Tensor{}
	for name, t := range tensors {
		byName[strings.TrimPrefix(name, "module.")] = t
	}
	if cfg.Classes == 0 {
		// Take the class count from the classifier, if the file has one.
		for _, n := range []string{"fc.weight", "linear.weight"} {
			if t, ok := byName[n]; ok && len(t.Shape) == 2 {
				cfg.Classes = t.Shape[0]
			}
		}
	}
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	g, err := resnet.Build(cfg, weights(byName, used))
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		// Unused parameters mean the architecture does not match the file
		// (running statistics counters are the one harmless extra).
		if t := byName[name]; !used[name] && !strings.HasSuffix(name, "num_batches_tracked") && t.DType != "I64" {
			return nil, mismatchf("tensor %q is not part of %s (wrong --arch or shortcut?)", name, cfg.Name())
		}
	}
	return g, nil
}

// weights supplies resnet.Build from the tensors by name, with "linear"
// for "fc", and records the names it used.
func weights(byName map[string]Tensor, used map[string]bool) resnet.Weights {
	return func(name string, shape []int) ([]float32, error) {
		t, ok := byName[name]
		if !ok && strings.HasPrefix(name, "fc.") {
			name = "linear." + strings.TrimPrefix(name, "fc.")
			t, ok = byName[name]
		}
		if !ok {
			return nil, mismatchf("not in the file")
		}
		used[name] = true
		if !slices.Equal(t.Shape, shape) {
			return nil, mismatchf("shape %v in the file, the architecture needs %v", t.Shape, shape)
		}
		return t.Float32s()
	}
}
