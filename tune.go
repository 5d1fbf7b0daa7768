package edgeresnet

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/edge-resnet/edge-resnet/internal/engine"
	"github.com/edge-resnet/edge-resnet/internal/tunecache"
	"github.com/edge-resnet/edge-resnet/kernels"
)

// Tune is what a session's plan does with per-layer measurements: where a
// layer has several algorithms (3x3 stride-1 convolutions: im2col+GEMM or
// Winograd F(2x2)/F(4x4) in fp32, GEMM or Winograd in int8), which runs.
// The candidates are timed on the layer's real shape, on this machine, at
// the session's thread count, and kept in a cache file per CPU model,
// kernel path and thread count under the user cache directory
// (os.UserCacheDir()/edge-resnet/tune), shared by every model with layers
// of those shapes. int8 results are the same whichever runs; fp32 ones
// differ by Winograd's rounding (docs/WINOGRAD.md).
type Tune int

const (
	// TuneOff runs the built-in per-layer policies (the library's
	// default, unless EDGE_RESNET_TUNE says otherwise).
	TuneOff Tune = iota
	// TuneCached takes this machine's stored measurements where they
	// exist and the policies elsewhere; it never measures.
	TuneCached
	// TuneMeasure is TuneCached that also measures, and stores, the
	// layers without a measurement: the first load of a model on a
	// machine takes longer (about a second for ResNet-50), the next ones
	// read the cache. The CLI's default.
	TuneMeasure
)

// EnvTune sets the default Tune of sessions: off, cached or measure.
const EnvTune = "EDGE_RESNET_TUNE"

var tuneNames = []string{"off", "cached", "measure"}

func (t Tune) String() string {
	if t >= 0 && int(t) < len(tuneNames) {
		return tuneNames[t]
	}
	return fmt.Sprintf("Tune(%d)", int(t))
}

// ParseTune reads off, cached or measure.
func ParseTune(s string) (Tune, error) {
	for i, n := range tuneNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Tune(i), nil
		}
	}
	return 0, fmt.Errorf("%w: tune %q: want off, cached or measure", ErrInput, s)
}

// WithTune sets how the session's plan chooses per-layer algorithms
// (default TuneOff, or EDGE_RESNET_TUNE). Sessions of one model with
// different settings or, when tuning, thread counts get plans of their
// own.
func WithTune(t Tune) SessionOption { return func(c *sessionConfig) { c.tune, c.tuneSet = t, true } }

// defaultTune is EDGE_RESNET_TUNE's setting, TuneOff when unset.
func defaultTune() (Tune, error) {
	v := os.Getenv(EnvTune)
	if v == "" {
		return TuneOff, nil
	}
	t, err := ParseTune(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", EnvTune, err)
	}
	return t, nil
}

// tuning is the engine's Tuning for t at threads on kernel path ks, with
// the machine's cache (nil for TuneOff). A cache that cannot be read is
// logged and replaced; one that cannot be opened leaves tuning without a
// store (measuring at every load).
func tuning(t Tune, threads int, ks *kernels.Set) (*engine.Tuning, *tunecache.Cache) {
	if t == TuneOff {
		return nil, nil
	}
	tn := &engine.Tuning{Mode: engine.TuneCached, Threads: threads}
	if t == TuneMeasure {
		tn.Mode = engine.TuneMeasure
	}
	dir, err := tunecache.Dir()
	if err != nil {
		slog.Warn("edge-resnet: no tuning cache: " + err.Error())
		return tn, nil
	}
	c, warn := tunecache.Open(dir, tunecache.Key{CPU: kernels.CPU(), Path: ks.Name(), Threads: threads})
	if warn != nil {
		slog.Warn("edge-resnet: " + warn.Error())
	}
	tn.Store = c
	return tn, c
}

// saveTuning writes what a compile measured into the cache; a failure is
// logged, as the plan is good either way.
func saveTuning(c *tunecache.Cache) {
	if c == nil {
		return
	}
	if err := c.Save(); err != nil {
		slog.Warn("edge-resnet: " + err.Error())
	}
}
