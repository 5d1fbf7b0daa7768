package quant

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Bins is the number of histogram bins on each side of zero.
const Bins = 2048

// Observer collects the distribution of one activation tensor over
// calibration inputs: its exact minimum and maximum and a histogram of
// Bins equal bins on [0, M) for values >= 0 and Bins on (-M, 0) for
// negative values. A value at or beyond ±M doubles M (merging bins in
// pairs) until it fits, so the result depends only on the values and their
// order; an observer made by NewObserver with the true maximum |x| never
// re-bins, and then the order does not matter either.
type Observer struct {
	Min, Max float64
	Count    int64
	Zeros    int64   // values exactly 0 (also counted in Pos[0])
	M        float64 // histogram half-width; 0 until a nonzero value is seen
	Pos, Neg [Bins]int64
}

// NewObserver returns an observer whose histogram covers |x| <= absMax
// without re-binning (absMax 0: decided by the first nonzero value).
func NewObserver(absMax float64) *Observer {
	o := &Observer{Min: math.Inf(1), Max: math.Inf(-1)}
	if absMax > 0 && !math.IsInf(absMax, 0) {
		o.M = absMax * (1 + 1.0/(1<<20))
	}
	return o
}

// Add observes values. NaNs are ignored; infinities count in Min/Max only.
func (o *Observer) Add(xs []float32) {
	for _, v := range xs {
		x := float64(v)
		if x != x {
			continue
		}
		o.Count++
		if x == 0 {
			o.Zeros++
		}
		o.Min = min(o.Min, x)
		o.Max = max(o.Max, x)
		a := math.Abs(x)
		if math.IsInf(a, 0) {
			continue
		}
		if a >= o.M {
			o.grow(a)
		}
		if o.M == 0 {
			o.Pos[0]++ // only zeros so far
			continue
		}
		b := min(int(a/o.M*Bins), Bins-1)
		if x < 0 {
			o.Neg[b]++
		} else {
			o.Pos[b]++
		}
	}
}

// grow doubles M until a < M (the first nonzero value sets M to 2a).
func (o *Observer) grow(a float64) {
	if a == 0 {
		return
	}
	if o.M == 0 {
		o.M = 2 * a
		return
	}
	for a >= o.M {
		o.M *= 2
		for _, h := range []*[Bins]int64{&o.Pos, &o.Neg} {
			for i := 0; i < Bins/2; i++ {
				h[i] = h[2*i] + h[2*i+1]
			}
			clear(h[Bins/2:])
		}
	}
}

// Merge adds the counts of another observer with the same histogram width.
func (o *Observer) Merge(p *Observer) error {
	if p.Count == 0 {
		return nil
	}
	if o.M != p.M && !(p.M == 0 && p.Pos[0] == p.Count) {
		return fmt.Errorf("quant: merging observers of histogram widths %g and %g", o.M, p.M)
	}
	o.Count += p.Count
	o.Zeros += p.Zeros
	o.Min, o.Max = min(o.Min, p.Min), max(o.Max, p.Max)
	for i := range o.Pos {
		o.Pos[i] += p.Pos[i]
		o.Neg[i] += p.Neg[i]
	}
	return nil
}

// Method chooses a calibration range from an observed distribution.
type Method uint8

const (
	MinMax     Method = iota // the observed minimum and maximum
	Percentile               // drop the PercentileTail fraction of mass on each side
	Entropy                  // minimize KL divergence (TensorRT-style)
	MSE                      // minimize the expected quantization squared error
)

// PercentileTail is the fraction of the calibration values the Percentile
// method clips on each side: the range keeps the central 99.99%.
const PercentileTail = 1e-4

var methodNames = [...]string{MinMax: "minmax", Percentile: "percentile", Entropy: "entropy", MSE: "mse"}

