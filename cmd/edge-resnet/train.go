package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/train"
)

type trainFlags struct {
	arch, data, val, out, optimizer, labels, size, name, scaleJitter string
	from, freeze                                                     string
	valSplit, epochs, batch, decaySteps, valEvery                    int
	keep, threads, pad, calibrate                                    int
	seed                                                             uint64
	lr, decayRate, momentum, weightDecay, smooth                     float64
	flip, nesterov, resume, json, frozenStats                        bool
}

// trainLong is train -h's description.
const trainLong = `Train a ResNet in pure Go on a labeled image set and write model images that
classify, eval and quantize take as they are.

DATA is anything eval reads: a folder or .zip with one subfolder per class, an
IDX images file with its labels file beside it, or a CIFAR-10 .bin file.
Validation data is a separate set (--val) or --val-split N samples of DATA held
out at random (seeded). The input size and channels come from the first image
(for ImageNet architectures 224x224 unless --size says otherwise); 28x28
grayscale data takes the built-in Fashion-MNIST model's preprocessing
(mean 0.2860, std 0.3530), other data a plain resize to the input size.

Every epoch runs over the training samples in a new seeded order, in batches of
--batch, with Adam (default; or AdamW, or SGD with --momentum and --nesterov)
at --lr, decayed as TensorFlow's staircase exponential decay when --decay-rate
and --decay-steps are given: lr * rate^floor(step/decay-steps). Training
images are augmented, in this order, by --scale-jitter (a random resized crop
of the preprocessed image, for photos), --pad (a random crop of the padded
image) and --flip (a random horizontal flip). Validation
runs every --val-every steps and at each epoch's end; each prints one line (or
a JSON object with --json) and is appended to DIR/metrics.jsonl, whose loss
and accuracy curves DIR/metrics.svg redraws.

DIR receives the model images of the --keep best validations
(ckpt-STEP.ern), best.ern (the best so far), latest.ern, and state.gob, the
resumable state, written at each epoch's end and on Ctrl-C: --resume continues
the run in DIR exactly where it stopped (same flags), with the same final
weights as an uninterrupted run. The same --seed and --threads give
bit-identical models.

--from MODEL fine-tunes any model edge-resnet loads (.ern or ONNX; --arch and
--size are then ignored or refused) at its own preprocessing. Labels come from
the data: the model's classifier is kept when the data has as many classes,
else a new one is trained. The model images written carry the data's class
names and MODEL's preprocessing.

--from MODEL alone fine-tunes every layer: MODEL must be a ResNet that
--arch can build (CIFAR or ImageNet layout, basic or bottleneck blocks,
shortcut A or B; an error names the first node that is not). Its folded
BatchNorms are turned back into trainable layers, set from the data: the
model runs on the first --calibrate training images (default 512, without
augmentation), and each conv W with bias b becomes W and a BatchNorm whose
statistics are the mean m and variance v of Wx on them, scale sqrt(v+eps)
and shift b+m: the same function in inference, and in training on batches
like those, so fine-tuning starts from the model (--calibrate 0: scale 1,
shift b and unit statistics, which training-mode BatchNorm rescales).

--freeze stem, or --freeze layerK (K = 1.. the stages; torchvision's names),
keeps the stem, or the stem and stages 1..K, as they are: they run in
inference form (BatchNorm folded, by the inference engine) on every batch
and keep neither activations nor gradients, and only the rest is trained.
--freeze layer3 on ResNet-18 trains its last stage and classifier.

In training the unfolded BatchNorms normalize with each batch's statistics;
--freeze-bn-stats keeps the calibrated ones instead (gamma and beta still
train). Measured on cat vs dog from the CIFAR-10 ResNet-20 (100 training
images, 600 validation, 20 epochs, batch 25, --pad 4 --flip, Adam): full
fine-tuning 71.0% at --lr 1e-4 and 72.5% at 1e-3 (62.8% and 66.0% without
the calibration), --freeze layer2 72.0% and 73.7%, --freeze-bn-stats 73.5% at
1e-4 but 52.5% at 1e-3; --freeze backbone 83.5% (at 1e-2): on so few images
the head alone is best.

Before allocating, the run's memory (parameters, gradients, optimizer state,
activations at --batch, workspace, the frozen part's session and the loaders'
batches) is estimated and checked against --max-memory; over it, the error
names the estimate and what to reduce (--batch, --freeze).

--freeze backbone trains only the classifier: the pooled features (the input
of the final Dense/Gemm) are computed once per image and cached in memory,
without augmentation (--pad, --flip and --scale-jitter are refused), and the model images
written are MODEL's graph with the new classifier.
`

