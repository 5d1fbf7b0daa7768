package edgeresnet

import (
	"cmp"
	"context"
	"fmt"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/train"
)

// Train trains a ResNet as package train's Run does (see train.Config):
// epochs of seeded mini-batches with validation, metrics reported to
// cb.OnMetrics and appended to cfg.OutDir/metrics.jsonl, the best
// checkpoints written there as model images that Load takes, and a
// resumable state saved when ctx ends (the error then wraps
// train.ErrInterrupted and ctx.Err()).
//
// With cfg.From, frozen layers (cfg.FreezeBackbone or cfg.Freeze) and no
// cfg.Backbone, the frozen part is run by this package's inference
// engine: From's graph cut at the output of the frozen layers
// (train.FrozenGraph; for the backbone, at the input of its classifier),
// run at the model's default precision on cfg.Threads threads (0:
// GOMAXPROCS), within the default memory budget.
func Train(ctx context.Context, cfg train.Config, cb train.Callbacks) (*train.Result, error) {
	if err := envError(); err != nil {
		return nil, err
	}
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = DefaultMaxMemory()
	}
	if cfg.From != nil && (cfg.FreezeBackbone || cfg.Freeze != "") && cfg.Backbone == nil {
		freeze := cfg.Freeze
		if cfg.FreezeBackbone {
			freeze = "backbone"
		}
		g, err := train.FrozenGraph(cfg.From, freeze)
		if err != nil {
			return nil, err
		}
		bb, closeFn, err := backbone(cfg.From, g, cfg.Threads, min(cmp.Or(cfg.Batch, backboneBatch), backboneBatch), cfg.MaxMemory)
		if err != nil {
			return nil, err
		}
		defer closeFn()
		cfg.Backbone = bb.run
		cfg.FrozenMemory = bb.memory
	}
	return train.Run(ctx, cfg, cb)
}

// backboneBatch is the largest batch of the backbone's sessions.
const backboneBatch = 64

// frozenPart runs the frozen part of a model on the inference engine.
type frozenPart struct {
	run    train.Backbone
	memory int64 // the session's packed weights, arena and scratch
}

// backbone is a session of the given batch over g, the frozen part of
// fm, within budget bytes (<= 0: none), as a train.Backbone, and its
// closing.
func backbone(fm *firmware.Model, g *graph.Graph, threads, batch int, budget int64) (frozenPart, func(), error) {
	meta := fm.Meta
	meta.Labels, meta.Output = nil, firmware.OutputLogits // features, not classes
	m, err := FromModel(&firmware.Model{Graph: g, Meta: meta}, LoadMaxMemory(budget))
	if err != nil {
		return frozenPart{}, nil, fmt.Errorf("the frozen layers of %s: %w", fm.Meta.Name, err)
	}
	opts := []SessionOption{WithBatch(batch)}
	if threads > 0 {
		opts = append(opts, WithThreads(threads))
	}
	s, err := m.NewSession(opts...)
	if err != nil {
		m.Close()
		return frozenPart{}, nil, fmt.Errorf("the frozen layers of %s: %w", fm.Meta.Name, err)
	}
	in := g.Input().Size()
	var feats []float32
	run := func(x []float32, n int) ([]float32, error) {
		feats = feats[:0]
		for lo := 0; lo < n; lo += batch {
			k := min(n-lo, batch)
			copy(s.Input(), x[lo*in:(lo+k)*in])
			out, err := s.RunBatch(k)
			if err != nil {
				return nil, err
			}
			feats = append(feats, out...)
		}
		return feats, nil
	}
	return frozenPart{run: run, memory: s.plan.MemoryBytes(s.Threads())}, func() { s.Close(); m.Close() }, nil
}
