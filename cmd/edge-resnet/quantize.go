package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/dataset"
)

type quantizeFlags struct {
	model   string
	calib   []string
	n       int
	method  string
	keep    []string
	out     string
	json    bool
	threads int
	bits    int
}

func newQuantizeCmd() *cobra.Command {
	var f quantizeFlags
	cmd := &cobra.Command{
		Use:   "quantize [-m IN] --calib DIR|FILE... [-n 500] [--method minmax|percentile|entropy|mse] [--keep-fp32 first,last] [--weight-bits 8|7] -o OUT [--json]",
		Short: "Make an int8 model by post-training quantization on calibration images",
		Long: `Quantize a model to int8: weights symmetric per output channel (after
BatchNorm folding), activations 8-bit per tensor with ranges calibrated on real
images run through the model's own preprocessing. The same images give the same
model.

--calib takes image files, folders or .zip files of images (flat or in
subfolders; labels are not needed), IDX images files and CIFAR-10 .bin files,
several times or comma separated; the first -n images in order are used.
An image that cannot be read or preprocessed is skipped with a warning on
stderr ("edge-resnet: warning: skipping calibration image NAME: REASON"),
counted in the report ("skipped", and "skipped_images" with --json) and not
replaced. quantize fails, with one error line, when fewer than half of the
-n images examined are readable.

--method chooses each activation's range from its calibration histogram:
  minmax      the observed minimum and maximum
  percentile  the central 99.99% of the values
  entropy     the clipping that minimizes the KL divergence between the
              float and the quantized distribution (TensorRT's method)
  mse         the clipping that minimizes the quantization mean squared error
The default is ` + edgeresnet.DefaultQuantizeMethod + ` (see docs/INT8.md for the measured table).

--keep-fp32 leaves layers in float32: "first" (the stem convolution), "last"
(the final fully connected layer) or node names as 'inspect' lists them.

--weight-bits 7 quantizes weights to [-63, 63] instead of [-127, 127]: half
the weight resolution, for speed on x86 CPUs with AVX2 but without VNNI, where
the int8 GEMM can then use VPMADDUBSW (exact for such weights) instead of
widening to int16. Elsewhere (VNNI, Arm) it brings no speed. It costs accuracy:
check the model with 'eval --against fp32' (docs/INT8.md has measured figures).
The default, 8, is the accurate choice.

The report lists every layer's precision, activation scale and zero point,
the chosen and the observed range, the weight scales, and how often int8 and
fp32 agree on the calibration images.`,
		Example: `  edge-resnet quantize -m cifar10_resnet20.onnx --calib cifar10_train_calib500_jpeg.zip -o resnet20_int8.ern
  edge-resnet eval -m resnet20_int8.ern --against fp32 cifar10_test_jpeg.zip`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runQuantize(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "model image (.ern) or ONNX file to quantize (default: built-in Fashion-MNIST ResNet-20)")
	fl.StringSliceVar(&f.calib, "calib", nil, "calibration images: image files, folders, .zip, IDX or CIFAR .bin (required; repeatable)")
	fl.IntVarP(&f.n, "n", "n", 500, "number of calibration images, from the first (0: all)")
	fl.StringVar(&f.method, "method", edgeresnet.DefaultQuantizeMethod, "range method: minmax, percentile, entropy or mse")
	fl.StringSliceVar(&f.keep, "keep-fp32", nil, "layers to keep in float32: first, last or node names")
	fl.StringVarP(&f.out, "output", "o", "", "output model image (.ern) (required)")
	fl.BoolVar(&f.json, "json", false, "print the report as one JSON object")
	fl.IntVar(&f.bits, "weight-bits", 8, "weight bits: 8, or 7 for faster int8 on AVX2 CPUs without VNNI (less accurate)")
	fl.IntVar(&f.threads, "threads", 0, "parallel single-threaded runs (0: number of CPUs)")
	cmd.MarkFlagRequired("calib")
	cmd.MarkFlagRequired("output")
	return cmd
}

func runQuantize(ctx context.Context, stdout, stderr io.Writer, f quantizeFlags) error {
	if err := checkIntFlags(intFlag{"-n", f.n, 0, 0, "0: all"}, threadsFlag(f.threads)); err != nil {
		return err
	}
	if err := refuseOverwrite(f.model, f.out); err != nil {
		return err
	}
	m, err := loadModel(f.model)
	if err != nil {
		return err
	}
	defer m.Close()
	var sets multiSet
	defer sets.Close()
	for _, c := range f.calib {
		s, err := dataset.OpenImages(c)
		if err != nil {
			return err
		}
		sets = append(sets, s)
	}
	n := sets.Len()
	if f.n > 0 && f.n < n {
		n = f.n
	}
	bar := newBar(stderr, 4*n, "calibrating")
	last, lastTotal := 0, 4*n
	qm, rep, err := edgeresnet.QuantizeContext(ctx, m, sets, edgeresnet.QuantizeOptions{
		Method: f.method, Limit: f.n, KeepFP32: f.keep, Workers: f.threads, WeightBits: f.bits,
		Progress: func(done, total int) {
			if total != lastTotal {
				bar.ChangeMax(total)
				lastTotal = total
			}
			bar.Add(done - last)
			last = done
		},
		OnSkip: func(s edgeresnet.SkippedImage) {
			bar.Clear()
			fmt.Fprintf(stderr, "edge-resnet: warning: skipping calibration image %s: %s\n", s.Name, s.Reason)
		},
	})
	bar.Finish()
	if err != nil {
		return err
	}
	// The report comes first: it is worth having even if the file cannot
	// be written.
	if f.json {
		err = json.NewEncoder(stdout).Encode(struct {
			Model  string `json:"model"`
			Output string `json:"output"`
			*edgeresnet.QuantizeReport
		}{f.model, f.out, rep})
	} else {
		printQuantizeReport(stdout, rep)
	}
	if err != nil {
		return err
	}
	if err := qm.WriteFile(f.out); err != nil {
		return err
	}
	if !f.json {
		fmt.Fprintf(stdout, "wrote %s\n", f.out)
	}
	return nil
}

func printQuantizeReport(w io.Writer, rep *edgeresnet.QuantizeReport) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\top\tprec\tscale\tzero\trange lo\trange hi\tobserved min\tobserved max\tweight scales\t")
	for _, l := range rep.Layers {
		scale, zero, lo, hi, mn, mx := "-", "-", "-", "-", "-", "-"
		if l.Quantized {
			scale, zero = fmt.Sprintf("%.4g", l.Scale), fmt.Sprint(l.Zero)
			lo, hi = fmt.Sprintf("%.4g", l.Lo), fmt.Sprintf("%.4g", l.Hi)
			mn, mx = fmt.Sprintf("%.4g", l.Min), fmt.Sprintf("%.4g", l.Max)
		}
		ws := "-"
		if l.WeightScaleMax > 0 {
			ws = fmt.Sprintf("%.3g..%.3g", l.WeightScaleMin, l.WeightScaleMax)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, l.Op, l.Precision, scale, zero, lo, hi, mn, mx, ws)
	}
	tw.Flush()
	a := rep.Agreement
	fmt.Fprintf(w, "method %s, %d-bit weights, on %d calibration images: int8 vs fp32 top-1 agreement %.2f%%, max |Δoutput| %.4g, mean %.4g\n",
		rep.Method, rep.WeightBits, rep.Images, 100*a.Top1, a.MaxAbsDiff, a.MeanAbsDiff)
	if rep.Skipped > 0 {
		fmt.Fprintf(w, "skipped %d unreadable calibration images (warnings above)\n", rep.Skipped)
	}
	fmt.Fprintf(w, "weights: %.1f KB fp32 -> %.1f KB int8\n", float64(rep.FP32Bytes)/1e3, float64(rep.Int8Bytes)/1e3)
}

// multiSet concatenates data sets.
type multiSet []dataset.Set

func (s multiSet) Len() int {
	n := 0
	for _, x := range s {
		n += x.Len()
	}
	return n
}

func (s multiSet) at(i int) (dataset.Set, int) {
	for _, x := range s {
		if i < x.Len() {
			return x, i
		}
		i -= x.Len()
	}
	return s[len(s)-1], i // out of range: the set reports it
}

func (s multiSet) Image(i int) (image.Image, error) { x, j := s.at(i); return x.Image(j) }
func (s multiSet) Label(i int) int                  { x, j := s.at(i); return x.Label(j) }
func (s multiSet) Name(i int) string                { x, j := s.at(i); return x.Name(j) }
func (s multiSet) Classes() []string {
	if len(s) == 0 {
		return nil
	}
	return s[0].Classes()
}
func (s multiSet) Close() error {
	var errs []string
	for _, x := range s {
		if err := x.Close(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