func newTrainCmd() *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train [--arch ARCH | --from MODEL [--freeze backbone|stem|layerK]] --data DATA [--val DATA | --val-split N] -o DIR [flags]",
		Short: "Train a ResNet from scratch, or fine-tune a model, on a labeled image set",
		Long:  trainLong,
		Example: `  edge-resnet train --arch cifar-resnet20 --data train-images-idx3-ubyte.gz --val-split 5000 \
      --epochs 3 --batch 128 --lr 1e-3 --decay-rate 0.5 --decay-steps 860 --seed 1 --threads 2 -o run1
  edge-resnet classify -m run1/best.ern shoe.png
  edge-resnet train --arch cifar-resnet20 --data cifar10/train --val cifar10/test --pad 4 --flip \
      --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 5e-4 -o run2
  edge-resnet train ... -o run1 --resume     # after Ctrl-C
  edge-resnet train --from cifar10_resnet20.ern --freeze backbone --data pets/ --val-split 100 \
      --epochs 20 --batch 32 --lr 1e-2 -o pets-head
  edge-resnet classify -m pets-head/best.ern cat.jpg
  edge-resnet train --from resnet18.ern --freeze layer3 --data flowers/ --val-split 200 --flip \
      --epochs 5 --batch 32 --lr 1e-4 -o flowers-layer4
  edge-resnet train --from cifar10_resnet20.ern --data pets/ --val-split 100 --pad 4 --flip \
      --epochs 10 --batch 32 --lr 1e-4 -o pets-full`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTrain(cmd, f) },
	}
	trainFlagSet(cmd, &f)
	return cmd
}

func trainFlagSet(cmd *cobra.Command, f *trainFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.arch, "arch", "cifar-resnet20", "architecture: cifar-resnet20/32/44/56/110 (any 6n+2), resnet18/34/50/101/152, resnextD_GxWd (resnext50_32x4d, resnext101_32x8d, resnext101_64x4d), wide_resnetD_K (wide_resnet50_2, wide_resnet101_2)")
	fl.StringVar(&f.from, "from", "", "fine-tune this model (.ern or ONNX) instead of training --arch from scratch")
	fl.StringVar(&f.freeze, "freeze", "", `with --from: "backbone" trains only the classifier on cached features; "stem" or "layerK" freezes the stem and stages 1..K (default: train every layer)`)
	fl.BoolVar(&f.frozenStats, "freeze-bn-stats", false, "with --from (not --freeze backbone): BatchNorms keep their statistics in training")
	fl.IntVar(&f.calibrate, "calibrate", 512, "with --from (not --freeze backbone): training images whose statistics set the unfolded BatchNorms (0: none, identity statistics)")
	fl.StringVar(&f.data, "data", "", "training set: class folder or .zip, IDX images file, CIFAR-10 .bin (required)")
	fl.StringVar(&f.val, "val", "", "separate validation set (instead of --val-split)")
	fl.IntVar(&f.valSplit, "val-split", 0, "hold out N samples of --data for validation, chosen with --seed")
	fl.StringVarP(&f.out, "output", "o", "", "output directory for checkpoints, metrics.jsonl, metrics.svg and state.gob (required)")
	fl.StringVar(&f.name, "name", "", "the model images' name (default: the -o directory's name)")
	fl.StringVar(&f.labels, "labels", "", "class names file (default: the class folders' names, else 0, 1, ...)")
	fl.StringVar(&f.size, "size", "", "input size HxW (default: the first image's; 224x224 for ImageNet architectures)")
	fl.IntVar(&f.epochs, "epochs", 1, "epochs")
	fl.IntVar(&f.batch, "batch", 128, "mini-batch size")
	fl.StringVar(&f.optimizer, "optimizer", "adam", "adam, adamw or sgd")
	fl.Float64Var(&f.lr, "lr", 1e-3, "learning rate")
	fl.Float64Var(&f.decayRate, "decay-rate", 0, "staircase exponential decay: multiply the learning rate by this every --decay-steps")
	fl.IntVar(&f.decaySteps, "decay-steps", 0, "steps between learning-rate decays")
	fl.Float64Var(&f.momentum, "momentum", 0.9, "SGD momentum")
	fl.BoolVar(&f.nesterov, "nesterov", false, "SGD with Nesterov momentum")
	fl.Float64Var(&f.weightDecay, "weight-decay", 0, "weight decay of conv and dense weights (L2; decoupled for adamw)")
	fl.Float64Var(&f.smooth, "label-smoothing", 0, "label smoothing of the cross-entropy, 0..1")
	fl.IntVar(&f.pad, "pad", 0, "augmentation: random crop after padding by N pixels")
	fl.BoolVar(&f.flip, "flip", false, "augmentation: random horizontal flip")
	fl.StringVar(&f.scaleJitter, "scale-jitter", "", `augmentation for photos: a random crop of MIN..MAX of the image's area (aspect 3/4..4/3), resized back, as torchvision's RandomResizedCrop; "MIN" means MIN..1, e.g. 0.5 or 0.35,0.9`)
	fl.IntVar(&f.valEvery, "val-every", 0, "validate every N steps as well as at each epoch's end (0: epoch ends only)")
	fl.IntVar(&f.keep, "keep", 10, "checkpoints kept: the best N by validation accuracy")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the initialization, split, batch order and augmentation")
	fl.IntVar(&f.threads, "threads", 0, "threads of the convolutions and the data loader (0: one per CPU)")
	fl.BoolVar(&f.resume, "resume", false, "continue the run saved in -o DIR")
	fl.BoolVar(&f.json, "json", false, "print each validation as a JSON object")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("output")
}

