// Command edge-resnet classifies images with ResNet models, converts ONNX
// models into edge-resnet model images, and measures inference speed.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

// errReported marks a failure already printed (per-file errors); main only
// sets the exit status.
var errReported = errors.New("errors reported above")

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "edge-resnet:", err)
		}
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
		Version:       edgeresnet.Version,
	}
	root.AddCommand(newClassifyCmd(), newConvertCmd(), newInspectCmd(), newBenchCmd(), newEvalCmd(), newQuantizeCmd(), newCPUCmd())
	return root
}

// loadModel opens -m MODEL, or the built-in model when path is empty.
func loadModel(path string) (*edgeresnet.Model, error) {
	if path == "" {
		return edgeresnet.Default()
	}
	return edgeresnet.Load(path)
}

// newSession starts a session with the given threads (0: one per CPU)
// and precision ("fp32", "int8", "auto" or "").
func newSession(m *edgeresnet.Model, threads int, precision string) (*edgeresnet.Session, error) {
	p, err := edgeresnet.ParsePrecision(precision)
	if err != nil {
		return nil, err
	}
	opts := []edgeresnet.SessionOption{edgeresnet.WithPrecision(p)}
	if threads != 0 {
		opts = append(opts, edgeresnet.WithThreads(threads))
	}
	return m.NewSession(opts...)
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
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetVisibility(isTerminal(w)),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("img"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// precisionUsage documents --precision.
const precisionUsage = "arithmetic: fp32, int8 (models made by 'edge-resnet quantize') or auto (int8 when the model has int8 data)"

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
