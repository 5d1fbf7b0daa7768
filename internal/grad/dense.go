package grad

import (
	"fmt"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// Dense is a fully connected layer, y = x·W + b, on [N, 1, 1, In] (any
// shape with H*W*C = In is taken as N rows of In values), on the GEMM
// kernels of a kernels.Set: Forward packs W (in place) and runs one GEMM;
// Backward computes dX = dY·Wᵀ, dW += Xᵀ·dY (the GEMM accumulating into
// GradW through its residual epilogue) and dB += Σ dY over the batch in
// order. After the first step on a batch size it allocates nothing.
type Dense struct {
	In, Out     int
	W           []float32 // In x Out, row-major
	B           []float32 // Out
	GradW       []float32 // the gradients Backward adds to, as W and B
	GradB       []float32
	Set         *kernels.Set // nil means kernels.Best()
	NoInputGrad bool         // Backward skips dX and returns nil

	x      []float32
	in     Shape
	set    *kernels.Set
	y, dx  []float32
	xT     []float32       // In x N
	wB, wT kernels.PackedB // In x Out, Out x In
	dyP    kernels.PackedB // N x Out
	ep     kernels.Epilogue
	zeroEp kernels.Epilogue
	gradEp kernels.Epilogue
	ready  bool
}

// NewDense returns a dense layer with zero weights, bias and gradients.
func NewDense(in, out int) *Dense {
	if in < 1 || out < 1 {
		panic(fmt.Sprintf("grad.NewDense: %d x %d", in, out))
	}
	return &Dense{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out),
		GradW: make([]float32, in*out), GradB: make([]float32, out)}
}

// ZeroGrad zeroes GradW and GradB.
func (d *Dense) ZeroGrad() {
	clear(d.GradW)
	clear(d.GradB)
}

// Forward computes x·W + b for the s.N rows of x and keeps x (not a copy)
// for Backward. The output, [N, 1, 1, Out], belongs to the layer until
// the next Forward.
func (d *Dense) Forward(x []float32, s Shape) ([]float32, Shape) {
	if s.H*s.W*s.C != d.In || s.N < 1 || len(x) < s.Size() {
		panic(fmt.Sprintf("grad.Dense.Forward: input %+v (%d values) for In %d", s, len(x), d.In))
	}
	d.prepare(s)
	d.x = x[:s.Size()]
	packStrided(&d.wB, d.W, 0, d.Out, 1, d.In)
	d.ep.Bias = d.B
	kernels.Gemm(s.N, d.x, d.In, &d.wB, d.y, d.Out, &d.ep, 0, d.wB.Panels())
	d.ready = true
	return d.y, Shape{N: s.N, H: 1, W: 1, C: d.Out}
}

// prepare sizes the buffers for a batch of shape s.
func (d *Dense) prepare(s Shape) {
	set := d.Set
	if set == nil {
		set = kernels.Best()
	}
	if s == d.in && set == d.set {
		return
	}
	n := s.N
	d.in, d.set = s, set
	d.y, d.dx, d.xT = make([]float32, n*d.Out), make([]float32, n*d.In), make([]float32, d.In*n)
	d.wB = set.PackB(make([]float32, d.In*d.Out), d.In, d.Out)
	d.wT = set.PackB(make([]float32, d.Out*d.In), d.Out, d.In)
	d.dyP = set.PackB(make([]float32, n*d.Out), n, d.Out)
	d.gradEp = kernels.Epilogue{Res: d.GradW, LdRes: d.Out}
}

// Backward takes dy ([N, 1, 1, Out]), adds the gradients to GradW and
// GradB and returns dx (shaped as Forward's input; owned by the layer
// until the next Backward), or nil with NoInputGrad.
func (d *Dense) Backward(dy []float32) []float32 {
	n := d.in.N
	if !d.ready || len(dy) < n*d.Out {
		panic(fmt.Sprintf("grad.Dense.Backward: %d values for %d x %d (Forward first)", len(dy), n, d.Out))
	}
	dy = dy[:n*d.Out]
	for i := range n {
		for k, v := range d.x[i*d.In : (i+1)*d.In] {
			d.xT[k*n+i] = v
		}
	}
	packStrided(&d.dyP, dy, 0, d.Out, 1, n)
	d.gradEp.Res = d.GradW
	kernels.Gemm(d.In, d.xT, n, &d.dyP, d.GradW, d.Out, &d.gradEp, 0, d.dyP.Panels())
	for i := range n {
		addTo(d.GradB, dy[i*d.Out:(i+1)*d.Out])
	}
	if d.NoInputGrad {
		return nil
	}
	packStrided(&d.wT, d.W, 0, 1, d.Out, d.Out)
	kernels.Gemm(n, dy, d.Out, &d.wT, d.dx, d.In, &d.zeroEp, 0, d.wT.Panels())
	return d.dx
}
