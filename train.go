package edgeresnet

import (
	"context"

	"github.com/edge-resnet/edge-resnet/train"
)

// Train trains a ResNet as package train's Run does (see train.Config):
// epochs of seeded mini-batches with validation, metrics reported to
// cb.OnMetrics and appended to cfg.OutDir/metrics.jsonl, the best
// checkpoints written there as model images that Load takes, and a
// resumable state saved when ctx ends (the error then wraps
// train.ErrInterrupted and ctx.Err()).
func Train(ctx context.Context, cfg train.Config, cb train.Callbacks) (*train.Result, error) {
	return train.Run(ctx, cfg, cb)
}
