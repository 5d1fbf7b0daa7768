package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// Config is one training run for Run.
type Config struct {
	// Arch is the net; its Height, Width and InChannels are taken from
	// Spec and its Classes from the labels.
	Arch resnet.Config
	// Init gives the initial weights (nil: resnet.HeInit(Seed)).
	Init resnet.Weights
	// Data is the training set. Val is a separate validation set; without
	// it ValSplit samples of Data, chosen at random from Seed, are held out.
	Data     dataset.Set
	Val      dataset.Set
	ValSplit int
	// Spec is the preprocessing of training, validation and the written
	// model images.
	Spec preprocess.Spec
	// Labels are the class names (default: Data.Classes(), else "0", "1",
	// ... up to the largest label of Data).
	Labels []string
	// Name is the model images' name (default: the architecture's).
	Name string

	Epochs int // >= 1
	Batch  int // 0: 128
	// Optimizer is "adam" (the default), "adamw" or "sgd".
	Optimizer   string
	LR          float64 // 0: 1e-3
	DecayRate   float64 // with DecaySteps: staircase LR·DecayRate^floor(step/DecaySteps)
	DecaySteps  int
	Momentum    float64 // SGD
	Nesterov    bool    // SGD
	WeightDecay float64
	// LabelSmoothing is the cross-entropy's ε.
	LabelSmoothing float64
	// Augment applies to training batches only.
	Augment Augment
	// ValEvery validates every ValEvery optimizer steps (0: only at the
	// end of each epoch, which always validates).
	ValEvery int
	// Keep is how many of the best checkpoints (by validation accuracy)
	// stay in OutDir (0: 10).
	Keep int
	// Seed decides the initialization (with Init nil), the split, the
	// batch orders and the augmentation.
	Seed uint64
	// Threads is the number of threads of the convolutions and of the
	// data loader's workers (0: 1 for the net, GOMAXPROCS for the loader).
	Threads int
	// OutDir receives metrics.jsonl, the checkpoints and state.gob.
	OutDir string
	// Resume continues the run whose state.gob is in OutDir.
	Resume bool

	// From is a model to fine-tune instead of training Arch from scratch
	// (Arch and Init are then unused, and Spec defaults to the model's
	// preprocessing). Labels come from the data; the model's classifier
	// is kept when their count is the same, else replaced by a new one
	// (initialized from Seed). The model images written keep the model's
	// preprocessing, with the data's labels.
	//
	// With FreezeBackbone the backbone stays as it is (BatchNorm folded,
	// in inference form) and only a new classifier over its pooled
	// features is trained. The features are computed once per sample,
	// without augmentation (Augment must be zero), and kept in memory
	// (samples x features floats). The model images written are From's
	// graph with the new classifier.
	//
	// Without it, From is unfolded into a Net (see Unfold: its folded
	// BatchNorms become trainable layers again, their statistics set from
	// the training images, see Calibrate) and trained, all of it when Freeze is "",
	// else all but the stem ("stem") or the stem and the first K stages
	// ("layerK", torchvision's names: layer3 leaves ResNet-18's last
	// stage and the classifier to train). The frozen part runs in
	// inference form (Backbone) on every batch, augmented or not, and
	// neither keeps activations nor gets gradients; the first trained
	// block computes no input gradient. The model images written are the
	// whole trained net's inference graph.
	From           *firmware.Model
	FreezeBackbone bool
	Freeze         string
	// FrozenStats keeps the unfolded BatchNorms normalizing with their
	// running statistics in training too (those of Calibrate, never
	// updated; gamma and beta still train): the net then computes exactly
	// the model's function at the start of training, not only on
	// batches of the calibration's statistics.
	FrozenStats bool
	// Calibrate is how many training images (the first of the first
	// epoch's seeded order, without augmentation) set the statistics of
	// the unfolded BatchNorms that train (see Calibrator): each gets the
	// mean and variance of its input on them, and gamma and beta that
	// keep the model's function, so that training-mode BatchNorm starts
	// from it (0: 512; negative: none, the BatchNorms keep Unfold's
	// identity statistics).
	Calibrate int
	// Backbone runs the frozen part of From (FrozenGraph's graph):
	// edgeresnet.Train sets it (on the inference engine) when it is nil,
	// and FrozenMemory to its session's memory.
	Backbone     Backbone
	FrozenMemory int64

	// MaxMemory is the run's memory budget in bytes (<= 0: none): Run
	// estimates the run's memory (see Memory) from its net's layers
	// before allocating them and fails with an error wrapping
	// ErrBudget when the estimate is over it. edgeresnet.Train sets the
	// default budget when it is 0.
	MaxMemory int64
}

