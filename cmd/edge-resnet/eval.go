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
		model   string
		threads int
		limit   int
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "eval [-m MODEL] [--threads N] [--limit N] [--json] DATA",
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
are reported and skipped (the exit status is then 1).`,
		Example: `  edge-resnet eval /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  edge-resnet eval -m cifar10_resnet20.ern cifar10_test_jpeg.zip`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			n := set.Len()
			if limit > 0 && limit < n {
				n = limit
			}
			stderr := cmd.ErrOrStderr()
			bar := newBar(stderr, n, "evaluating")
			failed := false
			t0 := time.Now()
			res, err := edgeresnet.Evaluate(m, set, edgeresnet.EvalOptions{
				Workers:  threads,
				Limit:    limit,
				Progress: func(int) { bar.Add(1) },
				OnError: func(name string, err error) {
					failed = true
					fmt.Fprintf(stderr, "edge-resnet: %v\n", err)
				},
			})
			bar.Finish()
			if err != nil {
				return err
			}
			dt := time.Since(t0)
			name := m.Meta().Name
			if asJSON {
				out := struct {
					Model string `json:"model"`
					Data  string `json:"data"`
					*edgeresnet.EvalResult
					Seconds float64 `json:"seconds"`
				}{name, args[0], res, dt.Seconds()}
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s on %s: %d images, top-1 %.2f%% (%d), top-5 %.2f%%, %.1f s (%.0f images/s)\n",
					name, args[0], res.Images-res.Failed, 100*res.Top1, res.Correct, 100*res.Top5, dt.Seconds(),
					float64(res.Images)/dt.Seconds())
				if res.Failed > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%d images could not be read\n", res.Failed)
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
	fl.IntVar(&threads, "threads", 0, "parallel single-threaded sessions (default: number of CPUs)")
	fl.IntVar(&limit, "limit", 0, "evaluate only the first N images")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
