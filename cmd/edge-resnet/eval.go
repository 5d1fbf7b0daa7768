package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

type evalFlags struct {
	model     string
	threads   int
	limit     int
	json      bool
	precision string
	against   string
	tta       string
}

func newEvalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval [-m MODEL] [--precision fp32|int8|auto] [--against fp32|MODEL] [--tta flip|crop|flip,crop] [--threads N] [--limit N] [--json] DATA",
		Short: "Measure top-1/top-5 accuracy on a labeled image set",
		Long: `Measure a model's top-1 and top-5 accuracy on a labeled image set, with the
model's own preprocessing. DATA is one of:
  - a folder, or a .zip archive, with one subfolder of images per class; a
    subfolder named like one of the model's labels (case-insensitive) or by a
    class number is that class, otherwise subfolders are numbered in sorted
    order (torchvision's ImageFolder rule);
  - an IDX images file (e.g. t10k-images-idx3-ubyte.gz), with its labels file
    (t10k-labels-idx1-ubyte.gz) beside it;
  - a CIFAR-10 binary file (.bin: per image a label byte and 3072 RGB bytes).
Images are spread over --threads single-threaded sessions. Unreadable images
are reported, one line each naming the image, and skipped (the exit status is
then 1).

--against evaluates a reference as well and reports both accuracies, how
often the two agree on the top-1 class, and the largest and mean absolute
difference of their outputs: "fp32" is the same model run in fp32 (to
measure what int8 costs), anything else another model file (e.g. the
original .onnx of a quantized model).

--tta measures accuracy with test-time augmentation, as classify --tta
does: each image is scored by the mean probabilities of its views (flip: 2,
crop: 5, flip,crop: 10), run as one batch; the reference of --against uses
the same views.`,
		Example: `  edge-resnet eval /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  edge-resnet eval -m cifar10_resnet20.ern cifar10_test_jpeg.zip
  edge-resnet eval -m resnet20_int8.ern --against fp32 cifar10_test_jpeg.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEval(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "model image or ONNX file (default: built-in Fashion-MNIST ResNet-20)")
	fl.IntVar(&f.threads, "threads", 0, "parallel single-threaded sessions (0: number of CPUs)")
	fl.IntVar(&f.limit, "limit", 0, "evaluate only the first N images (0: all)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object")
	fl.StringVar(&f.precision, "precision", "auto", precisionUsage)
	fl.StringVar(&f.against, "against", "", "also evaluate a reference and compare: fp32 (this model in fp32) or a model file")
	fl.StringVar(&f.tta, "tta", "none", ttaUsage)
	return cmd
}

// runEval evaluates the model on the image set data and, with --against,
// a reference too, and prints the result. Unreadable images are reported
// as they come and make the exit status 1 at the end.
func runEval(cmd *cobra.Command, f evalFlags, data string) error {
	if err := checkIntFlags(threadsFlag(f.threads), intFlag{"--limit", f.limit, 0, 0, "0: all"}); err != nil {
		return err
	}
	views, err := parseTTA(f.tta)
	if err != nil {
		return err
	}
	m, err := loadModel(f.model)
	if err != nil {
		return err
	}
	defer m.Close()
	set, err := dataset.Open(data, m.Labels())
	if err != nil {
		return err
	}
	defer set.Close()
	prec, err := edgeresnet.ParsePrecision(f.precision)
	if err != nil {
		return err
	}
	ev := &evalRun{cmd: cmd, f: f, set: set, n: set.Len(), views: views}
	if f.limit > 0 && f.limit < ev.n {
		ev.n = f.limit
	}
	res, dt, err := ev.evaluate(m, prec, "evaluating")
	if err != nil {
		return err
	}
	out := evalOutput{Model: m.Meta().Name, Data: data, Precision: precisionOf(m, prec), EvalResult: res, Seconds: dt.Seconds()}
	if len(views) > 1 {
		out.TTA, out.Views = f.tta, len(views)
	}
	if f.against != "" {
		ref, err := ev.reference(m)
		if err != nil {
			return err
		}
		ag := edgeresnet.Compare(res, ref)
		out.Against, out.Reference, out.Agreement = f.against, ref, &ag
	}
	if err := out.print(cmd.OutOrStdout(), f.json); err != nil {
		return err
	}
	if ev.failed {
		return errReported
	}
	return nil
}

// evalRun evaluates models on one set for runEval.
type evalRun struct {
	cmd    *cobra.Command
	f      evalFlags
	set    dataset.Set
	n      int               // images evaluated (--limit), for the progress bar
	failed bool              // an image could not be read (set under Evaluate's lock)
	views  []preprocess.View // --tta
}

// evaluate runs m at prec over the set with a progress bar named what,
// reporting unreadable images on stderr, and returns the result and the
// time it took. With --against it keeps the outputs to compare them.
func (ev *evalRun) evaluate(m *edgeresnet.Model, prec edgeresnet.Precision, what string) (*edgeresnet.EvalResult, time.Duration, error) {
	stderr := ev.cmd.ErrOrStderr()
	bar := newBar(stderr, ev.n, what)
	t0 := time.Now()
	res, err := edgeresnet.EvaluateContext(ev.cmd.Context(), m, ev.set, edgeresnet.EvalOptions{
		Workers:     ev.f.threads,
		Limit:       ev.f.limit,
		Precision:   prec,
		KeepOutputs: ev.f.against != "",
		Views:       ev.views,
		Progress:    func(int) { bar.Add(1) },
		OnError: func(name string, err error) {
			ev.failed = true
			fmt.Fprintf(stderr, "edge-resnet: %v\n", err)
		},
	})
	bar.Finish()
	return res, time.Since(t0), err
}

// reference evaluates --against: m itself in fp32 ("fp32"), or another
// model file at its own precision.
func (ev *evalRun) reference(m *edgeresnet.Model) (*edgeresnet.EvalResult, error) {
	refModel, refPrec := m, edgeresnet.PrecisionFP32
	if ev.f.against != "fp32" {
		var err error
		if refModel, err = loadModel(ev.f.against); err != nil {
			return nil, err
		}
		defer refModel.Close()
		refPrec = edgeresnet.PrecisionAuto
	}
	ref, _, err := ev.evaluate(refModel, refPrec, "reference")
	return ref, err
}

// evalOutput is what eval prints: one JSON object with --json, else text.
type evalOutput struct {
	Model     string `json:"model"`
	Data      string `json:"data"`
	Precision string `json:"precision"`
	TTA       string `json:"tta,omitempty"`   // --tta
	Views     int    `json:"views,omitempty"` // views per image with --tta
	*edgeresnet.EvalResult
	Seconds   float64                `json:"seconds"`
	Against   string                 `json:"against,omitempty"`
	Reference *edgeresnet.EvalResult `json:"reference,omitempty"`
	Agreement *edgeresnet.Agreement  `json:"agreement,omitempty"`
}

func (o *evalOutput) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(o)
	}
	res := o.EvalResult
	prec := o.Precision
	if o.Views > 1 {
		prec = fmt.Sprintf("%s, --tta %s: %d views", prec, o.TTA, o.Views)
	}
	fmt.Fprintf(w, "%s (%s) on %s: %d images, top-1 %.2f%% (%d), top-5 %.2f%%, %.1f s (%.0f images/s)\n",
		o.Model, prec, o.Data, res.Images-res.Failed, 100*res.Top1, res.Correct, 100*res.Top5, o.Seconds,
		float64(res.Images)/o.Seconds)
	if ref, ag := o.Reference, o.Agreement; ref != nil {
		fmt.Fprintf(w, "reference %s: top-1 %.2f%% (%d), top-5 %.2f%%\n", o.Against, 100*ref.Top1, ref.Correct, 100*ref.Top5)
		fmt.Fprintf(w, "top-1 agreement %.2f%% of %d images, max |Δoutput| %.4g, mean |Δoutput| %.4g\n",
			100*ag.Top1, ag.Images, ag.MaxAbsDiff, ag.MeanAbsDiff)
	}
	if res.Failed > 0 {
		fmt.Fprintf(w, "%d images could not be read\n", res.Failed)
	}
	return nil
}

// precisionOf names the precision a model runs at under a setting.
func precisionOf(m *edgeresnet.Model, p edgeresnet.Precision) string {
	if p == edgeresnet.PrecisionAuto {
		if m.HasInt8() {
			return "int8"
		}
		return "fp32"
	}
	return p.String()
}
