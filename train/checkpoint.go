package train

import (
	"bytes"
	"cmp"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// stateVersion is the layout of state.gob.
const stateVersion = 1

// runState is everything a run needs to continue: with the net's tensors
// and the optimizer's state it makes state.gob. The random numbers of the
// data pipeline are functions of (Seed, epoch, sample), so the position
// (Epoch, EpochStep) is all of their state.
type runState struct {
	Version   int
	Arch      string // the net's name, checked on resume
	Seed      uint64
	Batch     int
	Epoch     int // 0-based, the epoch in progress
	EpochStep int // its batches done
	Steps     int // optimizer steps done
	// ValPending: the validation due after the last step has not run
	// (an interrupt stopped it); a resumed run runs it first.
	ValPending bool
	Elapsed    float64
	// The training loss, correct answers and samples since the last
	// validation.
	LossSum       float64
	Correct, Seen int
	Best          []Metrics // the kept checkpoints, best first
	Last          Metrics
	Tensors       map[string][]float32 // PyTorch layouts, running statistics included
	Optimizer     State
}

func (s *runState) bestMetrics() Metrics {
	if len(s.Best) == 0 {
		return Metrics{}
	}
	return s.Best[0]
}

// saveState writes OutDir/state.gob atomically.
func (t *trainer) saveState() error {
	st := t.st
	st.Version, st.Arch, st.Seed, st.Batch = stateVersion, t.archName(), t.cfg.Seed, t.cfg.Batch
	st.Elapsed += time.Since(t.start).Seconds()
	if h, ok := t.model.(*headNet); ok {
		st.Tensors = h.tensors()
	} else {
		st.Tensors = make(map[string][]float32, len(t.net.tensors))
		for i := range t.net.tensors {
			tn := &t.net.tensors[i]
			st.Tensors[tn.name] = tn.toTorch(tn.value)
		}
	}
	st.Optimizer = t.opt.State()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return fmt.Errorf("train: %s: %w", StateFile, err)
	}
	return writeAtomic(filepath.Join(t.cfg.OutDir, StateFile), buf.Bytes())
}

// loadState restores the run saved in path: the position, the net's
// tensors and the optimizer's state.
func (t *trainer) loadState(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	var st runState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("train: resume: %s: state version %d, want %d", path, st.Version, stateVersion)
	}
	if st.Arch != t.archName() || st.Seed != t.cfg.Seed || st.Batch != t.cfg.Batch {
		return fmt.Errorf("train: resume: %s is a run of %s, seed %d, batch %d; this one is %s, seed %d, batch %d",
			path, st.Arch, st.Seed, st.Batch, t.archName(), t.cfg.Seed, t.cfg.Batch)
	}
	if err := t.restore(st.Tensors); err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	if err := t.opt.SetState(st.Optimizer); err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	st.Tensors, st.Optimizer = nil, State{}
	t.st = st
	if st.Steps > 0 {
		t.lr = t.sched.LR(st.Steps - 1)
	}
	return nil
}

// restore sets the learner's tensors from a state's.
func (t *trainer) restore(tensors map[string][]float32) error {
	if h, ok := t.model.(*headNet); ok {
		return h.load(mapWeights(tensors))
	}
	return t.useNet(NewNet(t.cfg.Arch, mapWeights(tensors)))
}

// archName names the trained net in state.gob: the architecture, or the
// fine-tuned model's head.
func (t *trainer) archName() string {
	if f := t.cfg.From; f != nil && t.cfg.FreezeBackbone {
		return fmt.Sprintf("%s+head%dx%d", cmp.Or(f.Meta.Arch, f.Meta.Name), f.Graph.Nodes[t.dense].Dense.In, len(t.cfg.Labels))
	}
	if t.cfg.From != nil {
		return t.cfg.Arch.Name() + "+freeze:" + cmp.Or(t.cfg.Freeze, "none")
	}
	return t.cfg.Arch.Name()
}

// mapWeights serves tensors by name, checking their sizes.
func mapWeights(m map[string][]float32) resnet.Weights {
	return func(name string, shape []int) ([]float32, error) {
		v, ok := m[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		if !ok || len(v) != n {
			return nil, fmt.Errorf("no tensor %s of shape %v", name, shape)
		}
		return slices.Clone(v), nil
	}
}

// record appends m to metrics.jsonl, reports it and updates the
// checkpoints: latest.ern always; ckpt-<step>.ern when m is among the Keep
// best validations (by accuracy; an earlier one wins a tie), deleting the
// one that falls out; best.ern when m is the best so far.
func (t *trainer) record(m Metrics) error {
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := t.metrics.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("train: %s: %w", MetricsFile, err)
	}
	t.st.Last = m
	t.history = append(t.history, m)
	if err := WritePlot(filepath.Join(t.cfg.OutDir, PlotFile), t.history); err != nil {
		return err
	}
	if t.cb.OnMetrics != nil {
		t.cb.OnMetrics(m)
	}
	fm, err := t.image(m)
	if err != nil {
		return err
	}
	dir := t.cfg.OutDir
	if err := writeModel(filepath.Join(dir, LatestFile), fm); err != nil {
		return err
	}
	pos := len(t.st.Best)
	for i, b := range t.st.Best {
		if m.ValAcc > b.ValAcc {
			pos = i
			break
		}
	}
	if pos >= t.cfg.Keep {
		return nil
	}
	if err := writeModel(filepath.Join(dir, ckptName(m.Step)), fm); err != nil {
		return err
	}
	if pos == 0 {
		if err := writeModel(filepath.Join(dir, BestFile), fm); err != nil {
			return err
		}
	}
	t.st.Best = slices.Insert(t.st.Best, pos, m)
	for len(t.st.Best) > t.cfg.Keep {
		out := t.st.Best[len(t.st.Best)-1]
		t.st.Best = t.st.Best[:len(t.st.Best)-1]
		if err := os.Remove(filepath.Join(dir, ckptName(out.Step))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("train: %w", err)
		}
	}
	return nil
}

func ckptName(step int) string { return "ckpt-" + strconv.Itoa(step) + ".ern" }

// image is the net's inference graph (BatchNorm folded) as a model image
// with the labels and the preprocessing.
func (t *trainer) image(m Metrics) (*firmware.Model, error) {
	if t.cfg.FreezeBackbone {
		return t.headImage(m)
	}
	g, err := resnet.Build(t.net.Config(), t.net.Weights())
	if err != nil {
		return nil, err
	}
	f, err := graph.Fuse(g)
	if err != nil {
		return nil, err
	}
	name := t.cfg.Name
	if name == "" {
		name = t.cfg.Arch.Name()
	}
	prov := map[string]string{
		"trainer": "edge-resnet train", "step": strconv.Itoa(m.Step), "epoch": strconv.Itoa(m.Epoch),
		"val_acc": strconv.FormatFloat(m.ValAcc, 'f', 6, 64),
	}
	if from := t.cfg.From; from != nil {
		prov["from"], prov["freeze"] = cmp.Or(from.Meta.Name, from.Meta.Arch), t.cfg.Freeze
	}
	return &firmware.Model{Graph: f, Meta: firmware.Meta{
		Name: name, Arch: t.cfg.Arch.Name(), Labels: t.cfg.Labels, Preprocess: t.cfg.Spec,
		Output: firmware.OutputLogits, Provenance: prov,
	}}, nil
}

// writeModel writes a model image atomically (firmware.WriteFile).
func writeModel(path string, fm *firmware.Model) error {
	if err := firmware.WriteFile(path, fm); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, so that path is never half-written.
func writeAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("train: write %s: %w", path, err)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