// learner is what a run trains: the whole Net, or a head over cached
// features.
type learner interface {
	Forward(x []float32, n int, train bool) []float32
	Backward(dlogits []float32) []float32
	Params() []Param
	ZeroGrad()
}

// Callbacks report a run's progress; nil members are skipped.
type Callbacks struct {
	// OnMetrics is called after every validation.
	OnMetrics func(Metrics)
	// OnProgress is called after every optimizer step, with the number of
	// steps done and the run's total.
	OnProgress func(step, total int)
}

// Metrics is one validation's record (a line of metrics.jsonl).
// TrainLoss and TrainAcc are the means over the training batches since
// the previous validation; Seconds is the training time so far, resumed
// runs included.
type Metrics struct {
	Epoch     int     `json:"epoch"` // 1-based
	Step      int     `json:"step"`  // optimizer steps done
	LR        float64 `json:"lr"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValLoss   float64 `json:"val_loss"`
	ValAcc    float64 `json:"val_acc"`
	Seconds   float64 `json:"seconds"`
}

// Result is what Run returns.
type Result struct {
	Best  Metrics // the validation of best.ern
	Last  Metrics // the last validation
	Steps int     // optimizer steps done
	// BestPath is OutDir/best.ern.
	BestPath string
}

// The files of OutDir.
const (
	MetricsFile = "metrics.jsonl"
	StateFile   = "state.gob"
	BestFile    = "best.ern"
	LatestFile  = "latest.ern"
)

// ErrInterrupted is wrapped (with the context's error) by Run's error when
// its context ends: the state is then saved and Config.Resume continues.
var ErrInterrupted = errors.New("training interrupted, state saved")

// trainer is one Run in progress.
type trainer struct {
	cfg      Config
	cb       Callbacks
	net      *Net        // the net trained, or nil for a head
	model    learner     // net, its tail, or the head with FreezeBackbone
	dense    int         // From's classifier node
	stages   int         // the stages frozen after the stem (-1: none, see Config.Freeze)
	frozen   graph.Shape // one sample's output of the frozen part
	trainFs  *features
	valFs    *features
	opt      Optimizer
	sched    Schedule
	loss     grad.SoftmaxCrossEntropy
	trainIdx []int
	valSet   dataset.Set
	valIdx   []int
	batches  *Batches
	loader   *Loader
	st       runState
	start    time.Time
	metrics  *os.File
	history  []Metrics // every record of metrics.jsonl, for the plot
	lr       float64
}

// Run trains cfg.Arch on cfg.Data for cfg.Epochs epochs (see Config),
// writing metrics.jsonl (and its plot, metrics.svg), checkpoints (model images ckpt-<step>.ern of the
// Keep best validations, best.ern and latest.ern) and state.gob to
// cfg.OutDir. When ctx ends it saves the state, so that Resume continues
// bit for bit as if uninterrupted, and returns an error wrapping
// ErrInterrupted and ctx.Err().
func Run(ctx context.Context, cfg Config, cb Callbacks) (*Result, error) {
	t, err := newTrainer(ctx, cfg, cb)
	if err != nil {
		return nil, err
	}
	defer t.metrics.Close()
	total := cfg.Epochs * t.batches.Len()
	for t.st.Epoch < cfg.Epochs {
		err := t.validatePending(ctx)
		if err == nil {
			err = t.epoch(ctx, total)
		}
		if err != nil {
			if ctx.Err() != nil {
				if serr := t.saveState(); serr != nil {
					return nil, serr
				}
				return nil, fmt.Errorf("%w after %d steps: %w", ErrInterrupted, t.st.Steps, ctx.Err())
			}
			return nil, err
		}
		t.st.Epoch++
		t.st.EpochStep = 0
		if err := t.saveState(); err != nil {
			return nil, err
		}
	}
	return &Result{Best: t.st.bestMetrics(), Last: t.st.Last, Steps: t.st.Steps,
		BestPath: filepath.Join(cfg.OutDir, BestFile)}, nil
}

// newTrainer checks cfg, fills in its defaults and sets up the net, the
// optimizer, the data and OutDir (restoring state.gob with Resume).
func newTrainer(ctx context.Context, cfg Config, cb Callbacks) (*trainer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	t := &trainer{cfg: cfg, cb: cb, stages: -1}
	if err := t.setupData(); err != nil {
		return nil, err
	}
	if err := t.setupNet(); err != nil {
		return nil, err
	}
	if err := t.setupFeatures(ctx); err != nil {
		return nil, err
	}
	if !cfg.Resume && cfg.From != nil {
		if err := t.calibrate(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	statePath := filepath.Join(cfg.OutDir, StateFile)
	if cfg.Resume {
		if err := t.loadState(statePath); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(statePath); err == nil {
		return nil, fmt.Errorf("train: %s holds a run (%s): resume it or choose another directory", cfg.OutDir, statePath)
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	var err error
	if !cfg.Resume {
		flags |= os.O_TRUNC
	} else if t.history, err = readMetrics(filepath.Join(cfg.OutDir, MetricsFile)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(cfg.OutDir, MetricsFile), flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t.metrics = f
	t.start = time.Now()
	return t, nil
}

// defaults checks the configuration and fills in its defaults.
func (c *Config) defaults() error {
	if c.Data == nil || c.Data.Len() == 0 {
		return errors.New("train: no training data")
	}
	if c.Epochs < 1 || c.Batch < 0 || c.ValEvery < 0 || c.Keep < 0 || c.ValSplit < 0 || c.Threads < 0 {
		return fmt.Errorf("train: epochs %d, batch %d, val-every %d, keep %d, val-split %d, threads %d: out of range",
			c.Epochs, c.Batch, c.ValEvery, c.Keep, c.ValSplit, c.Threads)
	}
	if c.OutDir == "" {
		return errors.New("train: no output directory")
	}
	if c.Val == nil && (c.ValSplit == 0 || c.ValSplit >= c.Data.Len()) {
		return fmt.Errorf("train: hold out 1..%d of the %d samples for validation, or give a validation set", c.Data.Len()-1, c.Data.Len())
	}
	if err := c.fromDefaults(); err != nil {
		return err
	}
	if c.DecayRate != 0 && c.DecaySteps < 1 || c.DecayRate < 0 {
		return fmt.Errorf("train: decay rate %g every %d steps: give a positive rate and steps", c.DecayRate, c.DecaySteps)
	}
	if err := c.Spec.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	c.Batch = cmpOr(c.Batch, 128)
	c.Keep = cmpOr(c.Keep, 10)
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if len(c.Labels) == 0 {
		c.Labels = defaultLabels(c.Data)
	}
	c.Arch.Height, c.Arch.Width, c.Arch.InChannels = c.Spec.Height, c.Spec.Width, c.Spec.Channels
	c.Arch.Classes = len(c.Labels)
	if c.Init == nil && c.From == nil {
		c.Init = resnet.HeInit(c.Seed)
	}
	return nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// defaultLabels are the set's class names, or the numbers up to its
// largest label.
func defaultLabels(s dataset.Set) []string {
	if c := s.Classes(); len(c) > 0 {
		return c
	}
	hi := 0
	for i := range s.Len() {
		hi = max(hi, s.Label(i))
	}
	labels := make([]string, hi+1)
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	return labels
}

// setupData splits the data and makes the batches and the loader.
func (t *trainer) setupData() error {
	c := &t.cfg
	if c.Val != nil {
		t.trainIdx = make([]int, c.Data.Len())
		for i := range t.trainIdx {
			t.trainIdx[i] = i
		}
		t.valSet, t.valIdx = c.Val, make([]int, c.Val.Len())
		for i := range t.valIdx {
			t.valIdx[i] = i
		}
	} else {
		t.trainIdx, t.valIdx = Split(c.Data.Len(), c.ValSplit, c.Seed)
		t.valSet = c.Data
	}
	if len(t.valIdx) == 0 {
		return errors.New("train: the validation set is empty")
	}
	t.batches = NewBatches(t.trainIdx, c.Batch, c.Seed)
	t.loader = &Loader{Set: c.Data, Spec: c.Spec, Augment: c.Augment, Seed: c.Seed, Workers: c.Threads}
	return nil
}

// setupNet builds the net, the optimizer and the schedule.
func (t *trainer) setupNet() error {
	c := &t.cfg
	var err error
	switch {
	case c.FreezeBackbone:
		if err = c.checkMemory(headMemory(c)); err == nil {
			t.model, t.dense, err = newHead(c)
		}
	case c.From != nil:
		err = t.setupUnfolded()
	default:
		if err = c.checkMemory(c.memory(-1, graph.Shape{})); err == nil {
			err = t.useNet(NewNet(c.Arch, c.Init))
		}
	}
	if err != nil {
		return err
	}
	switch c.Optimizer {
	case "", "adam":
		t.opt = NewAdam(c.WeightDecay)
	case "adamw":
		t.opt = NewAdamW(c.WeightDecay)
	case "sgd":
		t.opt = NewSGD(c.Momentum, c.Nesterov, c.WeightDecay)
	default:
		return fmt.Errorf("train: optimizer %q: want adam, adamw or sgd", c.Optimizer)
	}
	t.sched = Constant(c.LR)
	if c.DecayRate != 0 {
		t.sched = ExpDecay{LR0: c.LR, Rate: c.DecayRate, DecaySteps: c.DecaySteps, Staircase: true}
	}
	t.loss.Smoothing = c.LabelSmoothing
	return nil
}

// epoch runs the rest of epoch t.st.Epoch from step t.st.EpochStep,
// validating every ValEvery steps and at its end.
func (t *trainer) epoch(ctx context.Context, total int) error {
	all := t.batches.Epoch(t.st.Epoch)
	s, err := t.stream(ctx, t.st.Epoch, all[t.st.EpochStep:], true)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Each(func(b *Batch) error {
		t.step(b)
		if t.cb.OnProgress != nil {
			t.cb.OnProgress(t.st.Steps, total)
		}
		end := t.st.EpochStep == len(all)
		if end || t.cfg.ValEvery > 0 && t.st.Steps%t.cfg.ValEvery == 0 {
			t.st.ValPending = true
			if err := t.validatePending(ctx); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

// step is one optimizer step on batch b.
func (t *trainer) step(b *Batch) {
	n := b.Shape[0]
	logits := t.model.Forward(b.X, n, true)
	loss, correct := t.loss.Forward(logits, grad.Shape{N: n, H: 1, W: 1, C: t.cfg.Arch.Classes}, b.Labels)
	t.model.ZeroGrad()
	t.model.Backward(t.loss.Backward())
	t.lr = t.sched.LR(t.st.Steps)
	t.opt.Step(t.model.Params(), t.lr)
	t.st.Steps++
	t.st.EpochStep++
	t.st.LossSum += loss * float64(n)
	t.st.Correct += correct
	t.st.Seen += n
}

// validatePending runs the validation due after the last step, if any
// (one that an interrupt stopped is due again on resume).
func (t *trainer) validatePending(ctx context.Context) error {
	if !t.st.ValPending {
		return nil
	}
	if err := t.validate(ctx); err != nil {
		return err
	}
	t.st.ValPending = false
	return nil
}

// validate evaluates the net on the validation samples, records the
// metrics and writes the checkpoints.
func (t *trainer) validate(ctx context.Context) error {
	vb := &Batches{Indices: t.valIdx, Size: t.cfg.Batch}
	s, err := t.stream(ctx, 0, vb.Epoch(0), false)
	if err != nil {
		return err
	}
	defer s.Close()
	var lossSum float64
	var correct int
	err = s.Each(func(b *Batch) error {
		n := b.Shape[0]
		logits := t.model.Forward(b.X, n, false)
		loss, c := t.loss.Forward(logits, grad.Shape{N: n, H: 1, W: 1, C: t.cfg.Arch.Classes}, b.Labels)
		lossSum += loss * float64(n)
		correct += c
		return nil
	})
	if err != nil {
		return err
	}
	nv := float64(len(t.valIdx))
	m := Metrics{Epoch: t.st.Epoch + 1, Step: t.st.Steps, LR: t.lr,
		ValLoss: lossSum / nv, ValAcc: float64(correct) / nv,
		Seconds: t.st.Elapsed + time.Since(t.start).Seconds()}
	if t.st.Seen > 0 {
		m.TrainLoss, m.TrainAcc = t.st.LossSum/float64(t.st.Seen), float64(t.st.Correct)/float64(t.st.Seen)
	}
	t.st.LossSum, t.st.Correct, t.st.Seen = 0, 0, 0
	if math.IsNaN(m.ValLoss) || math.IsNaN(m.TrainLoss) {
		return fmt.Errorf("train: the loss is NaN at step %d: lower the learning rate", m.Step)
	}
	return t.record(m)
}

// batchStream is a Stream of loaded images or of cached features.
type batchStream interface {
	Each(f func(*Batch) error) error
	Close()
}

// stream streams the batches of the training set (train) or of the
// validation set: images through the loaders, or cached features.
func (t *trainer) stream(ctx context.Context, epoch int, batches [][]int, train bool) (batchStream, error) {
	return t.throughFrozen(t.imageStream(ctx, epoch, batches, train))
}

// throughFrozen is s (unless err) through the frozen layers, if any.
func (t *trainer) throughFrozen(s batchStream, err error) (batchStream, error) {
	if err != nil || t.stages < 0 {
		return s, err
	}
	return &frozenStream{batchStream: s, run: t.cfg.Backbone, out: t.frozen}, nil
}

// imageStream is stream without the frozen layers.
func (t *trainer) imageStream(ctx context.Context, epoch int, batches [][]int, train bool) (batchStream, error) {
	if t.cfg.FreezeBackbone {
		fs := t.valFs
		if train {
			fs = t.trainFs
		}
		return &featureStream{fs: fs, batches: batches}, nil
	}
	if train {
		return t.loader.Start(ctx, epoch, batches)
	}
	l := &Loader{Set: t.valSet, Spec: t.cfg.Spec, Workers: t.cfg.Threads}
	return l.Start(ctx, epoch, batches)
}

// fromDefaults checks a fine-tuning configuration (From) and takes the
// model's preprocessing when Spec is unset.
func (c *Config) fromDefaults() error {
	if c.From == nil {
		if c.FreezeBackbone || c.Freeze != "" || c.FrozenStats {
			return errors.New("train: freezing layers or statistics needs a model to fine-tune (From)")
		}
		return nil
	}
	if c.FreezeBackbone && (c.Freeze != "" || c.FrozenStats) {
		return fmt.Errorf("train: a frozen backbone has no layers (freeze %q) or statistics to freeze: not both", c.Freeze)
	}
	if c.Backbone == nil && (c.FreezeBackbone || c.Freeze != "") {
		return errors.New("train: fine-tuning with frozen layers needs the model's Backbone (edgeresnet.Train provides it)")
	}
	if c.FreezeBackbone && c.Augment != (Augment{}) {
		return errors.New("train: a frozen backbone's features are computed once, without augmentation: drop the augmentation")
	}
	if c.Spec.Height == 0 && c.Spec.Width == 0 && c.Spec.Channels == 0 {
		c.Spec = c.From.Meta.Preprocess
	}
	return nil
}

// setupFeatures computes the frozen backbone's features of the training
// and validation samples once (fine-tuning only).
func (t *trainer) setupFeatures(ctx context.Context) error {
	if !t.cfg.FreezeBackbone {
		return nil
	}
	all := make([]int, t.cfg.Data.Len())
	for i := range all {
		all[i] = i
	}
	var err error
	if t.trainFs, err = t.computeFeatures(ctx, t.cfg.Data, all); err != nil {
		return err
	}
	t.valFs = t.trainFs
	if t.cfg.Val != nil {
		t.valFs, err = t.computeFeatures(ctx, t.cfg.Val, t.valIdx)
	}
	return err
}
