package main

import (
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/preprocess"
)

type classifyFlags struct {
	model     string
	k         int
	json      bool
	logits    bool
	threads   int
	vote      bool
	precision string
	tta       string
	// classify --stream
	stream   bool
	every    int
	fps      float64
	noDrop   bool
	maxFrame memoryFlag
}

func newClassifyCmd() *cobra.Command {
	var f classifyFlags
	cmd := &cobra.Command{
		Use:   "classify [-m MODEL] [-k 5] [--json] [--logits] [--threads N] [--vote] [--tta flip|crop|flip,crop] FILE|DIR... | --stream [--every N] [--fps F] [--no-drop] [-|FILE]",
		Short: "Classify images (JPEG, PNG, GIF, BMP, TIFF, WebP) or .npy tensors",
		Long: `Classify images with a model image (.ern) or an ONNX file (-m), or with the
built-in Fashion-MNIST ResNet-20 when -m is absent.

Images are preprocessed as the model's metadata says (by default torchvision's
eval transform: shorter side to 256, center crop 224, ImageNet mean/std).
.npy files must hold float32 tensors in the model's own input layout that are
already preprocessed: [N,C,H,W] or [C,H,W] (NCHW, PyTorch and most ONNX
models), or [N,H,W,C] or [H,W,C] for models whose ONNX graph takes NHWC
(Keras-style); they are fed as they are, a batch of N in one pass, and give N
results in order. Directories are walked recursively for files with those
extensions.

A file that cannot be read is reported on stderr and skipped; the exit status
is then 1 after all other files are classified.

With --json, one JSON object per input per line:
  {"file": "cat.jpg", "top": [{"class": 281, "label": "tabby", "prob": 0.83}, ...], "ms": 12.3}
where ms is the model's run time for that input (for the whole batch of a
batched .npy, whose lines also carry "index", the sample's place in it);
a model with several outputs adds "outputs", each output by name (top-k
is computed from the first); --logits adds "logits" (the
raw model outputs before softmax). --vote treats all inputs as views of one
object and adds the majority class of their top-1 predictions (ties go to the
class with the larger summed probability).

--tta classifies each image by test-time augmentation: several views of it
run as one batch, and the top-k comes from the mean of their softmax
probabilities. "flip" is the image and its left-right mirror (2 views);
"crop" is the center crop and four corner crops (5 views); "flip,crop" is
those five and their mirrors (10 views, the classic 10-crop). The corner
crops are torchvision's FiveCrop of the resized image (with the ImageNet
preprocessing, flip,crop is exactly torchvision's TenCrop); where the
resized image is no larger than the model input (as for the built-in
28x28 model), they are the input shifted by about 1/14 of its size (2
pixels at 28x28) into zero padding, the pad-and-crop of CIFAR-style
training. "ms" is then the run time of the whole batch of views; --vote
votes over the averaged results. --tta takes images only (a .npy tensor is
already preprocessed) and cannot be combined with --logits (the result is
a mean of probabilities, not one run's output); JSON lines carry "views",
the number of views, and no "outputs".

` + streamHelp,
		Example: `  edge-resnet classify testdata/samples/0000_ankle_boot.png
  edge-resnet classify -m resnet50.ern -k 3 --json photos/
  edge-resnet classify -m resnet18.onnx --logits --json input.npy
  edge-resnet classify --tta flip,crop --json testdata/samples/
` + streamExamples,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.stream || len(args) == 1 && args[0] == "-" {
				return runStream(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, args)
			}
			if err := refuseStreamFlags(cmd); err != nil {
				return err
			}
			if len(args) == 0 {
				return fmt.Errorf("classify needs FILE|DIR..., or --stream to read frames from standard input")
			}
			return runClassify(cmd.OutOrStdout(), cmd.ErrOrStderr(), f, args)
		},
	}
	addModelFlags(cmd, &f)
	fl := cmd.Flags()
	fl.BoolVar(&f.vote, "vote", false, "report the majority class over all inputs (views of one object)")
	addStreamFlags(cmd, &f)
	return cmd
}

