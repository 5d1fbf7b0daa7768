package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/resnet"
)

type benchFlags struct {
	model         string
	arch          string
	threads       int
	runs, warmup  int
	json          bool
	profile       bool
	height, width int
	precision     string
	batches       []int
	kernels       []string
}

type benchResult struct {
	Model     string  `json:"model"`
	Batch     int     `json:"batch"`
	Threads   int     `json:"threads"`
	Precision string  `json:"precision"`
	Kernel    string  `json:"kernel"`
	Runs      int     `json:"runs"`
	MinMs     float64 `json:"min_ms"`
	MedianMs  float64 `json:"median_ms"`
	P90Ms     float64 `json:"p90_ms"`
	MeanMs    float64 `json:"mean_ms"`
	ImagesPS  float64 `json:"images_per_s"`
	GFLOPs    float64 `json:"gflop_per_s"`
	// LoadMs is the model's load (read, checks, decode; for --arch the
	// conversion of the built graph), SessionMs the session's creation
	// (plan, weight packing, arena), FirstMs the first run on it, before
	// the warm-up.
	LoadMs    float64       `json:"load_ms"`
	SessionMs float64       `json:"session_ms"`
	FirstMs   float64       `json:"first_ms"`
	Profile   []stepProfile `json:"profile,omitempty"`
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [-m MODEL | --arch resnet50] [--threads N] [--batch 1,8,32] [--runs N] [--warmup N] [--json]",
		Short: "Measure inference latency and throughput",
		Long: `Measure the latency of one inference on a random input: after --warmup
untimed runs, --runs timed runs; prints min, median, p90 and images/s, and
the time to load the model, to create the session (plan, packed weights,
arena) and of its first run, before the warm-up. With
--batch, each run computes that many images in one pass (1x1 convolutions and
the classifier as one GEMM over the batch), and images/s counts them all; a
list (--batch 1,8,32) measures each batch size in turn (with --json, one
object per batch size per line). --kernels avx2,avx512vnni (or all) measures
each kernel path this CPU can run in the same process, on weights packed for
each path (see "edge-resnet cpu" for the paths).

The model is -m MODEL (model image or ONNX), or --arch, a standard ResNet
built in memory with random He-initialized weights (resnet18, resnet34,
resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d,
resnext101_64x4d, wide_resnet50_2, wide_resnet101_2,
cifar-resnet20/32/44/56/110), which needs no files; without either, the
built-in model.`,
		Example: `  edge-resnet bench --arch resnet50 --threads 1 --runs 50
  edge-resnet bench -m resnet18.ern --json
  edge-resnet bench --arch resnext50_32x4d --threads 1 --batch 1,8,32
  edge-resnet bench --arch resnet18 --threads 1 --kernels all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "model image or ONNX file")
	fl.StringVar(&f.arch, "arch", "", "build a standard ResNet with random weights instead (e.g. resnet50)")
	fl.IntVar(&f.height, "height", 0, "input height for --arch (default 224, or 32 for CIFAR)")
	fl.IntVar(&f.width, "width", 0, "input width for --arch (default: the height)")
	fl.IntVar(&f.threads, "threads", 0, "worker threads (default: number of CPUs)")
	fl.StringVar(&f.precision, "precision", "auto", precisionUsage)
	fl.IntVar(&f.runs, "runs", 20, "timed runs")
	fl.IntVar(&f.warmup, "warmup", 3, "untimed runs first")
	fl.IntSliceVar(&f.batches, "batch", []int{0}, "images per run, or a list to measure each (default: the model's batch, 1 unless it declares one)")
	fl.StringSliceVar(&f.kernels, "kernels", nil, "kernel paths to measure, each in turn, or all (default: the best one, or EDGE_RESNET_KERNELS)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object")
	fl.BoolVar(&f.profile, "profile", false, "also time every layer: median ms, GFLOP/s and the kernel that ran")
	return cmd
}

// maxRuns bounds --runs and --warmup (the timings are kept in memory).
const maxRuns = 1_000_000

// archConfig parses names like resnet50 or cifar-resnet20, with an input
// size override.
func archConfig(name string, h, w int) (resnet.Config, error) {
	cfg, err := edgeresnet.ParseArch(name)
	if err != nil {
		return cfg, err
	}
	cfg.Height, cfg.Width = h, w
	_, err = cfg.Normalize()
	return cfg, err
}

// runBench times --runs inferences of the model on a random input after
// --warmup untimed ones, and prints the statistics (and, with --profile,
// every step's time).
func runBench(stdout, stderr io.Writer, f benchFlags) error {
	if err := checkIntFlags(intFlag{"--runs", f.runs, 1, maxRuns, "timed runs"}, intFlag{"--warmup", f.warmup, 0, maxRuns, "untimed runs"},
		intFlag{"--height", f.height, 0, 0, "0: the default"}, intFlag{"--width", f.width, 0, 0, "0: the height"}, threadsFlag(f.threads)); err != nil {
		return err
	}
	if (f.height != 0 || f.width != 0) && f.arch == "" {
		return fmt.Errorf("--height and --width are for --arch; a model file has its own input size")
	}
	for _, b := range f.batches {
		if err := checkIntFlags(intFlag{"--batch", b, 0, edgeresnet.MaxBatch, "0: the model's batch"}); err != nil {
			return err
		}
	}
	paths, err := benchPaths(f.kernels)
	if err != nil {
		return err
	}
	t, err := benchModel(f)
	if err != nil {
		return err
	}
	defer t.m.Close()
	for _, path := range paths {
		for _, b := range f.batches {
			if err := benchSession(stdout, stderr, f, t, b, path); err != nil {
				return err
			}
		}
	}
	return nil
}

// benchPaths is the --kernels list: "" (the default path) when empty,
// every usable path for "all", else the names, each checked.
func benchPaths(names []string) ([]string, error) {
	if len(names) == 0 {
		return []string{""}, nil
	}
	if slices.Contains(names, "all") {
		return edgeresnet.KernelPaths(), nil
	}
	for _, n := range names {
		if !slices.Contains(edgeresnet.KernelPaths(), n) {
			return nil, fmt.Errorf("--kernels %s: not a kernel path this CPU and build can run (they are %s)", n, strings.Join(edgeresnet.KernelPaths(), ", "))
		}
	}
	return names, nil
}

// benchTarget is the model bench times, its name and its load time (ms).
type benchTarget struct {
	m      *edgeresnet.Model
	name   string
	loadMs float64
}

// benchSession times the target's model on a session with --threads,
// --precision and batch images per run (0: the model's), and prints the
// result.
func benchSession(stdout, stderr io.Writer, f benchFlags, t benchTarget, batch int, path string) error {
	m, name := t.m, t.name
	if batch == 0 {
		batch = m.Batch()
	}
	opts := []edgeresnet.SessionOption{edgeresnet.WithBatch(batch)}
	if path != "" {
		opts = append(opts, edgeresnet.WithKernels(path))
	}
	t0 := time.Now()
	s, err := newSession(m, f.threads, f.precision, opts...)
	if err != nil {
		return err
	}
	defer s.Close()
	sessionMs := ms(time.Since(t0))
	first, times, err := timeRuns(s, f, stderr)
	if err != nil {
		return err
	}
	var prof []stepProfile
	if f.profile {
		if prof, err = profileSteps(s, f.runs); err != nil {
			return err
		}
	}
	var macs int64
	g := m.Graph()
	for i := range g.Nodes {
		macs += g.MACs(i)
	}
	res := summarize(times)
	res.LoadMs, res.SessionMs, res.FirstMs = t.loadMs, sessionMs, first
	res.Model, res.Batch, res.Threads, res.Precision, res.Kernel = name, batch, s.Threads(), s.Precision().String(), s.Kernels()
	if path == "" {
		res.Kernel = edgeresnet.CPU().Selection // with why, when EDGE_RESNET_KERNELS chose it
	}
	res.ImagesPS *= float64(batch)
	res.GFLOPs = 2 * float64(macs) * float64(batch) / (res.MedianMs / 1e3) / 1e9
	res.Profile = prof
	if f.json {
		return json.NewEncoder(stdout).Encode(res)
	}
	printBench(stdout, res, macs)
	return nil
}

// benchModel is the model to time, its name and load time: --arch built
// with random weights (the load is then the conversion of the built
// graph), or -m (the built-in model without either).
func benchModel(f benchFlags) (benchTarget, error) {
	switch {
	case f.arch != "" && f.model != "":
		return benchTarget{}, fmt.Errorf("give -m or --arch, not both")
	case f.arch != "":
		cfg, err := archConfig(f.arch, f.height, f.width)
		if err != nil {
			return benchTarget{}, err
		}
		g, err := resnet.Build(cfg, resnet.HeInit(1))
		if err != nil {
			return benchTarget{}, err
		}
		t0 := time.Now()
		m, err := fromModel(&firmware.Model{Graph: g})
		if err != nil {
			return benchTarget{}, err
		}
		return benchTarget{m, f.arch, ms(time.Since(t0))}, nil
	}
	t0 := time.Now()
	m, err := loadModel(f.model)
	if err != nil {
		return benchTarget{}, err
	}
	load := ms(time.Since(t0))
	name := f.model
	if name == "" {
		name = m.Meta().Name
	}
	return benchTarget{m, name, load}, nil
}

// benchInput is the fixed random input of bench's runs.
func benchInput(s *edgeresnet.Session) []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, len(s.Input()))
	for i := range in {
		in[i] = float32(r.NormFloat64())
	}
	return in
}

// timeRuns runs the session's first inference, --warmup untimed and then
// --runs timed ones with a progress bar, each on the fixed input written
// again before it (a run reuses the input's memory for later layers,
// whose bytes read as float32 can be denormals that slow the first layers
// down 15x), and returns the first run's time and the timed runs', in ms.
func timeRuns(s *edgeresnet.Session, f benchFlags, stderr io.Writer) (first float64, times []float64, err error) {
	src := benchInput(s)
	bar := newBar(stderr, 1+f.warmup+f.runs, "benchmarking")
	run := func() (float64, error) {
		copy(s.Input(), src)
		t0 := time.Now()
		_, err := s.RunBatch(s.Batch())
		d := ms(time.Since(t0))
		bar.Add(1)
		return d, err
	}
	if first, err = run(); err != nil {
		return 0, nil, err
	}
	for range f.warmup {
		if _, err = run(); err != nil {
			return 0, nil, err
		}
	}
	times = make([]float64, f.runs)
	for i := range times {
		if times[i], err = run(); err != nil {
			return 0, nil, err
		}
	}
	bar.Finish()
	return first, times, nil
}

// printBench prints a benchmark's result as text.
func printBench(w io.Writer, res benchResult, macs int64) {
	fmt.Fprintf(w, "%s: batch %d, %d threads, %s, kernel %s, %d runs\n", res.Model, res.Batch, res.Threads, res.Precision, res.Kernel, res.Runs)
	fmt.Fprintf(w, "  min %.2f ms   median %.2f ms   p90 %.2f ms   mean %.2f ms\n", res.MinMs, res.MedianMs, res.P90Ms, res.MeanMs)
	fmt.Fprintf(w, "  %.1f images/s, %.1f GFLOP/s (%.3f GMACs per image)\n", res.ImagesPS, res.GFLOPs, float64(macs)/1e9)
	fmt.Fprintf(w, "  load %.1f ms, session %.1f ms, first run %.2f ms (%.2fx the median)\n", res.LoadMs, res.SessionMs, res.FirstMs, res.FirstMs/res.MedianMs)
	if res.Profile != nil {
		printProfile(w, res.Profile)
	}
}

type stepProfile struct {
	Name     string  `json:"name"`
	Op       string  `json:"op"`
	Kernel   string  `json:"kernel"`
	MedianMs float64 `json:"median_ms"`
	GFLOPs   float64 `json:"gflop_per_s,omitempty"`
	Share    float64 `json:"share"`
	Choice   string  `json:"choice,omitempty"` // why this kernel, for layers with several (--tune)
}

// profileSteps times every step over runs runs and keeps each step's median.
func profileSteps(s *edgeresnet.Session, runs int) ([]stepProfile, error) {
	steps := s.Plan().Steps()
	times := make([]time.Duration, len(steps))
	per := make([][]float64, len(steps))
	src := benchInput(s)
	for r := 0; r < runs; r++ {
		copy(s.Input(), src) // as timeRuns
		if err := s.RunProfile(times); err != nil {
			return nil, err
		}
		for i, t := range times {
			per[i] = append(per[i], ms(t))
		}
	}
	out := make([]stepProfile, len(steps))
	var total float64
	for i, st := range steps {
		med := summarize(per[i]).MedianMs
		total += med
		out[i] = stepProfile{Name: st.Name, Op: st.Op.String(), Kernel: st.Kernel, MedianMs: med, Choice: st.Choice}
		if st.MACs > 0 && med > 0 {
			out[i].GFLOPs = 2 * float64(st.MACs) / (med / 1e3) / 1e9
		}
	}
	for i := range out {
		out[i].Share = out[i].MedianMs / total
	}
	return out, nil
}

func printProfile(w io.Writer, prof []stepProfile) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlayer\top\tkernel\tmedian ms\tshare\tGFLOP/s\tchoice\t")
	for _, p := range prof {
		gf := "-"
		if p.GFLOPs > 0 {
			gf = fmt.Sprintf("%.1f", p.GFLOPs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%4.1f%%\t%s\t%s\t\n", p.Name, p.Op, p.Kernel, p.MedianMs, 100*p.Share, gf, p.Choice)
	}
	tw.Flush()
}

// summarize computes min/median/p90 (nearest rank) and throughput.
func summarize(times []float64) benchResult {
	s := slices.Clone(times)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	var sum float64
	for _, t := range s {
		sum += t
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return benchResult{Runs: len(s), MinMs: s[0], MedianMs: med, P90Ms: rank(0.9), MeanMs: sum / float64(len(s)),
		ImagesPS: 1000 / med}
}
