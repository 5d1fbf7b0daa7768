package resnet

import (
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
)

func TestBuildStandardDepths(t *testing.T) {
	cases := []struct {
		cfg    Config
		params int64 // torchvision / paper parameter counts (BN folded into conv bias)
		name   string
	}{
		{Config{Depth: 18}, 11689512, "resnet18"},
		{Config{Depth: 34}, 21797672, "resnet34"},
		{Config{Depth: 50}, 25557032, "resnet50"},
		{Config{Depth: 101}, 44549160, "resnet101"},
		{Config{Depth: 152}, 60192808, "resnet152"},
		{Config{CIFAR: true, Depth: 20, Shortcut: ShortcutA}, 269722, "cifar-resnet20"},
		{Config{CIFAR: true, Depth: 56, Shortcut: ShortcutA}, 853018, "cifar-resnet56"},
		{Config{CIFAR: true, Depth: 110, Shortcut: ShortcutA}, 1727962, "cifar-resnet110"},
	}
	for _, c := range cases {
		g, err := Build(c.cfg, HeInit(1))
		if err != nil {
			t.Fatal(err)
		}
		f, err := graph.Fuse(g)
		if err != nil {
			t.Fatal(err)
		}
		var params int64
		for i := range f.Nodes {
			params += f.Params(i)
		}
		// Folding adds a bias to every conv, which torchvision's count has
		// as BN beta; BN gamma has no counterpart after folding.
		cfg, _ := c.cfg.Normalize()
		var bnGamma int64
		for i, n := range g.Nodes {
			if n.Op == graph.OpAffine {
				bnGamma += int64(len(g.Nodes[i].Affine.Scale))
			}
		}
		if params+bnGamma != c.params {
			t.Errorf("%s: %d params (+%d BN gammas), want %d", c.name, params, bnGamma, c.params)
		}
		if cfg.Name() != c.name {
			t.Errorf("name %q, want %q", cfg.Name(), c.name)
		}
	}
}

func TestResNet50MACs(t *testing.T) {
	g, err := Build(Config{Depth: 50}, HeInit(1))
	if err != nil {
		t.Fatal(err)
	}
	var macs int64
	for i := range g.Nodes {
		macs += g.MACs(i)
	}
	// 4.09 GMACs is the commonly quoted figure for torchvision ResNet-50.
	if macs < 4.08e9 || macs > 4.12e9 {
		t.Fatalf("ResNet-50 has %d MACs", macs)
	}
}

func TestBadConfigs(t *testing.T) {
	for _, c := range []Config{{Depth: 19}, {CIFAR: true, Depth: 21}, {Depth: 18, Classes: -1}, {Blocks: []int{1, 0}}} {
		if _, err := Build(c, HeInit(1)); err == nil {
			t.Errorf("config %+v: want an error", c)
		}
	}
}

// TestParseArch checks that family names round-trip through Config.Name
// and that the parameter counts of the grouped and wide members match
// torchvision's (BatchNorm gamma and beta as its weight and bias).
func TestParseArch(t *testing.T) {
	for name, params := range map[string]int64{
		"resnet50": 25557032, "resnext50_32x4d": 25028904, "wide_resnet50_2": 68883240, "cifar-resnet20": 269722,
		"resnext101_32x8d": 0, "resnext101_64x4d": 0, "wide_resnet101_2": 0, // 88.8M, 83.5M, 126.9M: names only
	} {
		cfg, err := ParseArch(name)
		if err != nil {
			t.Fatal(err)
		}
		if params == 0 || testing.Short() && params > 1e6 { // building the big ones takes seconds, minutes under qemu
			continue
		}
		g, err := Build(cfg, HeInit(1))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for i := range g.Nodes {
			n += g.Params(i)
		}
		if n != params {
			t.Errorf("%s: %d parameters, torchvision has %d", name, n, params)
		}
	}
	for _, bad := range []string{"resnet19", "resnext50_32x4", "wide_resnet50_0", "resnext18_32x4d", "vgg16", "resnet50x"} {
		if _, err := ParseArch(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestNameOfDepthOnlyConfig: a configuration given by its depth alone (as
// ParseArch returns it, before Normalize fills in the blocks) is named by
// that depth; model images record it (it read "cifar-resnet2" once).
func TestNameOfDepthOnlyConfig(t *testing.T) {
	for _, arch := range []string{"cifar-resnet20", "cifar-resnet56", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"} {
		cfg, err := ParseArch(arch)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Name(); got != arch {
			t.Errorf("ParseArch(%q).Name() = %q", arch, got)
		}
	}
	if got := (Config{CIFAR: true, Depth: 32}).Name(); got != "cifar-resnet32" {
		t.Errorf("Config{CIFAR, Depth 32}.Name() = %q", got)
	}
}
