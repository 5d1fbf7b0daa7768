package train

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// ErrBudget is wrapped by Run's error when a run's memory estimate (see
// Memory) exceeds Config.MaxMemory.
var ErrBudget = errors.New("over the memory budget")

// Memory is the estimate of a run's memory, in bytes, by part.
type Memory struct {
	// Params are the net's parameters and BatchNorm statistics, Grads
	// their gradients, Optimizer the optimizer's state (Adam 2 values
	// per trained parameter, SGD with momentum 1).
	Params, Grads, Optimizer int64
	// Activations are what the trained layers keep for Backward and their
	// input gradients at the batch size; Workspace the convs' packed
	// weights and per-thread scratch.
	Activations, Workspace int64
	// Frozen is the frozen part's inference session (Config.FrozenMemory)
	// or a frozen backbone's cached features.
	Frozen int64
	// Data are the data loaders' batches in flight (training and
	// validation, Prefetch+1 each) and the frozen part's outputs.
	Data int64
}

// Total is the sum of the parts.
func (m Memory) Total() int64 {
	return m.Params + m.Grads + m.Optimizer + m.Activations + m.Workspace + m.Frozen + m.Data
}

func (m Memory) String() string {
	return fmt.Sprintf("%s (parameters %s, gradients %s, optimizer %s, activations %s, workspace %s, frozen part %s, data %s)",
		fmtBytes(m.Total()), fmtBytes(m.Params), fmtBytes(m.Grads), fmtBytes(m.Optimizer), fmtBytes(m.Activations),
		fmtBytes(m.Workspace), fmtBytes(m.Frozen), fmtBytes(m.Data))
}

// fmtBytes prints a byte count in MiB or GiB.
func fmtBytes(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// memoryOf estimates the memory of training net cfg (normalized) at the
// given batch on threads threads with an optimizer keeping optState
// values per trained parameter, the stem and the first stages frozen
// (stages >= 0: they hold parameters and gradients but run elsewhere).
func memoryOf(cfg resnet.Config, batch, threads, optState, stages int) Memory {
	var m Memory
	stem, blocks, fcIn := netLayout(cfg)
	s := grad.Shape{N: batch, H: cfg.Height, W: cfg.Width, C: cfg.InChannels}
	add := func(u unitSpec, in grad.Shape) grad.Shape {
		w := int64(u.k*u.k*u.cin/u.groups*u.cout) + int64(u.cout)*b2i(u.bias)
		m.Params += 4 * (w + 4*int64(u.cout))
		m.Grads += 4 * (w + 2*int64(u.cout))
		oh, ow := (in.H+2*u.pad-u.k)/u.stride+1, (in.W+2*u.pad-u.k)/u.stride+1
		out := grad.Shape{N: in.N, H: oh, W: ow, C: u.cout}
		if frozenName(u.convName, stages) {
			return out
		}
		m.Optimizer += 4 * int64(optState) * (w + 2*int64(u.cout))
		// conv y and dx, the BN's y (its ReLU fused) and dx; the BN keeps
		// no normalized copy of its input.
		m.Activations += 4 * (int64(in.Size()) + 3*int64(out.Size()))
		m.Workspace += u.conv().Workspace(in, threads, nil)
		return out
	}
	s = add(stem, s)
	if !cfg.CIFAR { // the max pool's y, argmax and dx
		in := s
		s.H, s.W = (s.H-1)/2+1, (s.W-1)/2+1
		if stages < 0 {
			m.Activations += 4 * (2*int64(s.Size()) + int64(in.Size()))
		}
	}
	for _, b := range blocks {
		in := s
		for _, u := range b.main {
			s = add(u, s)
		}
		if b.proj != nil {
			add(*b.proj, in)
		}
		if !frozenName(b.name, stages) { // option A's y and dx (the sum and ReLU write over the main path's)
			m.Activations += 4 * b2i(b.shortA != nil) * int64(s.Size()+in.Size())
		}
	}
	fc := int64(fcIn*cfg.Classes + cfg.Classes)
	m.Params += 4 * fc
	m.Grads += 4 * fc
	m.Optimizer += 4 * int64(optState) * fc
	m.Activations += 4 * int64(batch) * int64(3*fcIn+3*cfg.Classes)
	m.Workspace += 4 * (2*fc + int64(batch*cfg.Classes))
	return m
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// optimizerState is how many values per parameter the optimizer keeps.
func (c *Config) optimizerState() int {
	switch {
	case c.Optimizer == "sgd" && c.Momentum == 0:
		return 0
	case c.Optimizer == "sgd":
		return 1
	}
	return 2
}

// dataMemory is the loaders' batches in flight (training and validation
// streams are open together while validating, each holding Prefetch+1
// batches) and the frozen part's outputs of one batch (out, zero size:
// none).
func (c *Config) dataMemory(out graph.Shape) int64 {
	in := int64(c.Spec.Height * c.Spec.Width * c.Spec.Channels)
	return 4 * int64(c.Batch) * (2*3*in + int64(out.Size()))
}

// memory is the estimate of training cfg.Arch with the stem and the first
// stages frozen, their output of shape frozen.
func (c *Config) memory(stages int, frozen graph.Shape) (Memory, error) {
	arch, err := c.Arch.Normalize()
	if err != nil {
		return Memory{}, err
	}
	m := memoryOf(arch, c.Batch, max(c.Threads, 1), c.optimizerState(), stages)
	m.Frozen = c.FrozenMemory
	if stages < 0 {
		frozen = graph.Shape{}
	}
	m.Data = c.dataMemory(frozen)
	return m, nil
}

// headMemory is the estimate of training a head over a frozen backbone's
// cached features.
func headMemory(c *Config) (Memory, error) {
	g, err := BackboneGraph(c.From.Graph)
	if err != nil {
		return Memory{}, err
	}
	f := int64(g.Nodes[g.Output].Shape.Size())
	samples := int64(c.Data.Len())
	if c.Val != nil {
		samples += int64(c.Val.Len())
	}
	fc := f*int64(c.Arch.Classes) + int64(c.Arch.Classes)
	return Memory{Params: 4 * fc, Grads: 4 * fc, Optimizer: 4 * int64(c.optimizerState()) * fc,
		Activations: 4 * int64(c.Batch) * (2*f + 3*int64(c.Arch.Classes)),
		Frozen:      c.FrozenMemory + 4*samples*f, Data: c.dataMemory(graph.Shape{})}, nil
}

// checkMemory fails with ErrBudget when m exceeds Config.MaxMemory,
// naming the estimate, the budget and what to reduce (or with err).
func (c *Config) checkMemory(m Memory, err error) error {
	if err != nil || c.MaxMemory <= 0 || m.Total() <= c.MaxMemory {
		return err
	}
	what := c.Arch.Name()
	if a, err := c.Arch.Normalize(); err == nil {
		what = a.Name()
	}
	var fix []string
	if c.Batch > 1 {
		fix = append(fix, fmt.Sprintf("a smaller batch (--batch, %d now)", c.Batch))
	}
	if c.From != nil {
		what = cmp.Or(c.From.Meta.Name, c.From.Meta.Arch, what)
		if !c.FreezeBackbone {
			fix = append(fix, "more frozen layers (--freeze)")
		}
	}
	fix = append(fix, "or a larger budget (--max-memory)")
	return fmt.Errorf("train: %w: training %s at batch %d needs about %s; the budget is %s: try %s",
		ErrBudget, what, c.Batch, m, fmtBytes(c.MaxMemory), strings.Join(fix, ", "))
}