func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// ParseMethod is the inverse of Method.String.
func ParseMethod(s string) (Method, error) {
	for i, n := range methodNames {
		if strings.EqualFold(n, s) {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("quant: unknown calibration method %q (want %s)", s, strings.Join(methodNames[:], ", "))
}

// ErrEmpty is returned for a range asked of an observer that saw nothing.
var ErrEmpty = errors.New("quant: no values observed")

// Range is the calibration range [lo, hi] the method chooses, always
// within the observed [Min, Max] widened to contain 0.
func (o *Observer) Range(m Method) (lo, hi float64, err error) {
	if o.Count == 0 {
		return 0, 0, ErrEmpty
	}
	mn, mx := min(o.Min, 0), max(o.Max, 0)
	if o.M == 0 {
		return mn, mx, nil
	}
	clip := func(l, h float64) (float64, float64, error) {
		return max(min(l, 0), mn), min(max(h, 0), mx), nil
	}
	switch m {
	case MinMax:
		return mn, mx, nil
	case Percentile:
		l, h := o.quantile(PercentileTail), o.quantile(1-PercentileTail)
		return clip(l, h)
	case Entropy:
		// Exact zeros (half of a ReLU output, often) are exact in every
		// quantization: left in bin 0 they would dominate the divergence
		// and favor narrow groups, that is, heavy clipping.
		pos := o.Pos
		pos[0] -= o.Zeros
		w := o.M / Bins
		if o.negatives() == 0 {
			return clip(0, klThreshold(pos[:], 255)*w)
		}
		// Signed: each side on its own with half the levels, so that an
		// asymmetric distribution (an input with a dark background) is
		// not cut to the narrower side's width.
		return clip(-klThreshold(o.Neg[:], 128)*w, klThreshold(pos[:], 128)*w)
	case MSE:
		return o.mse()
	}
	return 0, 0, fmt.Errorf("quant: unknown method %v", m)
}

func (o *Observer) negatives() int64 {
	var n int64
	for _, c := range o.Neg {
		n += c
	}
	return n
}

// bin b in [0, 2*Bins) of the signed histogram: negative bins first, from
// -M up; lower edge and count.
func (o *Observer) bin(b int) (lo float64, count int64) {
	w := o.M / Bins
	if b < Bins {
		i := Bins - 1 - b
		return -float64(i+1) * w, o.Neg[i]
	}
	i := b - Bins
	return float64(i) * w, o.Pos[i]
}

// quantile is the value below which a fraction f of the histogram's mass
// lies, interpolating linearly inside a bin.
func (o *Observer) quantile(f float64) float64 {
	var total int64
	for b := 0; b < 2*Bins; b++ {
		_, c := o.bin(b)
		total += c
	}
	target := f * float64(total)
	w := o.M / Bins
	var cum float64
	for b := 0; b < 2*Bins; b++ {
		lo, c := o.bin(b)
		if c > 0 && cum+float64(c) >= target {
			return lo + w*max(0, target-cum)/float64(c)
		}
		cum += float64(c)
	}
	return o.M
}

// klThreshold is the TensorRT calibration search (Migacz, "8-bit Inference
// with TensorRT", GTC 2017, slides 27-38): for every candidate number of
// bins i >= levels, P is the histogram cut at i with the clipped mass
// added to its last bin, Q is P merged into levels equal groups and
// expanded back over the nonzero bins of each group; the threshold is the
// upper edge (in bins) of the i minimizing KL(P || Q).
func klThreshold(h []int64, levels int) float64 {
	last := 0
	for i, c := range h {
		if c > 0 {
			last = i
		}
	}
	n := last + 1
	if n <= levels {
		return float64(n)
	}
	var outside int64
	for _, c := range h[n:] {
		outside += c
	}
	best, bestI := math.Inf(1), n
	p := make([]float64, n)
	q := make([]float64, n)
	// tail[i] = mass in bins >= i
	tail := make([]int64, n+1)
	for i := n - 1; i >= 0; i-- {
		tail[i] = tail[i+1] + h[i]
	}
	for i := levels; i <= n; i++ {
		for j := 0; j < i; j++ {
			p[j] = float64(h[j])
		}
		p[i-1] += float64(tail[i] + outside)
		// Merge h[0:i] (not the clipped P) into levels groups, spread each
		// group's mass evenly over its nonzero bins.
		for g := 0; g < levels; g++ {
			a, b := g*i/levels, (g+1)*i/levels
			var sum float64
			nz := 0
			for j := a; j < b; j++ {
				sum += float64(h[j])
				if h[j] != 0 {
					nz++
				}
			}
			for j := a; j < b; j++ {
				q[j] = 0
				if h[j] != 0 {
					q[j] = sum / float64(nz)
				}
			}
		}
		kl := klDiv(p[:i], q[:i])
		if kl < best {
			best, bestI = kl, i
		}
	}
	return float64(bestI)
}

// klDiv is KL(p || q) of two unnormalized histograms; bins where p > 0 and
// q = 0 get a small q (the smoothing keeps the divergence finite).
func klDiv(p, q []float64) float64 {
	var sp, sq float64
	for j := range p {
		sp += p[j]
		sq += q[j]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	const eps = 1e-10
	var d float64
	for j := range p {
		if p[j] == 0 {
			continue
		}
		pj := p[j] / sp
		qj := max(q[j]/sq, eps)
		d += pj * math.Log(pj/qj)
	}
	return d
}

// mseSteps is how many shrink factors of each end of the range MSE tries.
const mseSteps = 200

// mse shrinks the ends of the observed range [Min, Max] (with 0) to
// a*Max and b*Min, a, b in k/mseSteps for k = 1..mseSteps, keeping the
// uint8 quantization with the least squared error over the histogram (bin
// centers stand for their values): first a with b = 1, then b, then a
// again, each time the smallest factor on ties.
func (o *Observer) mse() (lo, hi float64, err error) {
	mn, mx := min(o.Min, 0), max(o.Max, 0)
	w := o.M / Bins
	type bc struct{ x, c float64 }
	var bins []bc
	for b := 0; b < 2*Bins; b++ {
		l, c := o.bin(b)
		if c > 0 {
			bins = append(bins, bc{l + w/2, float64(c)})
		}
	}
	cost := func(lo, hi float64) float64 {
		s32, z := Params(lo, hi)
		s := float64(s32)
		var e float64
		for _, b := range bins {
			q := min(max(math.RoundToEven(b.x/s)+float64(z), 0), 255)
			d := b.x - s*(q-float64(z))
			e += b.c * d * d
		}
		return e
	}
	lo, hi = mn, mx
	for pass := 0; pass < 3; pass++ {
		best := math.Inf(1)
		bl, bh := lo, hi
		for k := 1; k <= mseSteps; k++ {
			f := float64(k) / mseSteps
			l, h := lo, f*mx
			if pass == 1 {
				l, h = f*mn, hi
			}
			if e := cost(l, h); e < best {
				best, bl, bh = e, l, h
			}
		}
		lo, hi = bl, bh
		if mn == 0 {
			break
		}
	}
	return lo, hi, nil
}
