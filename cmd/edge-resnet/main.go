// Command edge-resnet classifies images with ResNet models, converts ONNX
// models into edge-resnet model images, and measures inference speed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
)

// errReported marks a failure already printed (per-file errors); main only
// sets the exit status.
var errReported = errors.New("errors reported above")

func main() {
	// Ctrl-C or SIGTERM stops long work (eval, quantize) between images.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		switch {
		case errors.Is(err, context.Canceled):
			fmt.Fprintln(os.Stderr, "edge-resnet: interrupted")
			stop()
			os.Exit(130)
		case !errors.Is(err, errReported):
			fmt.Fprintln(os.Stderr, "edge-resnet:", err)
		}
		stop()
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "edge-resnet",
		Short: "Fast ResNet image classification in pure Go",
		Long: `edge-resnet runs ResNet image classifiers (ResNet-18/34/50/101/152, CIFAR
ResNet-20/32/44/56/110 and ONNX exports of them) on CPUs from the Raspberry Pi
to x86 servers, from one static binary.

Without -m, commands use the built-in model: a ResNet-20 trained on
Fashion-MNIST (28x28 grayscale clothing images, 10 classes).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	maxMemory = memoryFlag{}
	root.PersistentFlags().Var(&maxMemory, "max-memory",
		"memory budget for a model's arena, packed weights and scratch, checked before allocating, e.g. 512MiB, 2GB, 1e9; 0 = no limit (default: "+
			defaultBudgetText()+", or $"+edgeresnet.EnvMaxMemory+")")
	root.PersistentFlags().StringVar(&tuneFlag, "tune", defaultTune(),
		"per-layer algorithms (im2col+GEMM or Winograd): measure (time them on this machine at the first load and keep the result in the user cache directory), cached (use kept measurements only) or off (built-in policies); default $"+edgeresnet.EnvTune+" when set (e.g. off under an emulator, whose timings say nothing of the board), else measure")
	root.PersistentFlags().BoolVar(&pinFlag, "pin", false,
		"bind each inference worker thread to a CPU of its own, the fastest first (big cores on big.LITTLE boards; Linux; `edge-resnet cpu` lists them)")
	root.AddCommand(newClassifyCmd(), newWatchCmd(), newConvertCmd(), newInspectCmd(), newBenchCmd(), newEvalCmd(), newQuantizeCmd(), newTrainCmd(), newServeCmd(), newCPUCmd())
	return root
}

// version is what --version prints: the library's Version, or the release
// build's stamp (deploy/Makefile: -ldflags "-X main.version=...").
var version = edgeresnet.Version

// maxMemory is --max-memory of the command being run.
var maxMemory memoryFlag

// pinFlag is --pin of the command being run.
var pinFlag bool

// tuneFlag is --tune of the command being run.
var tuneFlag = defaultTune()

// defaultTune is --tune's default: EDGE_RESNET_TUNE if set, else measure.
func defaultTune() string {
	if v := os.Getenv(edgeresnet.EnvTune); v != "" {
		return v
	}
	return "measure"
}

// memoryFlag is a byte count flag; unset means the library's default.
type memoryFlag struct {
	n   int64
	set bool
}

func (f *memoryFlag) String() string {
	if !f.set {
		return ""
	}
	return edgeresnet.FormatBytes(f.n)
}

func (f *memoryFlag) Set(s string) error {
	n, err := edgeresnet.ParseBytes(s)
	if err != nil {
		return err
	}
	f.n, f.set = n, true
	return nil
}

func (f *memoryFlag) Type() string { return "bytes" }

func defaultBudgetText() string {
	if n := edgeresnet.DefaultMaxMemory(); n > 0 {
		return edgeresnet.FormatBytes(n) + " here"
	}
	return "none"
}

// loadOptions are the library options the global flags ask for.
func loadOptions() []edgeresnet.LoadOption {
	if !maxMemory.set {
		return nil
	}
	return []edgeresnet.LoadOption{edgeresnet.LoadMaxMemory(maxMemory.n)}
}

// loadModel opens -m MODEL ("-": standard input), or the built-in model
// when path is empty.
func loadModel(path string) (*edgeresnet.Model, error) {
	if path == "" {
		return edgeresnet.Default(loadOptions()...)
	}
	return edgeresnet.Load(path, loadOptions()...)
}

// fromModel is edgeresnet.FromModel with the global flags' options.
func fromModel(fm *firmware.Model) (*edgeresnet.Model, error) {
	return edgeresnet.FromModel(fm, loadOptions()...)
}

// intFlag is a numeric flag's value and its range (max 0: no upper bound).
type intFlag struct {
	name     string
	value    int
	min, max int
	note     string
}

// checkIntFlags refuses numeric flags outside their range, naming the flag
// and the value on one line.
func checkIntFlags(flags ...intFlag) error {
	for _, f := range flags {
		if f.value < f.min || (f.max != 0 && f.value > f.max) {
			want := fmt.Sprintf(">= %d", f.min)
			if f.max != 0 {
				want = fmt.Sprintf("%d to %d", f.min, f.max)
			}
			return fmt.Errorf("%s %d: must be %s (%s)", f.name, f.value, want, f.note)
		}
	}
	return nil
}

// threadsFlag is --threads (0: one per CPU).
func threadsFlag(n int) intFlag {
	return intFlag{"--threads", n, 0, edgeresnet.MaxThreads, "0: one per CPU"}
}

// checkThreads validates --threads.
func checkThreads(threads int) error { return checkIntFlags(threadsFlag(threads)) }

// newSession starts a session with the given threads (0: one per CPU)
// and precision ("fp32", "int8", "auto" or "").
func newSession(m *edgeresnet.Model, threads int, precision string, extra ...edgeresnet.SessionOption) (*edgeresnet.Session, error) {
	if err := checkThreads(threads); err != nil {
		return nil, err
	}
	p, err := edgeresnet.ParsePrecision(precision)
	if err != nil {
		return nil, err
	}
	tune, err := edgeresnet.ParseTune(tuneFlag)
	if err != nil {
		return nil, fmt.Errorf("--tune: %w", err)
	}
	opts := []edgeresnet.SessionOption{edgeresnet.WithPrecision(p), edgeresnet.WithTune(tune)}
	if pinFlag {
		opts = append(opts, edgeresnet.WithPinning())
	}
	if threads != 0 {
		opts = append(opts, edgeresnet.WithThreads(threads))
	}
	if maxMemory.set {
		opts = append(opts, edgeresnet.WithMaxMemory(maxMemory.n))
	}
	return m.NewSession(append(opts, extra...)...)
}

// limitHeap sets Go's soft memory limit to the live heap now (the model,
// its session) plus perItem bytes of transient work (decoding one image)
// and a margin, unless GOMEMLIMIT is set. The budgets bound what is live;
// without a limit the collector lets the heap grow to twice the live size
// between cycles, so a run of large images could take twice the budget.
func limitHeap(perItem int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	const margin = 64 << 20
	debug.SetMemoryLimit(int64(ms.HeapAlloc) + perItem + margin)
}

// refuseOverwrite fails when out names the same file as in (also through
// links), so that a command never replaces its own input.
func refuseOverwrite(in, out string) error {
	a, err := os.Stat(in)
	if err != nil {
		return nil // in is not a file (the built-in model, "-")
	}
	b, err := os.Stat(out)
	if err == nil && os.SameFile(a, b) {
		return fmt.Errorf("-o %s is the input %s: refusing to replace it (write elsewhere, then rename)", out, in)
	}
	return nil
}

// isTerminal reports whether w is an interactive terminal (progress bars
// only go there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar returns a progress bar on stderr, invisible unless stderr is a
// terminal, so pipes and CI logs stay clean.
func newBar(w io.Writer, n int, desc string) *progressbar.ProgressBar {
	return newUnitBar(w, n, desc, "img")
}

// newUnitBar is newBar counting unit (e.g. "step") instead of images.
func newUnitBar(w io.Writer, n int, desc, unit string) *progressbar.ProgressBar {
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(isTerminal(w)),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// precisionUsage documents --precision.
const precisionUsage = "arithmetic: fp32, int8 (models made by 'edge-resnet quantize') or auto (int8 when the model has int8 data)"

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
