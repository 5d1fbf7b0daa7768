// Command loadtest measures `edge-resnet serve` under concurrent load: a
// server started in this process on 127.0.0.1 (loopback only), clients
// sending one-sample FP32 requests (binary tensor data) at each
// concurrency, with dynamic batching off and on. It prints a Markdown
// table of throughput, p50/p99 latency of the answered requests, and the
// errors by status with how fast they came (see bench/README.md "Serving
// under load").
//
//	go run ./bench/cmd/loadtest [--arch resnet50] [--requests 2000]
//	    [--concurrency 1,4,16,64] [--max-batch 8] [--batch-timeout 2ms]
//	    [--queue 32] [--max-time 60s] [--rounds 1] [--cpuprofile FILE]
//
// Every cell is capped: --requests requests or --max-time, whichever
// comes first (the table says when the time cap cut a cell short).
// --rounds N repeats batching off and on N times, interleaved, and
// prints each round's on/off throughput ratio per concurrency, so that
// a shared machine's drift shows as spread rather than as a result.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/resnet"
	"github.com/edge-resnet/edge-resnet/serve"
)

type options struct {
	arch        string
	requests    int
	concurrency []int
	maxBatch    int
	batchWait   time.Duration
	queue       int
	sessions    int
	threads     int
	maxTime     time.Duration
	rounds      int
	engine      time.Duration
	cpuProfile  string
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	s, t := serve.DefaultPool(runtime.GOMAXPROCS(0))
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.arch, "arch", "", "a standard ResNet with random weights (e.g. resnet50); default: the built-in ResNet-20")
	fs.IntVar(&o.requests, "requests", 2000, "requests per cell (concurrency x batching), at most 100000")
	conc := fs.String("concurrency", "1,4,16,64", "client concurrencies, comma-separated, each at most 1024")
	fs.IntVar(&o.maxBatch, "max-batch", 8, "the server's --max-batch when batching is on")
	fs.DurationVar(&o.batchWait, "batch-timeout", 2*time.Millisecond, "the server's --batch-timeout when batching is on")
	fs.IntVar(&o.queue, "queue", 32, "the server's --queue (requests past sessions x batch + queue get 429)")
	fs.IntVar(&o.sessions, "sessions", s, "the server's --sessions")
	fs.IntVar(&o.threads, "threads-per-session", t, "the server's --threads-per-session")
	fs.DurationVar(&o.maxTime, "max-time", 60*time.Second, "time cap of one cell, at most 10m")
	fs.IntVar(&o.rounds, "rounds", 1, "repeat batching off and on this many times, interleaved (1 to 100)")
	fs.DurationVar(&o.engine, "engine", 0, "each round, also run the engine alone (the pool's sessions, no HTTP) at batch 1 and --max-batch for this long each, for the ceiling of the batching gain")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients) to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	for _, f := range strings.Split(*conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 1024 {
			return o, fmt.Errorf("--concurrency %q: want numbers from 1 to 1024", *conc)
		}
		o.concurrency = append(o.concurrency, c)
	}
	if o.requests < 1 || o.requests > 100000 || o.maxTime <= 0 || o.maxTime > 10*time.Minute || o.maxBatch < 2 || o.rounds < 1 || o.rounds > 100 {
		return o, errors.New("want 1 to 100000 --requests, a --max-time up to 10m, a --max-batch of 2 or more and 1 to 100 --rounds")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	m, name, err := model(o.arch)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stdout, "model %s, %d sessions x %d threads, queue %d, %d requests or %v per cell, GOMAXPROCS %d\n\n",
		name, o.sessions, o.threads, o.queue, o.requests, o.maxTime, runtime.GOMAXPROCS(0))
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintln(stdout, "| batching | concurrency | requests | answered/s | p50 ms | p99 ms | errors | error p99 ms | mean batch |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---|---:|---:|")
	var ratios []string
	for round := 1; round <= o.rounds; round++ {
		var rates [2][]float64
		for i, batch := range []int{1, o.maxBatch} {
			if rates[i], err = runMode(stdout, stderr, m, o, batch); err != nil {
				return err
			}
		}
		for i, c := range o.concurrency {
			ratios = append(ratios, fmt.Sprintf("round %d, concurrency %d: batching on/off %.2fx", round, c, rates[1][i]/rates[0][i]))
		}
		if o.engine > 0 {
			line, err := engineLine(m, o)
			if err != nil {
				return err
			}
			ratios = append(ratios, fmt.Sprintf("round %d, %s", round, line))
		}
	}
	fmt.Fprintf(stdout, "\n%s\n", strings.Join(ratios, "\n"))
	return nil
}

// engineLine measures the engine alone at batch 1 and --max-batch.
func engineLine(m *edgeresnet.Model, o options) (string, error) {
	one, err := engineRate(m, o.sessions, o.threads, 1, o.engine)
	if err != nil {
		return "", err
	}
	many, err := engineRate(m, o.sessions, o.threads, o.maxBatch, o.engine)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("engine alone (%d x %d threads): %.1f images/s at batch 1, %.1f at batch %d: %.2fx", o.sessions, o.threads, one, many, o.maxBatch, many/one), nil
}

// model is the built-in ResNet-20, or arch built with random weights.
func model(arch string) (*edgeresnet.Model, string, error) {
	if arch == "" {
		m, err := edgeresnet.Default()
		return m, "built-in ResNet-20 (28x28x1)", err
	}
	cfg, err := edgeresnet.ParseArch(arch)
	if err != nil {
		return nil, "", err
	}
	g, err := resnet.Build(cfg, resnet.HeInit(1))
	if err != nil {
		return nil, "", err
	}
	m, err := edgeresnet.FromModel(&firmware.Model{Graph: g})
	return m, arch + " (random weights)", err
}
