package edgeresnet

import (
	"context"
	"fmt"
	"image"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/quant"
)

// DefaultQuantizeMethod is the calibration method Quantize uses when
// QuantizeOptions.Method is empty (chosen from the accuracy table in
// docs/INT8.md).
const DefaultQuantizeMethod = "mse"

// QuantizeOptions control Quantize.
type QuantizeOptions struct {
	Method string // minmax, percentile, entropy or mse (default DefaultQuantizeMethod)
	// Limit is how many images, from the first, are examined (0: all);
	// the readable ones among them calibrate.
	Limit    int
	KeepFP32 []string // layers left in float32: "first" (the stem conv), "last" (the final dense) or node names
	Workers  int      // parallel single-thread runs (0: GOMAXPROCS)
	// WeightBits is 8 (default, also 0) or 7. 7-bit weights ([-63, 63],
	// half the resolution) run faster on x86 CPUs without VNNI (AVX2's
	// VPMADDUBSW is exact for them) and change nothing elsewhere; see
	// docs/INT8.md for what they cost in accuracy.
	WeightBits int
	// Progress is called as calibration goes (a first pass that finds the
	// readable images, two calibration passes over those, then the
	// int8-vs-fp32 comparison), from one goroutine at a time. total shrinks
	// after the first pass when images were skipped.
	Progress func(done, total int)
	// OnSkip is called for every image that cannot be read or
	// preprocessed, in set order, once Quantize has found that enough
	// images remain (when too few do, the error says how many and names
	// the first unreadable one).
	OnSkip func(SkippedImage)
}

// SkippedImage is a calibration image that could not be used.
type SkippedImage struct {
	Name   string `json:"name"`
	Reason string `json:"reason"` // the error, without the name
}

// QuantizeReport describes a quantization.
type QuantizeReport struct {
	Method     string `json:"method"`
	WeightBits int    `json:"weight_bits"`
	Images     int    `json:"images"`  // the images calibrated on
	Skipped    int    `json:"skipped"` // unreadable images left out
	// SkippedImages are the skipped images, in set order.
	SkippedImages []SkippedImage `json:"skipped_images,omitempty"`
	Layers        []LayerReport  `json:"layers"`
	// Int8 against fp32 on the calibration images.
	Agreement Agreement `json:"agreement"`
	// Model image sizes (weights and graph, without metadata), in bytes.
	FP32Bytes int64 `json:"fp32_weight_bytes"`
	Int8Bytes int64 `json:"int8_weight_bytes"`
}

// LayerReport is one node of a quantized model.
type LayerReport struct {
	Name      string  `json:"name"`
	Op        string  `json:"op"`
	Precision string  `json:"precision"` // the node's arithmetic: int8 or fp32
	Scale     float32 `json:"scale,omitempty"`
	Zero      int32   `json:"zero"`
	// The calibration range chosen (after sharing with the values an op
	// only moves) and the observed extremes.
	Lo             float64 `json:"lo"`
	Hi             float64 `json:"hi"`
	Min            float64 `json:"min"`
	Max            float64 `json:"max"`
	WeightScaleMin float32 `json:"weight_scale_min,omitempty"`
	WeightScaleMax float32 `json:"weight_scale_max,omitempty"`
	Quantized      bool    `json:"quantized"` // the value has int8 parameters
}

// Quantize calibrates m on the images of calib (run through the model's
// own preprocessing, in set order) and returns an int8 model: activation
// parameters per tensor, int8 weights per output channel in place of the
// float weights of the quantized layers. The same images give the same
// model for any number of workers. The report compares int8 and fp32 on
// the calibration images.
//
// Of the first Limit images, those that cannot be read or preprocessed are
// skipped (OnSkip and the report list them); Quantize fails when fewer
// than half of the images examined remain.
func Quantize(m *Model, calib dataset.Set, opt QuantizeOptions) (*Model, *QuantizeReport, error) {
	return QuantizeContext(context.Background(), m, calib, opt)
}

