package edgeresnet

import (
	"context"
	"fmt"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/train"
)

// Train trains a ResNet as package train's Run does (see train.Config):
// epochs of seeded mini-batches with validation, metrics reported to
// cb.OnMetrics and appended to cfg.OutDir/metrics.jsonl, the best
// checkpoints written there as model images that Load takes, and a
// resumable state saved when ctx ends (the error then wraps
// train.ErrInterrupted and ctx.Err()).
//
// With cfg.From (fine-tuning with cfg.FreezeBackbone) and no
// cfg.Backbone, the backbone's features are computed by this package's
// inference engine: From's graph cut at the input of its classifier
// (train.BackboneGraph), run at the model's default precision on cfg.Threads threads
// (0: GOMAXPROCS).
func Train(ctx context.Context, cfg train.Config, cb train.Callbacks) (*train.Result, error) {
	if cfg.From != nil && cfg.FreezeBackbone && cfg.Backbone == nil {
		bb, closeFn, err := backbone(cfg.From, cfg.Threads)
		if err != nil {
			return nil, err
		}
		defer closeFn()
		cfg.Backbone = bb
	}
	return train.Run(ctx, cfg, cb)
}

// backboneBatch is the batch of the backbone's sessions.
const backboneBatch = 64

// backbone is a session over fm's graph cut at its classifier's input,
// as a train.Backbone, and its closing.
func backbone(fm *firmware.Model, threads int) (train.Backbone, func(), error) {
	g, err := train.BackboneGraph(fm.Graph)
	if err != nil {
		return nil, nil, err
	}
	meta := fm.Meta
	meta.Labels, meta.Output = nil, firmware.OutputLogits // features, not classes
	m, err := FromModel(&firmware.Model{Graph: g, Meta: meta})
	if err != nil {
		return nil, nil, fmt.Errorf("the backbone of %s: %w", fm.Meta.Name, err)
	}
	opts := []SessionOption{WithBatch(backboneBatch)}
	if threads > 0 {
		opts = append(opts, WithThreads(threads))
	}
	s, err := m.NewSession(opts...)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	in := g.Input().Size()
	var feats []float32
	run := func(x []float32, n int) ([]float32, error) {
		feats = feats[:0]
		for lo := 0; lo < n; lo += backboneBatch {
			k := min(n-lo, backboneBatch)
			copy(s.Input(), x[lo*in:(lo+k)*in])
			out, err := s.RunBatch(k)
			if err != nil {
				return nil, err
			}
			feats = append(feats, out...)
		}
		return feats, nil
	}
	return run, func() { s.Close(); m.Close() }, nil
}