// runTrain opens the data, runs train.Run with a progress bar and prints
// each validation. On Ctrl-C it says how to resume.
func runTrain(cmd *cobra.Command, f trainFlags) error {
	if err := checkIntFlags(threadsFlag(f.threads), intFlag{"--epochs", f.epochs, 1, 0, "at least one"},
		intFlag{"--batch", f.batch, 1, 0, "samples per step"}, intFlag{"--keep", f.keep, 1, 0, "checkpoints"},
		intFlag{"--val-every", f.valEvery, 0, 0, "0: epoch ends only"}, intFlag{"--pad", f.pad, 0, 0, "0: no crop"},
		intFlag{"--calibrate", f.calibrate, 0, 0, "0: none"}); err != nil {
		return err
	}
	if f.freeze != "" && f.from == "" {
		return errors.New("--freeze needs --from MODEL")
	}
	if (f.val == "") == (f.valSplit == 0) {
		return errors.New("give validation data: --val DATA or --val-split N (not both)")
	}
	if f.threads == 0 {
		f.threads = runtime.NumCPU()
	}
	cfg, closeSets, err := trainConfig(f)
	if err != nil {
		return err
	}
	defer closeSets()
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	bar := newUnitBar(stderr, 1, "training", "step")
	cb := train.Callbacks{
		OnProgress: func(step, total int) {
			bar.ChangeMax(total)
			bar.Set(step)
		},
		OnMetrics: func(m train.Metrics) {
			bar.Clear()
			printMetrics(stdout, m, f.json)
		},
	}
	res, err := edgeresnet.Train(cmd.Context(), cfg, cb)
	bar.Finish()
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(stderr, "edge-resnet: %v\nresume with the same flags and --resume: edge-resnet train ... -o %s --resume\n", err, f.out)
		return err
	}
	if err != nil {
		return err
	}
	if !f.json {
		fmt.Fprintf(stdout, "best: step %d, val acc %.2f%%, %s; %d steps, %.1f s\n",
			res.Best.Step, 100*res.Best.ValAcc, res.BestPath, res.Steps, res.Last.Seconds)
	}
	return nil
}

func printMetrics(w io.Writer, m train.Metrics, asJSON bool) {
	if asJSON {
		json.NewEncoder(w).Encode(m)
		return
	}
	fmt.Fprintf(w, "epoch %d step %d: lr %.3g, train loss %.4f acc %.2f%%, val loss %.4f acc %.2f%%, %.1f s\n",
		m.Epoch, m.Step, m.LR, m.TrainLoss, 100*m.TrainAcc, m.ValLoss, 100*m.ValAcc, m.Seconds)
}

// parseAugment turns --pad, --flip and --scale-jitter into a train.Augment.
func parseAugment(f trainFlags) (train.Augment, error) {
	a := train.Augment{Pad: f.pad, Flip: f.flip}
	if f.scaleJitter == "" {
		return a, nil
	}
	lo, hi, two := strings.Cut(f.scaleJitter, ",")
	var err error
	if a.MinScale, err = strconv.ParseFloat(strings.TrimSpace(lo), 64); err != nil {
		return a, fmt.Errorf("--scale-jitter %q: want MIN or MIN,MAX, area fractions in (0, 1]", f.scaleJitter)
	}
	a.MaxScale = 1
	if two {
		if a.MaxScale, err = strconv.ParseFloat(strings.TrimSpace(hi), 64); err != nil {
			return a, fmt.Errorf("--scale-jitter %q: want MIN or MIN,MAX, area fractions in (0, 1]", f.scaleJitter)
		}
	}
	if !(a.MinScale > 0 && a.MinScale <= a.MaxScale && a.MaxScale <= 1) {
		return a, fmt.Errorf("--scale-jitter %q: want 0 < MIN <= MAX <= 1", f.scaleJitter)
	}
	return a, nil
}