// QuantizeContext is Quantize that stops when ctx is done: no new
// calibration image starts, and it returns ctx's error.
func QuantizeContext(ctx context.Context, m *Model, calib dataset.Set, opt QuantizeOptions) (*Model, *QuantizeReport, error) {
	if err := m.use(); err != nil { // the weights must stay mapped throughout
		return nil, nil, err
	}
	defer m.done()
	name, method, bits, err := quantizeSettings(opt)
	if err != nil {
		return nil, nil, err
	}
	n, workers, err := setWork(calib, opt.Limit, opt.Workers)
	if err != nil {
		return nil, nil, err
	}
	if n < 1 {
		return nil, nil, fmt.Errorf("%w: no calibration images", ErrInput)
	}
	keep, err := m.keepNodes(opt.KeepFP32)
	if err != nil {
		return nil, nil, err
	}
	prog := &progress{total: 4 * n, report: opt.Progress}
	set, skipped, err := usableImages(ctx, calib, n, workers, m.meta.Preprocess, prog, opt.OnSkip)
	if err != nil {
		return nil, nil, err
	}
	used := len(set.idx)
	workers = min(workers, used)
	prog.setTotal(n + 3*used)
	q, layers, err := quant.QuantizeGraph(m.graph, used, calibrationInput(ctx, set, m.meta.Preprocess, workers),
		quant.QuantizeOptions{Method: method, KeepFP32: keep, Workers: workers, WeightBits: bits, MaxBytes: m.budget, Progress: func(int, int) { prog.tick() }})
	if err != nil {
		return nil, nil, err
	}
	qm, err := FromModel(&firmware.Model{Graph: q, Meta: quantizedMeta(m.meta, name, used, bits)})
	if err != nil {
		return nil, nil, err
	}
	rep := &QuantizeReport{Method: name, WeightBits: bits, Images: used, Skipped: len(skipped), SkippedImages: skipped,
		FP32Bytes: weightBytes(m.graph), Int8Bytes: weightBytes(qm.graph), Layers: layerReports(q, layers)}
	if rep.Agreement, err = compareOnCalibration(ctx, m, qm, set, workers, prog); err != nil {
		return nil, nil, err
	}
	return qm, rep, nil
}

// quantizeSettings checks QuantizeOptions.Method and WeightBits and returns
// the method's name (DefaultQuantizeMethod for none), the method and the
// weight width (8 for 0).
func quantizeSettings(opt QuantizeOptions) (name string, method quant.Method, bits int, err error) {
	name = opt.Method
	if name == "" {
		name = DefaultQuantizeMethod
	}
	if method, err = quant.ParseMethod(name); err != nil {
		return "", method, 0, fmt.Errorf("%w: %w", ErrInput, err)
	}
	bits = opt.WeightBits
	if bits == 0 {
		bits = 8
	}
	if bits != 7 && bits != 8 {
		return "", method, 0, fmt.Errorf("%w: weight bits must be 7 or 8, got %d", ErrInput, opt.WeightBits)
	}
	return name, method, bits, nil
}

// usableImages finds which of the first n images of calib can be read and
// preprocessed (see readable), fails when fewer than half can, and
// otherwise tells onSkip (if set) about each of the others, in set order.
// It returns the usable images as a subset and the skipped ones.
func usableImages(ctx context.Context, calib dataset.Set, n, workers int, spec preprocess.Spec, prog *progress, onSkip func(SkippedImage)) (subset, []SkippedImage, error) {
	ok, skipped := readable(ctx, calib, n, workers, spec, prog.tick)
	if err := ctx.Err(); err != nil {
		return subset{}, nil, err
	}
	if 2*len(ok) < n {
		return subset{}, nil, fmt.Errorf("%w: only %d of the %d calibration images examined are readable, too few (at least half must be; the first unreadable: %s: %s)",
			ErrInput, len(ok), n, skipped[0].Name, skipped[0].Reason)
	}
	for _, s := range skipped {
		if onSkip != nil {
			onSkip(s)
		}
	}
	return subset{calib, ok}, skipped, nil
}

// calibrationInput is the quant.InputFunc that reads and preprocesses
// image i of set, with one preprocessing scratch per worker; it stops at
// the next image once ctx is done.
func calibrationInput(ctx context.Context, set subset, spec preprocess.Spec, workers int) quant.InputFunc {
	scratch := make([]preprocess.Scratch, workers)
	return func(w, i int, dst []float32) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := set.Image(i)
		if err == nil {
			err = spec.Apply(img, dst, &scratch[w])
		}
		if err != nil {
			return sampleError(set, i, err)
		}
		return nil
	}
}

// quantizedMeta is the metadata of the quantized model: m's, with its
// provenance copied (so that m's is not changed) and a "quantized" entry
// that says how.
func quantizedMeta(meta firmware.Meta, method string, images, bits int) firmware.Meta {
	prov := meta.Provenance
	meta.Provenance = map[string]string{}
	for k, v := range prov {
		meta.Provenance[k] = v
	}
	meta.Provenance["quantized"] = fmt.Sprintf("edge-resnet %s: %s calibration on %d images", Version, method, images)
	if bits != 8 {
		meta.Provenance["quantized"] += fmt.Sprintf(", %d-bit weights", bits)
	}
	return meta
}

// layerReports describes each node of the quantized graph q with what
// QuantizeGraph decided for it.
func layerReports(q *graph.Graph, layers []quant.LayerQuant) []LayerReport {
	var out []LayerReport
	for i, l := range layers {
		nd := q.Nodes[i]
		lr := LayerReport{Name: nd.Name, Op: nd.Op.String(), Precision: "fp32",
			Lo: l.Lo, Hi: l.Hi, Min: l.ObservedMin, Max: l.ObservedMax,
			WeightScaleMin: l.WeightScaleMin, WeightScaleMax: l.WeightScaleMax}
		if l.Int8 {
			lr.Precision = "int8"
		}
		if l.Quant != nil {
			lr.Quantized, lr.Scale, lr.Zero = true, l.Quant.Scale, l.Quant.Zero
		}
		out = append(out, lr)
	}
	return out
}