// addModelFlags adds the flags of classify that watch takes too.
func addModelFlags(cmd *cobra.Command, f *classifyFlags) {
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "model image (.ern) or ONNX file (default: built-in Fashion-MNIST ResNet-20)")
	fl.IntVarP(&f.k, "top", "k", 5, "number of classes to show per input")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per input per line")
	fl.BoolVar(&f.logits, "logits", false, "also print the raw model outputs")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (default: number of CPUs)")
	fl.StringVar(&f.precision, "precision", "auto", precisionUsage)
	fl.StringVar(&f.tta, "tta", "none", ttaUsage)
}

var inputExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true,
	".tif": true, ".tiff": true, ".webp": true, ".npy": true,
}

// collectInputs expands directories (recursively, in lexical order,
// following symbolic links to files and folders, each folder once) into
// files with known extensions; named files are taken as they are.
func collectInputs(args []string, stderr io.Writer) (files []string, failed bool) {
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			fmt.Fprintf(stderr, "edge-resnet: %v\n", err)
			failed = true
			continue
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		err = dataset.WalkFiles(a, func(path string) {
			if inputExts[strings.ToLower(filepath.Ext(path))] {
				files = append(files, path)
			}
		})
		if err != nil {
			fmt.Fprintf(stderr, "edge-resnet: %s: %v\n", a, err)
			failed = true
		}
	}
	return files, failed
}

type jsonResult struct {
	File   string                  `json:"file"`
	Index  *int                    `json:"index,omitempty"` // sample of a batched .npy
	Top    []edgeresnet.Prediction `json:"top"`
	Ms     float64                 `json:"ms"`
	Views  int                     `json:"views,omitempty"` // test-time augmentation views averaged
	Logits []float32               `json:"logits,omitempty"`
	// Outputs holds every output by name, for models with more than one.
	Outputs map[string][]float32 `json:"outputs,omitempty"`
}

// runClassify classifies every input file (directories expanded) and
// prints each result, then the vote with --vote. Files that fail are
// reported on stderr as they come and make the exit status 1 at the end.
func runClassify(stdout, stderr io.Writer, f classifyFlags, args []string) error {
	for _, a := range args {
		if a == "-" {
			return fmt.Errorf("- (standard input) is a stream of frames: give it alone, as classify - or classify --stream -")
		}
	}
	m, ss, err := openClassifier(f)
	if err != nil {
		return err
	}
	defer m.Close()
	defer ss.close()
	limitHeap(preprocess.MaxDecodeBytes)

	files, failed := collectInputs(args, stderr)
	if len(files) == 0 && !failed {
		return fmt.Errorf("no images or .npy files found in %s", strings.Join(args, " "))
	}
	enc := json.NewEncoder(stdout)
	v, ok := classifyFiles(stdout, stderr, enc, ss, f, files)
	if !ok {
		failed = true
	}
	if f.vote && v.voters > 0 {
		v.print(stdout, enc, f.json, m.Labels())
	}
	if failed {
		return errReported
	}
	return nil
}

// openClassifier checks the flags classify, classify --stream and watch
// share, loads the model and starts its session.
func openClassifier(f classifyFlags) (*edgeresnet.Model, *batchSessions, error) {
	if err := checkIntFlags(intFlag{"-k", f.k, 1, 0, "classes per input"}); err != nil {
		return nil, nil, err
	}
	views, err := parseTTA(f.tta)
	if err != nil {
		return nil, nil, err
	}
	if len(views) > 1 && f.logits {
		return nil, nil, fmt.Errorf("--logits cannot be combined with --tta %s: the result is a mean of the views' probabilities, not the output of one run", f.tta)
	}
	m, err := loadModel(f.model)
	if err != nil {
		return nil, nil, err
	}
	ss := &batchSessions{m: m, f: f, views: views}
	if _, err := ss.forBatch(len(views)); err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, ss, nil
}

