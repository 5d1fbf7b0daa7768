package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestBatchMatchesSingle runs every small config as one batch of 5 (and
// as the first 3 of a batch-5 plan) and each sample alone: the outputs
// must be the same bits, at 1 and 3 threads, with Winograd off and on,
// since each output element is summed in the same order whatever the batch
// (1x1 convolutions and dense layers run one GEMM over the batch's rows).
// The batched plan must allocate nothing per run.
func TestBatchMatchesSingle(t *testing.T) {
	const batch = 5
	r := rand.New(rand.NewPCG(6, 6))
	for ci, cfg := range smallConfigs {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			g, err := resnet.Build(cfg, randomWeights(uint64(ci)))
			if err != nil {
				t.Fatal(err)
			}
			size := g.Input().Size()
			in := randInput(r, batch*size)
			for _, wino := range []int{WinogradOff, WinogradAuto} {
				single := runPlan(t, g, CompileOptions{Winograd: wino}, in, size, 1)
				for _, threads := range []int{1, 3} {
					p, err := CompileWith(g, CompileOptions{Winograd: wino, Batch: batch})
					if err != nil {
						t.Fatal(err)
					}
					e, _ := NewExec(p, threads)
					got, err := e.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					if !sameBits(got, single) {
						t.Fatalf("winograd %d, %d threads: batch of %d differs from single runs", wino, threads, batch)
					}
					got, _ = e.Run(in[:3*size])
					if !sameBits(got, single[:3*len(single)/batch]) {
						t.Fatalf("winograd %d, %d threads: 3 of a batch of %d differ from single runs", wino, threads, batch)
					}
					if a := testing.AllocsPerRun(3, func() { e.Run(nil) }); a != 0 {
						t.Errorf("batched Run allocates %v times", a)
					}
					if _, err := e.Run(randInput(r, (batch+1)*size)); err == nil {
						t.Error("a run of batch+1 samples: want an error")
					}
					e.Close()
				}
			}
		})
	}
}

// runPlan runs the samples of in (size values each) one by one through a
// plan of batch 1 and returns their outputs after each other.
func runPlan(t *testing.T, g *graph.Graph, opt CompileOptions, in []float32, size, threads int) []float32 {
	t.Helper()
	p, err := CompileWith(g, opt)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewExec(p, threads)
	defer e.Close()
	var out []float32
	for b := 0; b < len(in); b += size {
		y, err := e.Run(in[b : b+size])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, y...)
	}
	return out
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}