// compareOnCalibration evaluates the float model m and the quantized
// model qm on the calibration images (the int8 run ticks prog) and
// compares their outputs.
func compareOnCalibration(ctx context.Context, m, qm *Model, set subset, workers int, prog *progress) (Agreement, error) {
	eval := unlabeled{set}
	r32, err := EvaluateContext(ctx, m, eval, EvalOptions{Workers: workers, Precision: PrecisionFP32, KeepOutputs: true})
	if err != nil {
		return Agreement{}, err
	}
	r8, err := EvaluateContext(ctx, qm, eval, EvalOptions{Workers: workers, Precision: PrecisionInt8, KeepOutputs: true, Progress: func(int) { prog.tick() }})
	if err != nil {
		return Agreement{}, err
	}
	return Compare(r8, r32), nil
}

// readable decodes and preprocesses each of the first n images of set once,
// on workers goroutines, and returns the indices of those that work, in
// order, and the others with the reason. This costs one more decode per
// image on top of the four of calibration (two passes, two comparison
// runs), and spares QuantizeGraph from failing half way.
func readable(ctx context.Context, set dataset.Set, n, workers int, spec preprocess.Spec, tick func()) ([]int, []SkippedImage) {
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scr preprocess.Scratch
			dst := make([]float32, spec.Height*spec.Width*spec.Channels)
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				img, err := set.Image(i)
				if err == nil {
					err = spec.Apply(img, dst, &scr)
				}
				errs[i] = err
				tick()
			}
		}()
	}
	wg.Wait()
	var ok []int
	var skipped []SkippedImage
	for i, err := range errs {
		if err == nil {
			ok = append(ok, i)
			continue
		}
		name := set.Name(i)
		skipped = append(skipped, SkippedImage{Name: name, Reason: strings.Replace(err.Error(), name+": ", "", 1)})
	}
	return ok, skipped
}

// progress counts work done for QuantizeOptions.Progress, from any
// goroutine.
type progress struct {
	mu          sync.Mutex
	done, total int
	report      func(done, total int)
}

func (p *progress) tick() {
	if p.report == nil {
		return
	}
	p.mu.Lock()
	p.done++
	p.report(min(p.done, p.total), p.total)
	p.mu.Unlock()
}

func (p *progress) setTotal(total int) {
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// subset is the samples idx of a set, in that order.
type subset struct {
	dataset.Set
	idx []int
}

func (s subset) Len() int                         { return len(s.idx) }
func (s subset) Label(i int) int                  { return s.Set.Label(s.idx[i]) }
func (s subset) Name(i int) string                { return s.Set.Name(s.idx[i]) }
func (s subset) Image(i int) (image.Image, error) { return s.Set.Image(s.idx[i]) }
func (s subset) Close() error                     { return nil } // the set is the caller's

// unlabeled hides a set's labels (calibration images need none).
type unlabeled struct{ dataset.Set }

func (unlabeled) Label(int) int { return 0 }

// keepNodes resolves QuantizeOptions.KeepFP32 to node indices.
func (m *Model) keepNodes(names []string) ([]int, error) {
	var out []int
	g := m.graph
	for _, name := range names {
		name = strings.TrimSpace(name)
		idx := -1
		switch name {
		case "":
			continue
		case "first":
			for i, n := range g.Nodes {
				if n.Op == graph.OpConv {
					idx = i
					break
				}
			}
		case "last":
			for i, n := range g.Nodes {
				if n.Op == graph.OpDense || n.Op == graph.OpConv {
					idx = i
				}
			}
		default:
			for i, n := range g.Nodes {
				if n.Name == name {
					idx = i
				}
			}
			if idx >= 0 && g.Nodes[idx].Op != graph.OpConv && g.Nodes[idx].Op != graph.OpDense {
				return nil, fmt.Errorf("%w: keep-fp32 %q is a %v node, not a conv or dense layer", ErrInput, name, g.Nodes[idx].Op)
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("%w: keep-fp32 %q: no such layer", ErrInput, name)
		}
		out = append(out, idx)
	}
	return out, nil
}

// weightBytes is the size of a graph's weights as stored: float32 or int8
// values plus per-channel scales, biases and affine parameters.
func weightBytes(g *graph.Graph) int64 {
	var b int64
	for _, n := range g.Nodes {
		if c := n.Conv; c != nil {
			b += 4*int64(len(c.Weight)+len(c.Bias)) + qBytes(c.Quant)
		}
		if d := n.Dense; d != nil {
			b += 4*int64(len(d.Weight)+len(d.Bias)) + qBytes(d.Quant)
		}
		if a := n.Affine; a != nil {
			b += 4 * int64(len(a.Scale)+len(a.Shift))
		}
	}
	return b
}

func qBytes(q *graph.QWeights) int64 {
	if q == nil {
		return 0
	}
	return int64(len(q.Q)) + 4*int64(len(q.Scale))
}
