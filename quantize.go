package edgeresnet

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/edge-resnet/edge-resnet/dataset"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/preprocess"
	"github.com/edge-resnet/edge-resnet/quant"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// DefaultQuantizeMethod is the calibration method Quantize uses when
// QuantizeOptions.Method is empty (chosen from the accuracy table in
// docs/INT8.md).
const DefaultQuantizeMethod = "mse"

// QuantizeOptions control Quantize.
type QuantizeOptions struct {
	Method   string   // minmax, percentile, entropy or mse (default DefaultQuantizeMethod)
	Limit    int      // calibrate on the first Limit images (0: all)
	KeepFP32 []string // layers left in float32: "first" (the stem conv), "last" (the final dense) or node names
	Workers  int      // parallel single-thread runs (default GOMAXPROCS)
	// WeightBits is 8 (default, also 0) or 7. 7-bit weights ([-63, 63],
	// half the resolution) run faster on x86 CPUs without VNNI (AVX2's
	// VPMADDUBSW is exact for them) and change nothing elsewhere; see
	// docs/INT8.md for what they cost in accuracy.
	WeightBits int
	// Progress is called as calibration goes (two passes over the images,
	// then the int8-vs-fp32 comparison), from one goroutine at a time.
	Progress func(done, total int)
}

// QuantizeReport describes a quantization.
type QuantizeReport struct {
	Method     string        `json:"method"`
	WeightBits int           `json:"weight_bits"`
	Images     int           `json:"images"`
	Layers     []LayerReport `json:"layers"`
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
func Quantize(m *Model, calib dataset.Set, opt QuantizeOptions) (*Model, *QuantizeReport, error) {
	name := opt.Method
	if name == "" {
		name = DefaultQuantizeMethod
	}
	method, err := quant.ParseMethod(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	bits := opt.WeightBits
	if bits == 0 {
		bits = 8
	}
	if bits != 7 && bits != 8 {
		return nil, nil, fmt.Errorf("%w: weight bits must be 7 or 8, got %d", ErrInput, opt.WeightBits)
	}
	n := calib.Len()
	if opt.Limit > 0 && opt.Limit < n {
		n = opt.Limit
	}
	if n < 1 {
		return nil, nil, fmt.Errorf("%w: no calibration images", ErrInput)
	}
	keep, err := m.keepNodes(opt.KeepFP32)
	if err != nil {
		return nil, nil, err
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	total := 3 * n
	scratch := make([]preprocess.Scratch, workers)
	spec := m.meta.Preprocess
	q, layers, err := resnet.QuantizeGraph(m.graph, n, func(w, i int, dst []float32) error {
		img, err := calib.Image(i)
		if err != nil {
			return fmt.Errorf("%s: %w", calib.Name(i), err)
		}
		return spec.Apply(img, dst, &scratch[w])
	}, resnet.QuantizeOptions{Method: method, KeepFP32: keep, Workers: workers, WeightBits: bits, Progress: func(done, _ int) {
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}})
	if err != nil {
		return nil, nil, err
	}
	meta := m.meta
	meta.Provenance = map[string]string{}
	for k, v := range m.meta.Provenance {
		meta.Provenance[k] = v
	}
	meta.Provenance["quantized"] = fmt.Sprintf("edge-resnet %s: %s calibration on %d images", Version, name, n)
	if bits != 8 {
		meta.Provenance["quantized"] += fmt.Sprintf(", %d-bit weights", bits)
	}
	qm, err := FromModel(&firmware.Model{Graph: q, Meta: meta})
	if err != nil {
		return nil, nil, err
	}
	rep := &QuantizeReport{Method: name, WeightBits: bits, Images: n, FP32Bytes: weightBytes(m.graph), Int8Bytes: weightBytes(qm.graph)}
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
		rep.Layers = append(rep.Layers, lr)
	}
	done := 2 * n
	progress := func(int) {
		done++
		if opt.Progress != nil {
			opt.Progress(min(done, total), total)
		}
	}
	set := unlabeled{calib}
	r32, err := Evaluate(m, set, EvalOptions{Workers: workers, Limit: n, Precision: PrecisionFP32, KeepOutputs: true, Progress: func(int) {}})
	if err != nil {
		return nil, nil, err
	}
	r8, err := Evaluate(qm, set, EvalOptions{Workers: workers, Limit: n, Precision: PrecisionInt8, KeepOutputs: true, Progress: progress})
	if err != nil {
		return nil, nil, err
	}
	rep.Agreement = Compare(r8, r32)
	return qm, rep, nil
}

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
				if n.Op == resnet.OpConv {
					idx = i
					break
				}
			}
		case "last":
			for i, n := range g.Nodes {
				if n.Op == resnet.OpDense || n.Op == resnet.OpConv {
					idx = i
				}
			}
		default:
			for i, n := range g.Nodes {
				if n.Name == name {
					idx = i
				}
			}
			if idx >= 0 && g.Nodes[idx].Op != resnet.OpConv && g.Nodes[idx].Op != resnet.OpDense {
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
func weightBytes(g *resnet.Graph) int64 {
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

func qBytes(q *resnet.QWeights) int64 {
	if q == nil {
		return 0
	}
	return int64(len(q.Q)) + 4*int64(len(q.Scale))
}
