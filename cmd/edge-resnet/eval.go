package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/dataset"
)

func newEvalCmd() *cobra.Command {
	var (
		model     string
		threads   int
		limit     int
		asJSON    bool
		precision string
		against   string
	)
	cmd := &cobra.Command{
		Use:   "eval [-m MODEL] [--precision fp32|int8|auto] [--against fp32|MODEL] [--threads N] [--limit N] [--json] DATA",
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
original .onnx of a quantized model).`,
		Example: `  edge-resnet eval /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  edge-resnet eval -m cifar10_resnet20.ern cifar10_test_jpeg.zip
  edge-resnet eval -m resnet20_int8.ern --against fp32 cifar10_test_jpeg.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkIntFlags(threadsFlag(threads), intFlag{"--limit", limit, 0, 0, "0: all"}); err != nil {
				return err
			}
			m, err := loadModel(model)
			if err != nil {
				return err
			}
			defer m.Close()
			set, err := dataset.Open(args[0], m.Labels())
			if err != nil {
				return err
			}
			defer set.Close()
			prec, err := edgeresnet.ParsePrecision(precision)
			if err != nil {
				return err
			}
			n := set.Len()
			if limit > 0 && limit < n {
				n = limit
			}
			stderr := cmd.ErrOrStderr()
			failed := false
			evaluate := func(m *edgeresnet.Model, prec edgeresnet.Precision, what string) (*edgeresnet.EvalResult, time.Duration, error) {
				bar := newBar(stderr, n, what)
				t0 := time.Now()
				res, err := edgeresnet.EvaluateContext(cmd.Context(), m, set, edgeresnet.EvalOptions{
					Workers:     threads,
					Limit:       limit,
					Precision:   prec,
					KeepOutputs: against != "",
					Progress:    func(int) { bar.Add(1) },
					OnError: func(name string, err error) {
						failed = true
						fmt.Fprintf(stderr, "edge-resnet: %v\n", err)
					},
				})
				bar.Finish()
				return res, time.Since(t0), err
			}
			res, dt, err := evaluate(m, prec, "evaluating")
			if err != nil {
				return err
			}
			var ref *edgeresnet.EvalResult
			var ag edgeresnet.Agreement
			refName := against
			if against != "" {
				refModel, refPrec := m, edgeresnet.PrecisionFP32
				if against != "fp32" {
					if refModel, err = loadModel(against); err != nil {
						return err
					}
					defer refModel.Close()
					refPrec = edgeresnet.PrecisionAuto
				}
				if ref, _, err = evaluate(refModel, refPrec, "reference"); err != nil {
					return err
				}
				ag = edgeresnet.Compare(res, ref)
			}
			name := m.Meta().Name
			if asJSON {
				out := struct {
					Model     string `json:"model"`
					Data      string `json:"data"`
					Precision string `json:"precision"`
					*edgeresnet.EvalResult
					Seconds   float64                `json:"seconds"`
					Against   string                 `json:"against,omitempty"`
					Reference *edgeresnet.EvalResult `json:"reference,omitempty"`
					Agreement *edgeresnet.Agreement  `json:"agreement,omitempty"`
				}{Model: name, Data: args[0], Precision: precisionOf(m, prec), EvalResult: res, Seconds: dt.Seconds()}
				if ref != nil {
					out.Against, out.Reference, out.Agreement = refName, ref, &ag
				}
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(out); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%s (%s) on %s: %d images, top-1 %.2f%% (%d), top-5 %.2f%%, %.1f s (%.0f images/s)\n",
					name, precisionOf(m, prec), args[0], res.Images-res.Failed, 100*res.Top1, res.Correct, 100*res.Top5, dt.Seconds(),
					float64(res.Images)/dt.Seconds())
				if ref != nil {
					fmt.Fprintf(w, "reference %s: top-1 %.2f%% (%d), top-5 %.2f%%\n", refName, 100*ref.Top1, ref.Correct, 100*ref.Top5)
					fmt.Fprintf(w, "top-1 agreement %.2f%% of %d images, max |Δoutput| %.4g, mean |Δoutput| %.4g\n",
						100*ag.Top1, ag.Images, ag.MaxAbsDiff, ag.MeanAbsDiff)
				}
				if res.Failed > 0 {
					fmt.Fprintf(w, "%d images could not be read\n", res.Failed)
				}
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&model, "model", "m", "", "model image or ONNX file (default: built-in Fashion-MNIST ResNet-20)")
	fl.IntVar(&threads, "threads", 0, "parallel single-threaded sessions (0: number of CPUs)")
	fl.IntVar(&limit, "limit", 0, "evaluate only the first N images (0: all)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object")
	fl.StringVar(&precision, "precision", "auto", precisionUsage)
	fl.StringVar(&against, "against", "", "also evaluate a reference and compare: fp32 (this model in fp32) or a model file")
	return cmd
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
