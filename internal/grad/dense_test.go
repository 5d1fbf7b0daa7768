package grad

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edge-resnet/edge-resnet/kernels"
)

var denseCases = []struct {
	name    string
	in, out int
	batch   Shape // the input's shape
}{
	{"1x1", 1, 1, Shape{1, 1, 1, 1}},
	{"tails", 19, 10, Shape{3, 1, 1, 19}},
	{"head64", 64, 10, Shape{5, 1, 1, 64}},
	{"wide", 20, 37, Shape{2, 1, 1, 20}},
	{"flatten", 12, 9, Shape{2, 2, 2, 3}},
}

// newTestDense is a dense layer on set with random weights and bias and a
// random input of shape s.
func newTestDense(in, out int, s Shape, set *kernels.Set, seed uint64) (*Dense, []float32) {
	rng := rand.New(rand.NewPCG(seed, 11))
	d := NewDense(in, out)
	d.Set = set
	copy(d.W, randSlice(rng, len(d.W)))
	copy(d.B, randSlice(rng, len(d.B)))
	return d, randSlice(rng, s.Size())
}

// refDense is y = x·W + b and its backward for dy in float64.
func refDense(d *Dense, x []float32, n int, dy []float32) (y, dx, dw, db []float64) {
	y, dx = make([]float64, n*d.Out), make([]float64, n*d.In)
	dw, db = make([]float64, d.In*d.Out), make([]float64, d.Out)
	for i := range n {
		for o := range d.Out {
			g := float64(dy[i*d.Out+o])
			acc := float64(d.B[o])
			for k := range d.In {
				acc += float64(x[i*d.In+k]) * float64(d.W[k*d.Out+o])
				dx[i*d.In+k] += g * float64(d.W[k*d.Out+o])
				dw[k*d.Out+o] += g * float64(x[i*d.In+k])
			}
			y[i*d.Out+o] = acc
			db[o] += g
		}
	}
	return y, dx, dw, db
}

func TestDenseGradients(t *testing.T) {
	for _, tc := range denseCases {
		t.Run(tc.name, func(t *testing.T) {
			d, x := newTestDense(tc.in, tc.out, tc.batch, nil, 1)
			r := randSlice(rand.New(rand.NewPCG(4, 4)), tc.batch.N*tc.out)
			d.ZeroGrad()
			d.Forward(x, tc.batch)
			dx := slices.Clone(d.Backward(r))
			loss := func() float64 {
				y, _ := d.Forward(x, tc.batch)
				return dotLoss(r, y)
			}
			checkGradients(t, tc.name, loss, [][]float32{x, d.W, d.B}, [][]float32{dx, d.GradW, d.GradB}, 1e-2, 1e-2, 60)
		})
	}
}

// TestDenseReference compares Dense with float64 loops on every Set, and
// checks that gradients accumulate over two Backward calls and that a
// repeated step is bit-identical and allocates nothing.
func TestDenseReference(t *testing.T) {
	for _, tc := range denseCases {
		for _, set := range kernels.Sets() {
			t.Run(tc.name+"/"+set.Name(), func(t *testing.T) {
				d, x := newTestDense(tc.in, tc.out, tc.batch, set, 1)
				r := randSlice(rand.New(rand.NewPCG(4, 4)), tc.batch.N*tc.out)
				ry, rdx, rdw, rdb := refDense(d, x, tc.batch.N, r)
				y, _ := d.Forward(x, tc.batch)
				y = slices.Clone(y)
				dx := slices.Clone(d.Backward(r))
				gw, gb := slices.Clone(d.GradW), slices.Clone(d.GradB)
				for i, got := range [][]float32{y, dx, gw, gb} {
					if msg := closeTo(got, [][]float64{ry, rdx, rdw, rdb}[i], 1e-5); msg != "" {
						t.Errorf("%s: %s", [...]string{"y", "dx", "dW", "dB"}[i], msg)
					}
				}
				d.Forward(x, tc.batch)
				d.Backward(r)
				for i := range rdw {
					rdw[i] *= 2
				}
				if msg := closeTo(d.GradW, rdw, 1e-5); msg != "" {
					t.Errorf("dW after two steps: %s", msg)
				}
				d.ZeroGrad()
				d.Forward(x, tc.batch)
				if !slices.Equal(d.Backward(r), dx) || !slices.Equal(d.GradW, gw) || !slices.Equal(d.GradB, gb) {
					t.Errorf("a repeated step differs")
				}
				if n := testing.AllocsPerRun(3, func() { d.Forward(x, tc.batch); d.Backward(r) }); n != 0 {
					t.Errorf("%v allocations per Forward+Backward", n)
				}
			})
		}
	}
}
