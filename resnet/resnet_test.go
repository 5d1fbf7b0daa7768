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
