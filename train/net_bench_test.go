package train

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edge-resnet/edge-resnet/internal/grad"
	"github.com/edge-resnet/edge-resnet/kernels"
	"github.com/edge-resnet/edge-resnet/resnet"
)

// benchStep is one training step's state: CIFAR ResNet-20 at batch 128
// on Fashion-MNIST-shaped (1x28x28) or CIFAR-shaped (3x32x32) images.
type benchStep struct {
	net    *Net
	opt    *Adam
	params []Param
	loss   grad.SoftmaxCrossEntropy
	x      []float32
	labels []int
	batch  int
}

// benchInputs are the two input shapes of issue 10's ResNet-20.
var benchInputs = []struct {
	name     string
	size, ch int
}{{"fmnist-1x28x28", 28, 1}, {"cifar-3x32x32", 32, 3}}

func newBenchStep(b *testing.B, size, ch, batch, threads int) *benchStep {
	cfg, err := resnet.ParseArch("cifar-resnet20")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Height, cfg.Width, cfg.InChannels, cfg.Classes = size, size, ch, 10
	net, err := NewNet(cfg, resnet.HeInit(1))
	if err != nil {
		b.Fatal(err)
	}
	net.SetThreads(threads)
	r := rand.New(rand.NewPCG(1, 2))
	st := &benchStep{net: net, opt: NewAdam(0), params: net.Params(), batch: batch,
		x: make([]float32, batch*size*size*ch), labels: make([]int, batch)}
	for i := range st.x {
		st.x[i] = float32(r.NormFloat64())
	}
	for i := range st.labels {
		st.labels[i] = r.IntN(10)
	}
	return st
}

// step runs Forward (training mode), the loss, Backward and Adam.
func (st *benchStep) step() {
	st.net.ZeroGrad()
	logits := st.net.Forward(st.x, st.batch, true)
	st.loss.Forward(logits, grad.Shape{N: st.batch, H: 1, W: 1, C: 10}, st.labels)
	st.net.Backward(st.loss.Backward())
	st.opt.Step(st.params, 1e-3)
}

// BenchmarkTrainStep is one training step of CIFAR ResNet-20, batch 128,
// Adam, at 1 and 2 threads.
func BenchmarkTrainStep(b *testing.B) {
	b.Logf("CPU: %s", kernels.CPU())
	for _, in := range benchInputs {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", in.name, threads), func(b *testing.B) {
				st := newBenchStep(b, in.size, in.ch, 128, threads)
				st.step()
				b.ResetTimer()
				for range b.N {
					st.step()
				}
				perStep := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(perStep*1e3, "ms/step")
				b.ReportMetric(float64(st.batch)/perStep, "images/s")
			})
		}
	}
}

// layerTimer adds the wall time of each layer kind of a step.
type layerTimer map[string]time.Duration

func (lt layerTimer) time(kind string, f func()) {
	t0 := time.Now()
	f()
	lt[kind] += time.Since(t0)
}

// timedStep is step with each layer call timed by kind, as Net's Forward
// and Backward run them.
func (st *benchStep) timedStep(lt layerTimer) {
	n := st.net
	lt.time("zero grad", n.ZeroGrad)
	s := grad.Shape{N: st.batch, H: n.cfg.Height, W: n.cfg.Width, C: n.cfg.InChannels}
	y := st.x
	y, s = timedUnitForward(lt, n.stem, y, s)
	for _, bl := range n.blocks {
		x, xs := y, s
		for _, u := range bl.main {
			y, s = timedUnitForward(lt, u, y, s)
		}
		short := x
		if bl.shortA != nil {
			lt.time("shortcut fwd", func() { short, _ = bl.shortA.Forward(x, xs) })
		}
		lt.time("add+relu fwd", func() { y = bl.merge.Forward(y, short, s) })
	}
	lt.time("pool fwd", func() { y, s = n.gap.Forward(y, s) })
	lt.time("dense fwd", func() { y, s = n.fc.Forward(y, s) })
	lt.time("loss", func() { st.loss.Forward(y, s, st.labels) })
	var dy []float32
	lt.time("dense bwd", func() { dy = n.fc.Backward(st.loss.Backward()) })
	lt.time("pool bwd", func() { dy = n.gap.Backward(dy) })
	for i := len(n.blocks) - 1; i >= 0; i-- {
		bl := n.blocks[i]
		var dmain, dshort []float32
		lt.time("add+relu bwd", func() { dmain, dshort = bl.merge.Backward(dy) })
		for j := len(bl.main) - 1; j >= 0; j-- {
			dmain = timedUnitBackward(lt, bl.main[j], dmain)
		}
		if bl.shortA != nil {
			lt.time("shortcut bwd", func() { dshort = bl.shortA.Backward(dshort) })
		}
		lt.time("shortcut sum", func() { grad.AddToThreads(dmain, dshort, bl.threads) })
		dy = dmain
	}
	n.stem.conv.NoInputGrad = !n.InputGrad
	timedUnitBackward(lt, n.stem, dy)
	lt.time("optimizer", func() { st.opt.Step(st.params, 1e-3) })
}

func timedUnitForward(lt layerTimer, u *convBN, x []float32, s grad.Shape) ([]float32, grad.Shape) {
	lt.time("conv fwd", func() { x, s = u.conv.Forward(x, s) })
	lt.time("bn(+relu) fwd", func() { x = u.bn.Forward(x, s) })
	return x, s
}

func timedUnitBackward(lt layerTimer, u *convBN, dy []float32) []float32 {
	lt.time("bn(+relu) bwd", func() { dy = u.bn.Backward(dy) })
	// Conv.Backward is dW then dX; time them apart as it runs them.
	var dx []float32
	lt.time("conv dW", func() { u.conv.BackwardWeights(dy) })
	if !u.conv.NoInputGrad {
		lt.time("conv dX", func() { dx = u.conv.BackwardData(dy) })
	}
	return dx
}

// BenchmarkTrainStepLayers is BenchmarkTrainStep's step with every layer
// call timed, reporting ms/step per layer kind.
func BenchmarkTrainStepLayers(b *testing.B) {
	b.Logf("CPU: %s", kernels.CPU())
	for _, in := range benchInputs {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", in.name, threads), func(b *testing.B) {
				st := newBenchStep(b, in.size, in.ch, 128, threads)
				st.step()
				lt := layerTimer{}
				b.ResetTimer()
				for range b.N {
					st.timedStep(lt)
				}
				kinds := make([]string, 0, len(lt))
				for k := range lt {
					kinds = append(kinds, k)
				}
				sort.Slice(kinds, func(i, j int) bool { return lt[kinds[i]] > lt[kinds[j]] })
				var total time.Duration
				for _, k := range kinds {
					total += lt[k]
				}
				lines := []string{}
				for _, k := range kinds {
					ms := lt[k].Seconds() * 1e3 / float64(b.N)
					lines = append(lines, fmt.Sprintf("%-13s %8.2f ms %5.1f%%", k, ms, 100*float64(lt[k])/float64(total)))
				}
				b.Logf("%s threads %d, per step:\n%s", in.name, threads, strings.Join(lines, "\n"))
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/step")
			})
		}
	}
}