// classifyFiles classifies the files in order, prints each result (as a
// JSON line with --json, else as text), and returns the votes of their
// top-1 classes and false when a file failed. A batched .npy larger than
// the session's batch gets a session of its size.
func classifyFiles(stdout, stderr io.Writer, enc *json.Encoder, ss *batchSessions, f classifyFlags, files []string) (v *votes, ok bool) {
	v, ok = newVotes(), true
	var bar interface {
		Add(int) error
		Finish() error
	}
	if len(files) > 1 && !isTerminal(stdout) {
		bar = newBar(stderr, len(files), "classifying")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, file := range files {
		results, batched, dt, err := classifyOne(ss, file, f.k)
		if bar != nil {
			bar.Add(1)
		}
		if err != nil {
			tw.Flush()
			fmt.Fprintf(stderr, "edge-resnet: %v\n", err)
			ok = false
			continue
		}
		for i, r := range results {
			v.add(r.top[0])
			name, index := file, (*int)(nil)
			if batched {
				name, index = fmt.Sprintf("%s[%d]", file, i), &i
			}
			if f.json {
				jr := jsonResult{File: file, Index: index, Top: r.top, Ms: ms(dt), Outputs: r.named, Views: r.views}
				if f.logits {
					jr.Logits = r.out
				}
				if err := enc.Encode(jr); err != nil {
					fmt.Fprintf(stderr, "edge-resnet: %s: %v\n", file, err)
					ok = false
				}
				continue
			}
			printText(tw, name, r.top, r.out, dt, f)
		}
	}
	if bar != nil {
		bar.Finish()
	}
	tw.Flush()
	return v, ok
}

// votes counts the top-1 classes of the inputs for --vote.
type votes struct {
	count   map[int]int     // inputs per top-1 class
	probSum map[int]float64 // their summed probabilities, to break ties
	voters  int
}

func newVotes() *votes {
	return &votes{count: map[int]int{}, probSum: map[int]float64{}}
}

func (v *votes) add(top1 edgeresnet.Prediction) {
	v.voters++
	v.count[top1.Class]++
	v.probSum[top1.Class] += float64(top1.Prob)
}

// winner is the class with the most votes; ties go to the larger summed
// probability, then to the lower class.
func (v *votes) winner() int {
	best := -1
	for c, n := range v.count {
		if best < 0 || n > v.count[best] || (n == v.count[best] && (v.probSum[c] > v.probSum[best] || v.probSum[c] == v.probSum[best] && c < best)) {
			best = c
		}
	}
	return best
}

// print prints the winner, as a JSON line with --json.
func (v *votes) print(stdout io.Writer, enc *json.Encoder, asJSON bool, labels []string) {
	best := v.winner()
	label := ""
	if best < len(labels) {
		label = labels[best]
	}
	if asJSON {
		enc.Encode(map[string]any{"vote": map[string]any{"class": best, "label": label, "votes": v.count[best], "inputs": v.voters}})
	} else {
		fmt.Fprintf(stdout, "vote: %s [%d], %d of %d inputs\n", label, best, v.count[best], v.voters)
	}
}

// sampleResult is one image's top k and a copy of its raw outputs (and
// of every output by name, for a model with several).
type sampleResult struct {
	top   []edgeresnet.Prediction
	out   []float32
	named map[string][]float32
	views int // test-time augmentation views averaged into top (--tta)
}

// batchSessions hands out a session with room for a batch, replacing the
// current one by a larger one when a batched .npy needs it.
type batchSessions struct {
	m     *edgeresnet.Model
	f     classifyFlags
	s     *edgeresnet.Session
	views []preprocess.View // --tta; images need a batch of len(views)
}

func (b *batchSessions) forBatch(n int) (*edgeresnet.Session, error) {
	if b.s != nil && b.s.Batch() >= n {
		return b.s, nil
	}
	s, err := newSession(b.m, b.f.threads, b.f.precision, edgeresnet.WithBatch(max(n, b.m.Batch())))
	if err != nil {
		return nil, err
	}
	if b.s != nil {
		b.s.Close()
	}
	b.s = s
	return s, nil
}

func (b *batchSessions) close() {
	if b.s != nil {
		b.s.Close()
	}
}

// classifyOne runs one file: an image, or an .npy of one or more samples
// (batched reports whether it had a batch dimension). dt is the model's
// run time for the whole file.
func classifyOne(ss *batchSessions, file string, k int) (results []sampleResult, batched bool, dt time.Duration, err error) {
	if !strings.EqualFold(filepath.Ext(file), ".npy") {
		img, err := preprocess.DecodeFile(file)
		if err != nil {
			return nil, false, 0, err
		}
		results, dt, err := classifyImage(ss, file, img, k)
		return results, false, dt, err
	}
	if len(ss.views) > 1 {
		return nil, false, 0, fmt.Errorf("%s: --tta takes images only: a .npy tensor is already preprocessed (cropped and normalized)", file)
	}
	shape, data, err := preprocess.ReadNPYFile(file)
	if err != nil {
		return nil, false, 0, err
	}
	n := 1
	if batched = len(shape) == 4; batched {
		n = max(shape[0], 1)
	}
	s, err := ss.forBatch(n)
	if err != nil {
		return nil, false, 0, fmt.Errorf("%s: %w", file, err)
	}
	t0 := time.Now()
	out, err := s.RunTensor(shape, data)
	dt = time.Since(t0)
	if err != nil {
		return nil, false, 0, fmt.Errorf("%s: %w", file, err)
	}
	return sampleResults(s, out, n, k), batched && n > 1, dt, nil
}

// classifyImage classifies one decoded image (by its views' mean with
// --tta); name is used in errors and dt is the model's run time.
func classifyImage(ss *batchSessions, name string, img image.Image, k int) ([]sampleResult, time.Duration, error) {
	s, err := ss.forBatch(len(ss.views))
	if err != nil {
		return nil, 0, err
	}
	if len(ss.views) > 1 {
		results, _, dt, err := classifyViews(s, name, img, ss.views, k)
		return results, dt, err
	}
	if err := s.Preprocess(img); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	t0 := time.Now()
	out, err := s.RunBatch(1)
	dt := time.Since(t0)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	return sampleResults(s, out, 1, k), dt, nil
}

// sampleResults splits the outputs of a run of n samples into their top
// k and copies of their outputs.
func sampleResults(s *edgeresnet.Session, out []float32, n, k int) []sampleResult {
	var results []sampleResult
	per := len(out) / n
	all := s.Outputs()
	for i := range n {
		o := append([]float32(nil), out[i*per:(i+1)*per]...)
		r := sampleResult{top: append([]edgeresnet.Prediction(nil), s.TopK(o, k)...), out: o}
		if len(all) > 1 {
			r.named = map[string][]float32{}
			for _, a := range all {
				m := len(a.Values) / n
				r.named[a.Name] = append([]float32(nil), a.Values[i*m:(i+1)*m]...)
			}
		}
		results = append(results, r)
	}
	return results
}

// classifyViews classifies img by the mean probabilities of its views
// (--tta), run as one batch; dt is that run's time.
func classifyViews(s *edgeresnet.Session, file string, img image.Image, views []preprocess.View, k int) ([]sampleResult, bool, time.Duration, error) {
	if err := s.PreprocessViews(img, views); err != nil {
		return nil, false, 0, fmt.Errorf("%s: %w", file, err)
	}
	t0 := time.Now()
	mean, err := s.RunViews(len(views))
	dt := time.Since(t0)
	if err != nil {
		return nil, false, 0, fmt.Errorf("%s: %w", file, err)
	}
	top := append([]edgeresnet.Prediction(nil), s.TopKProbs(mean, k)...)
	return []sampleResult{{top: top, views: len(views)}}, false, dt, nil
}

// ttaUsage is the help of --tta (classify and eval).
const ttaUsage = "test-time augmentation: none, flip (2 views), crop (5: center and corners) or flip,crop (10); probabilities are averaged"

// parseTTA parses --tta into its views.
func parseTTA(name string) ([]preprocess.View, error) {
	views, err := preprocess.ParseViews(name)
	if err != nil {
		return nil, fmt.Errorf("--tta: %w", err)
	}
	return views, nil
}

func printText(tw *tabwriter.Writer, file string, top []edgeresnet.Prediction, out []float32, dt time.Duration, f classifyFlags) {
	if f.k == 1 {
		fmt.Fprintf(tw, "%s\t%s\t%6.2f%%\t%.1f ms\n", file, predName(top[0]), 100*top[0].Prob, ms(dt))
	} else {
		fmt.Fprintf(tw, "%s\t\t(%.1f ms)\n", file, ms(dt))
		for i, p := range top {
			fmt.Fprintf(tw, "  %d. %s\t%6.2f%%\t\n", i+1, predName(p), 100*p.Prob)
		}
	}
	if f.logits {
		fmt.Fprintf(tw, "  logits: %v\n", out)
	}
}

// predName is a class as text: its label and number, or its number.
func predName(p edgeresnet.Prediction) string {
	if p.Label != "" {
		return fmt.Sprintf("%s [%d]", p.Label, p.Class)
	}
	return fmt.Sprintf("class %d", p.Class)
}
