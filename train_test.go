package edgeresnet

import (
	"context"
	"testing"

	"github.com/edge-resnet/edge-resnet/train"
)

// TestTrainRefusesBadConfig checks that Train reaches train.Run (which
// train's own tests exercise) and returns its errors.
func TestTrainRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  train.Config
	}{
		{"no data", train.Config{Epochs: 1, OutDir: t.TempDir()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Train(context.Background(), tc.cfg, train.Callbacks{}); err == nil {
				t.Error("no error")
			}
		})
	}
}
