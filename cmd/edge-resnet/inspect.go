package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/resnet"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	var threads int
	cmd := &cobra.Command{
		Use:   "inspect [MODEL]",
		Short: "Show a model's layers, shapes, parameters, MACs and memory plan",
		Long: `Show a model's metadata and its layers as edge-resnet runs them (BatchNorm
folded, bias/residual add/ReLU fused into the convolutions): output shape,
parameters and multiply-accumulates per layer, totals, and the arena plan —
how many bytes one session preallocates for all activations compared with
the sum of the tensor sizes (the saving from reusing memory whose tensor is
dead). MODEL is a model image or ONNX file; without it, the built-in model.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
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

// layerDesc describes a node's operator and what was fused into it.
func layerDesc(g *resnet.Graph, n *resnet.Node) string {
	var b strings.Builder
	b.WriteString(n.Op.String())
	switch n.Op {
	case resnet.OpConv:
		c := n.Conv
		fmt.Fprintf(&b, " %dx%d/%d", c.KH, c.KW, c.StrideH)
		if c.StrideW != c.StrideH {
			fmt.Fprintf(&b, "x%d", c.StrideW)
		}
		if c.Bias != nil {
			b.WriteString(" +bias")
		}
		if len(n.Inputs) == 2 {
			fmt.Fprintf(&b, " +residual(%s)", g.Nodes[n.Inputs[1]].Name)
		}
	case resnet.OpMaxPool, resnet.OpAvgPool:
		fmt.Fprintf(&b, " %dx%d/%d", n.Pool.KH, n.Pool.KW, n.Pool.StrideH)
	case resnet.OpPad:
		fmt.Fprintf(&b, " %v/%v", n.Pad.Before, n.Pad.After)
	case resnet.OpSlice:
		fmt.Fprintf(&b, " step %v", n.Slice.Step)
	case resnet.OpConcat:
		fmt.Fprintf(&b, " on %v", n.Axis)
	}
	if n.Relu {
		b.WriteString(" +relu")
	}
	return b.String()
}

func inspectText(w io.Writer, m *edgeresnet.Model, threads int) {
	meta := m.Meta()
	g := m.Graph()
	p := m.Plan()
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
	fmt.Fprintln(tw, "#\tlayer\top\toutput\tparams\tMACs\t")
	var params, macs int64
	for i, n := range g.Nodes {
		pi, mi := g.Params(i), g.MACs(i)
		params += pi
		macs += mi
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%s\t%s\t\n", i, n.Name, layerDesc(g, n), n.Shape, count(pi), count(mi))
	}
	fmt.Fprintf(tw, "\ttotal\t%d layers\t\t%s\t%s\t\n", len(g.Nodes), count(params), count(macs))
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "parameters:  %d (%.2f MB as float32)\n", params, float64(params)*4/1e6)
	fmt.Fprintf(w, "compute:     %.3f GMACs per image (%.3f GFLOPs)\n", float64(macs)/1e9, 2*float64(macs)/1e9)
	fmt.Fprintf(w, "arena:       %s for activations; the tensors sum to %s (%.1fx saved by reuse)\n",
		bytesStr(p.Layout.Total), bytesStr(p.Layout.Sum), float64(p.Layout.Sum)/float64(max(p.Layout.Total, 1)))
	fmt.Fprintf(w, "scratch:     %s per worker; a session with %d thread(s) preallocates %s\n",
		bytesStr(p.ScratchBytes()), threads, bytesStr(p.ArenaBytes(threads)))
	fmt.Fprintf(w, "kernel:      %s\n", p.Kernel)
}

type inspectLayer struct {
	Index  int    `json:"index"`
	Name   string `json:"name"`
	Op     string `json:"op"`
	Desc   string `json:"desc"`
	Inputs []int  `json:"inputs"`
	Shape  [3]int `json:"shape_hwc"`
	Params int64  `json:"params"`
	MACs   int64  `json:"macs"`
}

func inspectJSON(w io.Writer, m *edgeresnet.Model, threads int) error {
	g, p := m.Graph(), m.Plan()
	out := struct {
		Meta        any            `json:"meta"`
		Layers      []inspectLayer `json:"layers"`
		Params      int64          `json:"params"`
		MACs        int64          `json:"macs"`
		ArenaBytes  int64          `json:"arena_bytes"`
		TensorBytes int64          `json:"tensor_bytes"`
		Scratch     int64          `json:"scratch_bytes_per_worker"`
		Session     int64          `json:"session_bytes"`
		Threads     int            `json:"threads"`
		Kernel      string         `json:"kernel"`
	}{Meta: m.Meta(), ArenaBytes: p.Layout.Total, TensorBytes: p.Layout.Sum, Scratch: p.ScratchBytes(),
		Session: p.ArenaBytes(threads), Threads: threads, Kernel: p.Kernel}
	for i, n := range g.Nodes {
		l := inspectLayer{Index: i, Name: n.Name, Op: n.Op.String(), Desc: layerDesc(g, n), Inputs: n.Inputs,
			Shape: [3]int{n.Shape.H, n.Shape.W, n.Shape.C}, Params: g.Params(i), MACs: g.MACs(i)}
		out.Params += l.Params
		out.MACs += l.MACs
		out.Layers = append(out.Layers, l)
	}
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
