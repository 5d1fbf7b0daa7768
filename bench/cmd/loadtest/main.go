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
//	    [--queue 32] [--max-time 60s]
//
// Every cell is capped: --requests requests or --max-time, whichever
// comes first (the table says when the time cap cut a cell short).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
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
	if o.requests < 1 || o.requests > 100000 || o.maxTime <= 0 || o.maxTime > 10*time.Minute || o.maxBatch < 2 {
		return o, errors.New("want 1 to 100000 --requests, a --max-time up to 10m and a --max-batch of 2 or more")
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
	fmt.Fprintln(stdout, "| batching | concurrency | requests | answered/s | p50 ms | p99 ms | errors | error p99 ms |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---|---:|")
	for _, batch := range []int{1, o.maxBatch} {
		if err := runMode(stdout, stderr, m, o, batch); err != nil {
			return err
		}
	}
	return nil
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
