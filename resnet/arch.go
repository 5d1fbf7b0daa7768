package resnet

import (
	"fmt"
	"strings"
)

// ParseArch turns an architecture name into a family configuration: the
// torchvision names resnet18/34/50/101/152, resnext50_32x4d,
// resnext101_32x8d, resnext101_64x4d (any resnextD_GxWd), wide_resnet50_2
// and wide_resnet101_2 (any wide_resnetD_K), with torchvision's defaults,
// and cifar-resnetD (6n+2) with option-A shortcuts, as in He et al. §4.2.
// Config.Name is its inverse.
func ParseArch(name string) (Config, error) {
	var cfg Config
	var depth, groups, width, k int
	var err error
	switch {
	case strings.HasPrefix(name, "cifar-resnet"):
		_, err = fmt.Sscanf(name, "cifar-resnet%d", &depth)
		cfg = Config{CIFAR: true, Depth: depth, Shortcut: ShortcutA}
	case strings.HasPrefix(name, "resnext"):
		_, err = fmt.Sscanf(name, "resnext%d_%dx%dd", &depth, &groups, &width)
		cfg = Config{Depth: depth, Groups: groups, WidthPerGroup: width}
	case strings.HasPrefix(name, "wide_resnet"):
		_, err = fmt.Sscanf(name, "wide_resnet%d_%d", &depth, &k)
		cfg = Config{Depth: depth, WidthPerGroup: 64 * k}
	case strings.HasPrefix(name, "resnet"):
		_, err = fmt.Sscanf(name, "resnet%d", &depth)
		cfg = Config{Depth: depth}
	default:
		err = fmt.Errorf("unknown family")
	}
	if err == nil {
		var norm Config
		if norm, err = cfg.Normalize(); err == nil && norm.Name() != name {
			err = fmt.Errorf("not a canonical name (did you mean %s?)", norm.Name())
		}
	}
	if err != nil {
		return cfg, fmt.Errorf("architecture %q: %w; want resnet18/34/50/101/152, resnextD_GxWd (resnext50_32x4d), wide_resnetD_K (wide_resnet50_2) or cifar-resnet20/32/44/56/110", name, err)
	}
	return cfg, nil
}