// trainConfig opens the data sets and turns the flags into a train.Config.
func trainConfig(f trainFlags) (train.Config, func(), error) {
	arch, err := edgeresnet.ParseArch(f.arch)
	if err != nil {
		return train.Config{}, nil, err
	}
	var labels []string
	if f.labels != "" {
		if labels, err = edgeresnet.ReadLabelsFile(f.labels); err != nil {
			return train.Config{}, nil, err
		}
	}
	data, err := dataset.Open(f.data, labels)
	if err != nil {
		return train.Config{}, nil, err
	}
	sets := []io.Closer{data}
	closeSets := func() {
		for _, s := range sets {
			s.Close()
		}
	}
	aug, err := parseAugment(f)
	if err != nil {
		closeSets()
		return train.Config{}, nil, err
	}
	cfg := train.Config{
		Arch: arch, Data: data, ValSplit: f.valSplit, Labels: labels,
		Epochs: f.epochs, Batch: f.batch, Optimizer: strings.ToLower(f.optimizer), LR: f.lr,
		DecayRate: f.decayRate, DecaySteps: f.decaySteps, Momentum: f.momentum, Nesterov: f.nesterov,
		WeightDecay: f.weightDecay, LabelSmoothing: f.smooth, Augment: aug,
		ValEvery: f.valEvery, Keep: f.keep, Seed: f.seed, Threads: f.threads, OutDir: f.out, Resume: f.resume,
		Name: cmp.Or(f.name, filepath.Base(filepath.Clean(f.out))),
	}
	if maxMemory.set {
		cfg.MaxMemory = cmp.Or(maxMemory.n, -1) // train's 0 is the default budget
	}
	if f.val != "" {
		if cfg.Val, err = dataset.Open(f.val, data.Classes()); err != nil {
			closeSets()
			return train.Config{}, nil, err
		}
		sets = append(sets, cfg.Val)
	}
	if f.from != "" {
		m, err := loadFrom(f, &cfg)
		if err != nil {
			closeSets()
			return train.Config{}, nil, err
		}
		sets = append(sets, m)
	} else if cfg.Spec, err = inputSpec(data, arch.CIFAR, f.size); err != nil {
		closeSets()
		return train.Config{}, nil, err
	}
	return cfg, closeSets, nil
}

// loadFrom loads --from into cfg for fine-tuning with --freeze; the
// model stays open (its graph may be mapped) until it is closed.
func loadFrom(f trainFlags, cfg *train.Config) (io.Closer, error) {
	if f.size != "" {
		return nil, errors.New("--size does not apply with --from: the model's own input size and preprocessing are used")
	}
	m, err := edgeresnet.Load(f.from, loadOptions()...)
	if err != nil {
		return nil, err
	}
	cfg.From, cfg.Spec, cfg.FrozenStats = m.Image(), m.Meta().Preprocess, f.frozenStats
	cfg.Calibrate = f.calibrate
	if f.calibrate == 0 {
		cfg.Calibrate = -1 // train's 0 is the default
	}
	if f.freeze == "backbone" {
		cfg.FreezeBackbone = true
	} else {
		cfg.Freeze = f.freeze // train checks it against the model's stages
	}
	return m, nil
}

// inputSpec is the preprocessing for the data: the input size is --size,
// else the first image's (CIFAR layout) or 224x224, and the channels are
// the first image's (1 for gray, else 3). 28x28 gray takes the built-in
// Fashion-MNIST model's spec.
func inputSpec(data dataset.Set, cifar bool, size string) (preprocess.Spec, error) {
	img, err := data.Image(0)
	if err != nil {
		return preprocess.Spec{}, err
	}
	b := img.Bounds()
	in := graph.Shape{H: 224, W: 224, C: 3}
	if cifar {
		in.H, in.W = b.Dy(), b.Dx()
	}
	if size != "" {
		if in.H, in.W, err = parseSize(size); err != nil {
			return preprocess.Spec{}, err
		}
	}
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		in.C = 1
	}
	if _, ok := img.(*image.Paletted); ok {
		in.C = 3
	}
	if in.H == 28 && in.W == 28 && in.C == 1 {
		m, err := edgeresnet.Default()
		if err != nil {
			return preprocess.Spec{}, err
		}
		defer m.Close()
		return m.Meta().Preprocess, nil
	}
	return edgeresnet.DefaultPreprocess(in), nil
}
