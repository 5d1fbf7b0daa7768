package train

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// TestMemoryEstimateMatchesHeap compares memoryOf's estimate of a net's
// parameters, gradients, Adam state, activations and workspace with the
// live heap that the net, Adam and two training steps actually hold, so
// that the budget check before a run checks the real thing.
func TestMemoryEstimateMatchesHeap(t *testing.T) {
	for _, tc := range []struct {
		arch        string
		size, batch int
		threads     int
		lo, hi      float64 // live heap / estimate
	}{
		{"cifar-resnet20", 28, 64, 1, 0.9, 1.1},
		{"cifar-resnet20", 28, 64, 2, 0.9, 1.1},
		{"cifar-resnet20", 32, 32, 2, 0.9, 1.1},
		{"resnet18", 64, 4, 1, 0.9, 1.1},
	} {
		if testing.Short() && tc.arch == "resnet18" {
			continue // two ResNet-18 steps: seconds natively, a minute under qemu
		}
		cfg, err := resnet.ParseArch(tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Height, cfg.Width, cfg.InChannels, cfg.Classes = tc.size, tc.size, 1, 10
		norm, err := cfg.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		est := memoryOf(norm, tc.batch, tc.threads, 2, -1)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		net, err := NewNet(cfg, resnet.HeInit(1))
		if err != nil {
			t.Fatal(err)
		}
		net.SetThreads(tc.threads)
		opt, params := NewAdam(0), net.Params()
		r := rand.New(rand.NewPCG(1, 2))
		x, labels := make([]float32, tc.batch*tc.size*tc.size), make([]int, tc.batch)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		var loss grad.SoftmaxCrossEntropy
		for range 2 {
			net.ZeroGrad()
			logits := net.Forward(x, tc.batch, true)
			loss.Forward(logits, grad.Shape{N: tc.batch, H: 1, W: 1, C: 10}, labels)
			net.Backward(loss.Backward())
			opt.Step(params, 1e-3)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		live := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		ratio := live / float64(est.Total())
		t.Logf("%s %dx%d batch %d, %d threads: live heap %.1f MiB, estimate %s: ratio %.2f",
			tc.arch, tc.size, tc.size, tc.batch, tc.threads, live/(1<<20), est, ratio)
		if ratio < tc.lo || ratio > tc.hi {
			t.Errorf("%s batch %d: live heap %.1f MiB is %.2fx the estimate %s (want %.2f..%.2f)",
				tc.arch, tc.batch, live/(1<<20), ratio, est, tc.lo, tc.hi)
		}
		runtime.KeepAlive(net)
		runtime.KeepAlive(opt)
	}
}
