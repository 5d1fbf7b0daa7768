package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	var threads int
	cmd := &cobra.Command{
		Use:   "inspect [MODEL]",
		Short: "Show a model's layers, shapes, precision, parameters, MACs and memory plan",
		Long: `Show a model's metadata and its layers as edge-resnet runs them (BatchNorm
folded, bias/residual add/ReLU fused into the convolutions): output shape,
precision (fp32 or int8, with the activation scale and zero point of
quantized outputs), parameters, weight bytes and multiply-accumulates per
layer, totals with the size saving of int8 weights, and the arena plan —
how many bytes one session preallocates for all activations compared with
the sum of the tensor sizes (the saving from reusing memory whose tensor is
dead). MODEL is a model image or ONNX file; without it, the built-in model.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			if err := checkIntFlags(intFlag{"--threads", threads, 1, edgeresnet.MaxThreads, "the scratch of that many workers"}); err != nil {
				return err
			}
			m, err := loadModel(path)
			if err != nil {
				return err
			}
			defer m.Close()
			if asJSON {
				return inspectJSON(cmd.OutOrStdout(), m, threads)
			}
			inspectText(cmd.OutOrStdout(), m, threads)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&threads, "threads", 1, "worker threads to size the per-worker scratch for")
	return cmd
}

func inspectText(w io.Writer, m *edgeresnet.Model, threads int) {
	meta := m.Meta()
	p := m.Plan()
	g := p.Graph // as it runs: with the plan's fusions (Clips folded)
	pp := meta.Preprocess
	fmt.Fprintf(w, "model:       %s (%s)\n", meta.Name, meta.Arch)
	fmt.Fprintf(w, "input:       %v (HxWxC), output: %d %s\n", g.Input(), g.OutputShape().Size(), meta.Output)
	fmt.Fprintf(w, "preprocess:  resize %d, crop %dx%d, %d channels, scale %g, mean %v, std %v\n",
		pp.Resize, pp.Height, pp.Width, pp.Channels, pp.Scale, pp.Mean, pp.Std)
	if len(meta.Labels) > 0 {
		show := meta.Labels
		if len(show) > 5 {
			show = append(append([]string(nil), show[:5]...), "...")
		}
		fmt.Fprintf(w, "labels:      %d (%s)\n", len(meta.Labels), strings.Join(show, ", "))
	}
	for _, k := range sortedKeys(meta.Provenance) {
		fmt.Fprintf(w, "provenance:  %s = %s\n", k, meta.Provenance[k])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tlayer\top\toutput\tprecision\tactivation q\tparams\tweights\tMACs\t")
	var params, macs int64
	var wb weightBytes
	for i, n := range g.Nodes {
		pi, mi, bi := g.Params(i), g.MACs(i), layerWeightBytes(g, i)
		params += pi
		macs += mi
		wb.add(bi)
		wb.count(n)
		aq := "-"
		if q := n.Quant; q != nil {
			aq = fmt.Sprintf("s=%.4g z=%d", q.Scale, q.Zero)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\t\n", i, n.Name, g.Describe(i), n.Shape,
			precision(n), aq, count(pi), bytesOrDash(bi.stored), count(mi))
	}
	fmt.Fprintf(tw, "\ttotal\t%d layers\t\t%s\t\t%s\t%s\t%s\t\n", len(g.Nodes), wb.precision(), count(params), bytesStr(wb.stored), count(macs))
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "parameters:  %d (%.2f MB as float32)\n", params, float64(params)*4/1e6)
	fmt.Fprintf(w, "weights:     %s\n", wb.summary())
	fmt.Fprintf(w, "compute:     %.3f GMACs per image (%.3f GFLOPs)\n", float64(macs)/1e9, 2*float64(macs)/1e9)
	fmt.Fprintf(w, "arena:       %s for activations; the tensors sum to %s (%.1fx saved by reuse)\n",
		bytesStr(p.Layout.Total), bytesStr(p.Layout.Sum), float64(p.Layout.Sum)/float64(max(p.Layout.Total, 1)))
	fmt.Fprintf(w, "scratch:     %s per worker; a session with %d thread(s) preallocates %s\n",
		bytesStr(p.ScratchBytes()), threads, bytesStr(p.ArenaBytes(threads)))
	fmt.Fprintf(w, "kernel:      %s\n", p.Kernels.Name())
}

type inspectLayer struct {
	Index       int      `json:"index"`
	Name        string   `json:"name"`
	Op          string   `json:"op"`
	Desc        string   `json:"desc"`
	Inputs      []int    `json:"inputs"`
	Shape       [3]int   `json:"shape_hwc"`
	Precision   string   `json:"precision"`           // "fp32", "int8" or "int8+fp32" (both weights stored)
	ActScale    *float32 `json:"act_scale,omitempty"` // the output's quantization, when quantized
	ActZero     *int32   `json:"act_zero,omitempty"`
	Params      int64    `json:"params"`
	WeightBytes int64    `json:"weight_bytes"` // as stored: float and int8 weights, scales, biases
	MACs        int64    `json:"macs"`
}

// precision is how a layer runs: layers with weights by their weights,
// other ops by whether their output is quantized.
func precision(n *graph.Node) string {
	w, q := n.Weights()
	switch {
	case w == nil && q == nil:
		if n.Quant != nil {
			return "int8"
		}
		return "fp32"
	case q == nil:
		return "fp32"
	case w != nil:
		return "int8+fp32"
	}
	return "int8"
}

// layerBytes are a layer's weight bytes as stored and as they would be in
// fp32 alone.
type layerBytes struct{ stored, fp32 int64 }

func layerWeightBytes(g *graph.Graph, i int) layerBytes {
	n := g.Nodes[i]
	w, q := n.Weights()
	if w == nil && q == nil {
		// Parameters without int8 forms (Affine's scale and shift).
		p := 4 * g.Params(i)
		return layerBytes{stored: p, fp32: p}
	}
	nw := int64(len(w))
	if w == nil {
		nw = int64(len(q.Q))
	}
	bias := g.Params(i) - nw
	b := layerBytes{fp32: 4 * g.Params(i), stored: 4*int64(len(w)) + 4*bias} // fp32: weights and bias
	if q != nil {
		b.stored += int64(len(q.Q)) + 4*int64(len(q.Scale))
	}
	return b
}

// weightBytes sums layerBytes and counts the kinds of weights seen.
type weightBytes struct {
	layerBytes
	int8Only, both, fp32Only int // conv/dense layers with int8 weights only, with both, with fp32 only
}

func (w *weightBytes) add(b layerBytes) {
	w.stored += b.stored
	w.fp32 += b.fp32
}

func (w *weightBytes) count(n *graph.Node) {
	switch precision(n) {
	case "int8":
		if n.Op == graph.OpConv || n.Op == graph.OpDense {
			w.int8Only++
		}
	case "int8+fp32":
		w.both++
	case "fp32":
		if n.Op == graph.OpConv || n.Op == graph.OpDense {
			w.fp32Only++
		}
	}
}

func (w *weightBytes) precision() string {
	switch {
	case w.int8Only == 0 && w.both == 0:
		return "fp32"
	case w.both == 0:
		return "int8"
	}
	return "int8+fp32"
}

// summary is the size line: the saving of int8 weights over fp32.
func (w *weightBytes) summary() string {
	switch w.precision() {
	case "fp32":
		return fmt.Sprintf("%s fp32", bytesStr(w.stored))
	case "int8":
		kept := ""
		if w.fp32Only > 0 {
			kept = fmt.Sprintf(", %d layers kept in fp32", w.fp32Only)
		}
		return fmt.Sprintf("%s int8%s (%s as fp32): %.2fx smaller", bytesStr(w.stored), kept, bytesStr(w.fp32), w.saving())
	}
	return fmt.Sprintf("%s, fp32 and int8 copies of %d layers (%s as fp32 alone)", bytesStr(w.stored), w.both, bytesStr(w.fp32))
}

// saving is fp32 bytes over stored bytes (> 1 when int8 made the model smaller).
func (w *weightBytes) saving() float64 { return float64(w.fp32) / float64(max(w.stored, 1)) }

func bytesOrDash(n int64) string {
	if n == 0 {
		return "-"
	}
	return bytesStr(n)
}

func inspectJSON(w io.Writer, m *edgeresnet.Model, threads int) error {
	p := m.Plan()
	g := p.Graph
	out := struct {
		Meta        any            `json:"meta"`
		Layers      []inspectLayer `json:"layers"`
		Params      int64          `json:"params"`
		Precision   string         `json:"precision"`         // "fp32", "int8" or "int8+fp32", over the conv and dense layers
		WeightBytes int64          `json:"weight_bytes"`      // as stored
		Fp32Bytes   int64          `json:"weight_bytes_fp32"` // the same weights in fp32 alone
		Saving      float64        `json:"weight_saving"`     // weight_bytes_fp32 / weight_bytes
		MACs        int64          `json:"macs"`
		ArenaBytes  int64          `json:"arena_bytes"`
		TensorBytes int64          `json:"tensor_bytes"`
		Scratch     int64          `json:"scratch_bytes_per_worker"`
		Session     int64          `json:"session_bytes"`
		Threads     int            `json:"threads"`
		Kernel      string         `json:"kernel"`
	}{Meta: m.Meta(), ArenaBytes: p.Layout.Total, TensorBytes: p.Layout.Sum, Scratch: p.ScratchBytes(),
		Session: p.ArenaBytes(threads), Threads: threads, Kernel: p.Kernels.Name()}
	var wb weightBytes
	for i, n := range g.Nodes {
		b := layerWeightBytes(g, i)
		wb.add(b)
		wb.count(n)
		l := inspectLayer{Index: i, Name: n.Name, Op: n.Op.String(), Desc: g.Describe(i), Inputs: n.Inputs,
			Shape: [3]int{n.Shape.H, n.Shape.W, n.Shape.C}, Precision: precision(n), Params: g.Params(i),
			WeightBytes: b.stored, MACs: g.MACs(i)}
		if q := n.Quant; q != nil {
			l.ActScale, l.ActZero = &q.Scale, &q.Zero
		}
		out.Params += l.Params
		out.MACs += l.MACs
		out.Layers = append(out.Layers, l)
	}
	out.Precision, out.WeightBytes, out.Fp32Bytes, out.Saving = wb.precision(), wb.stored, wb.fp32, wb.saving()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func count(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
