package train_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-resnet/edge-resnet/resnet"
	"github.com/edge-resnet/edge-resnet/train"
)

// TestRunMemoryBudget checks that runs over their memory budget fail
// before training (no state written), naming the estimate, the budget and
// what to reduce, and that the estimate grows with the batch.
func TestRunMemoryBudget(t *testing.T) {
	fm := tinyFolded(t)
	tests := []struct {
		name string
		cfg  train.Config
		want []string
	}{
		{"full", train.Config{From: fm}, []string{"training tiny at batch 8 needs about", "budget is 0.0 MiB", "--batch", "--freeze"}},
		{"head", train.Config{From: fm, FreezeBackbone: true, Backbone: notRun}, []string{"training tiny at batch 8", "frozen part", "--max-memory"}},
		{"scratch", train.Config{Arch: resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4}, Spec: fm.Meta.Preprocess}, []string{"training cifar-resnet8 at batch 8", "activations"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Data, c.ValSplit, c.Epochs, c.Batch, c.Seed, c.MaxMemory, c.OutDir = darkBright{n: 24}, 8, 1, 8, 1, 4096, t.TempDir()
			_, err := train.Run(context.Background(), c, train.Callbacks{})
			if !errors.Is(err, train.ErrBudget) {
				t.Fatalf("error %v, want ErrBudget", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, serr := os.Stat(filepath.Join(c.OutDir, train.StateFile)); serr == nil {
				t.Error("a state was written")
			}
		})
	}
	// The same net at batches 8 and 512: a budget between their estimates
	// lets only the smaller batch run.
	base := train.Config{Arch: resnet.Config{CIFAR: true, Depth: 8, BaseWidth: 4}, Spec: fm.Meta.Preprocess, Data: darkBright{n: 72}, ValSplit: 8,
		Epochs: 1, Seed: 1, MaxMemory: 12 << 20}
	small, large := base, base
	small.Batch, small.OutDir = 8, t.TempDir()
	large.Batch, large.OutDir = 512, t.TempDir()
	if _, err := train.Run(context.Background(), small, train.Callbacks{}); err != nil {
		t.Errorf("batch 8 within 12 MiB: %v", err)
	}
	if _, err := train.Run(context.Background(), large, train.Callbacks{}); !errors.Is(err, train.ErrBudget) {
		t.Errorf("batch 512 within 12 MiB: %v, want ErrBudget", err)
	}
}

// notRun is a Backbone for runs that must fail before running it.
func notRun([]float32, int) ([]float32, error) { return nil, errors.New("the backbone ran") }
