package kernels

import "fmt"

// Int8 grouped convolution (GroupConv8): the grouping of GroupConvGemm
// (group gr's Cout/G outputs see only its C/G inputs; HWIO weights with
// I = C/G) on the exact int8 GEMM. For output pixel p = oy*OW + ox and
// channel co of group gr = co / (Cout/G), with cig = C/G:
//
//	acc = Bias[co] + Σ over the taps (kh, kw) inside the input, ci < cig of
//	      (in[(ih*W + iw)*C + gr*cig + ci] - ZeroA) · w[((kh*KW+kw)*cig + ci)*Cout + co]
//	out[p*Cout + co] = Requantize(acc, Scale[co], Res != nil, Res[p*Cout + co], ResZero, ResScale, ZeroOut, Lo)
//
// with ih = oy*StrideH - PadTop + kh*DilH, iw = ox*StrideW - PadLeft +
// kw*DilW. A tap in the padding is the real zero (an input equal to
// ZeroA) and adds nothing. The sum is an exact int32 (as GemmU8's), so
// the result does not depend on the kernel path or on how pixels are
// split across calls.
//
// It runs as one GEMM per group: the group's receptive fields gathered
// into rows of K8 = KH*KW*cig rounded up to KMult bytes (padded with
// ZeroA, which meets zero weights), times the group's (K8 x Cout/G)
// weight matrix, requantized by GemmU8 with the group's slice of the
// per-channel Scale and Bias and written at column gr*Cout/G of the
// output (ldc = Cout). Groups with fewer outputs than the kernel's panel
// (NR columns) are packed PerGemm at a time into one block-diagonal
// matrix (zeros between the groups), which runs the same multiply-adds
// (a narrow group fills a whole panel anyway, now the zeros are along K)
// in PerGemm times fewer, longer gathers and GEMM calls; the integer sums,
// hence the outputs, are the same.

// GroupedB8 is the int8 weights of a grouped convolution packed by
// PackGrouped8: one PackedB8 per PerGemm consecutive groups (one per
// group when PerGemm is 1), each for the kernel PackB8 chose for it (the
// Set's int8 GEMM, or its narrow variant when its weights allow).
type GroupedB8 struct {
	Groups  int
	PerGemm int        // groups per matrix, a divisor of Groups
	B       []PackedB8 // Groups/PerGemm matrices, K8 x PerGemm*Cout/G
	// the geometry the weights were packed for
	c, cout, kh, kw int
}

// Bytes is the memory the packed weights take.
func (w *GroupedB8) Bytes() int64 {
	var n int64
	for i := range w.B {
		n += w.B[i].Bytes()
	}
	return n
}

// Kernel names the int8 GEMM kernel of the matrices ("a+b" when some got
// the narrow variant and others not).
func (w *GroupedB8) Kernel() string {
	name := ""
	for i := range w.B {
		if k := w.B[i].Kernel(); name == "" {
			name = k
		} else if k != name {
			return w.B[0].Kernel() + "+" + k
		}
	}
	return name
}

// MR is the row tile of the matrices' kernel, for splitting pixels.
func (w *GroupedB8) MR() int { return w.B[0].MR() }

// groupK8 is the GEMM depth of per groups: KH*KW*per*(C/G) rounded up to
// KMult.
func groupK8(g *ConvGeom, groups, per int) int {
	return (g.KH*g.KW*per*(g.C/groups) + KMult - 1) / KMult * KMult
}

// groupsPerGemm is how many groups PackGrouped8 packs into one matrix for
// a kernel of nr columns: the largest divisor of groups whose outputs fit
// in nr columns (1 if a group's outputs alone take more than half).
func groupsPerGemm(g *ConvGeom, groups, nr int) int {
	cog := g.Cout / groups
	per := 1
	for s := 2; s*cog <= nr && s <= groups; s++ {
		if groups%s == 0 {
			per = s
		}
	}
	return per
}

// GroupConv8Scratch is the scratch (in bytes) one worker needs for
// GroupConv8 with weights w: a block of gathered rows of one matrix (none
// for a 1x1 stride-1 unpadded convolution whose matrices take a multiple
// of KMult input channels, whose input already is their GEMM operand).
func GroupConv8Scratch(g *ConvGeom, w *GroupedB8) int {
	return groupScratch8(g, w.Groups, w.PerGemm, w.MR())
}

// groupScratch8 is GroupConv8's scratch for per groups per matrix and a
// kernel of row tile mr.
func groupScratch8(g *ConvGeom, groups, per, mr int) int {
	if groupDirect8(g, groups, per) {
		return 0
	}
	k8 := groupK8(g, groups, per)
	return conv8BlockRows(k8, mr) * k8
}

// groupDirect8 reports whether each matrix's GEMM can read its rows from
// the input in place (lda = C).
func groupDirect8(g *ConvGeom, groups, per int) bool {
	return g.Direct() && per*(g.C/groups)%KMult == 0
}

// PackGrouped8 packs grouped-conv int8 weights (HWIO with I = C/G, as
// graph.Conv's) for GroupConv8 on the Set's int8 GEMM, with groupsPerGemm
// groups per matrix for the kernel PackB8 will choose.
func (s *Set) PackGrouped8(g *ConvGeom, groups int, w []int8) GroupedB8 {
	nr := s.gemm8.nr
	if s.Gemm8UsesNarrow(w) {
		nr = s.gemm8.narrow.nr
	}
	per := 1
	if groups >= 1 && g.C%groups == 0 && g.Cout%groups == 0 {
		per = groupsPerGemm(g, groups, nr)
	}
	return s.packGrouped8(g, groups, per, w)
}

// packGrouped8 packs the weights per groups per matrix: block-diagonal
// (KH*KW*per*cig) x (per*cog) matrices in (tap, group, ci) row order,
// padded with zero rows to K8.
func (s *Set) packGrouped8(g *ConvGeom, groups, per int, w []int8) GroupedB8 {
	if groups < 1 || g.C%groups != 0 || g.Cout%groups != 0 || g.KH < 1 || g.KW < 1 ||
		len(w) != g.KH*g.KW*(g.C/groups)*g.Cout || per < 1 || groups%per != 0 {
		panic(fmt.Sprintf("kernels.PackGrouped8: %d weights for %+v groups=%d (%d per GEMM)", len(w), *g, groups, per))
	}
	out := GroupedB8{Groups: groups, PerGemm: per, B: make([]PackedB8, groups/per), c: g.C, cout: g.Cout, kh: g.KH, kw: g.KW}
	cig, cog, k8 := g.C/groups, g.Cout/groups, groupK8(g, groups, per)
	n := per * cog
	m := make([]int8, k8*n)
	for i := range out.B {
		clear(m)
		for t := range g.KH * g.KW {
			for s := range per {
				for ci := range cig {
					r := (t*per+s)*cig + ci // row of the merged matrix
					copy(m[r*n+s*cog:][:cog], w[(t*cig+ci)*g.Cout+(i*per+s)*cog:][:cog])
				}
			}
		}
		out.B[i] = s.PackB8(m, k8, n)
	}
	return out
}

// GroupConv8 computes output pixels [px0, px1) of the int8 grouped
// convolution defined above: in is H*W*C uint8 values with zero point
// rq.ZeroA, out OH*OW*Cout, w packed by PackGrouped8 for g (it runs on
// the kernels it was packed for), rq's Scale and Bias (nil or) Cout
// values, rq.Res (nil or) the residual with the output's layout (rq.LdRes
// is ignored), scratch GroupConv8Scratch(g, w) bytes. Pixels may be split
// across calls (threads) at will: the results do not change. out must
// not overlap in or the scratch. It allocates nothing.
func GroupConv8(g *ConvGeom, w *GroupedB8, in []uint8, out []uint8, rq *Requant, px0, px1 int, scratch []byte) {
	checkGroupConv8(g, w, len(in), len(out), rq, px0, px1, len(scratch))
	if px0 >= px1 {
		return
	}
	cn, n := w.PerGemm*g.C/w.Groups, w.PerGemm*g.Cout/w.Groups // input and output channels per matrix
	k8 := groupK8(g, w.Groups, w.PerGemm)
	direct := groupDirect8(g, w.Groups, w.PerGemm)
	rows := px1 - px0
	if !direct {
		rows = conv8BlockRows(k8, w.B[0].MR())
	}
	var taps gatherTaps
	taps.init(g)
	sub := *rq
	sub.LdRes = g.Cout
	for b0 := px0; b0 < px1; b0 += rows {
		b1 := min(px1, b0+rows)
		for i := range w.B {
			a, lda := scratch, k8
			if direct {
				a, lda = in[b0*g.C+i*cn:], g.C
			} else {
				taps.gather(g, in, uint8(rq.ZeroA), scratch, i*cn, cn, k8, b0, b1)
			}
			sub.Scale = rq.Scale[i*n:]
			if rq.Bias != nil {
				sub.Bias = rq.Bias[i*n:]
			}
			if rq.Res != nil {
				sub.Res = rq.Res[b0*g.Cout+i*n:]
			}
			b := &w.B[i]
			GemmU8(b1-b0, a, lda, b, out[b0*g.Cout+i*n:], g.Cout, &sub, 0, b.Panels())
		}
	}
}

// checkGroupConv8 panics, naming GroupConv8, unless its arguments agree
// with each other.
func checkGroupConv8(g *ConvGeom, w *GroupedB8, nIn, nOut int, rq *Requant, px0, px1, nScratch int) {
	bad := ""
	outN := g.Pixels() * g.Cout
	switch {
	case w.Groups < 1 || w.PerGemm < 1 || w.Groups%w.PerGemm != 0 || len(w.B) != w.Groups/w.PerGemm ||
		w.c != g.C || w.cout != g.Cout || w.kh != g.KH || w.kw != g.KW:
		bad = fmt.Sprintf("weights packed for C=%d Cout=%d %dx%d in %d groups, %d matrices", w.c, w.cout, w.kh, w.kw, w.Groups, len(w.B))
	case g.H < 1 || g.W < 1 || g.OH < 1 || g.OW < 1 || g.StrideH < 1 || g.StrideW < 1 || g.DilH < 1 || g.DilW < 1 ||
		g.PadTop < 0 || g.PadLeft < 0:
		bad = "geometry"
	case nIn < g.H*g.W*g.C || nOut < outN:
		bad = fmt.Sprintf("len(in)=%d len(out)=%d", nIn, nOut)
	case px0 < 0 || px1 > g.Pixels():
		bad = fmt.Sprintf("pixels [%d, %d) of %d", px0, px1, g.Pixels())
	case nScratch < GroupConv8Scratch(g, w):
		bad = fmt.Sprintf("len(scratch)=%d, want %d", nScratch, GroupConv8Scratch(g, w))
	case len(rq.Scale) < g.Cout || rq.Bias != nil && len(rq.Bias) < g.Cout || rq.Res != nil && len(rq.Res) < outN ||
		rq.ZeroA < 0 || rq.ZeroA > 255 || rq.Lo < 0 || rq.Lo > 255:
		bad = fmt.Sprintf("requantization len(Scale)=%d len(Bias)=%d len(Res)=%d ZeroA=%d Lo=%d",
			len(rq.Scale), len(rq.Bias), len(rq.Res), rq.ZeroA, rq.Lo)
	}
	if bad == "" {
		k8, n := groupK8(g, w.Groups, w.PerGemm), w.PerGemm*g.Cout/w.Groups
		for i := range w.B {
			if b := &w.B[i]; b.K != k8 || b.N != n || b.impl == nil {
				bad = fmt.Sprintf("matrix %d packed as %dx%d for kernel %q", i, b.K, b.N, b.Kernel())
				break
			}
		}
	}
	if bad != "" {
		panic(fmt.Sprintf("kernels.GroupConv8: bad arguments (%s) %+v", bad, *g))
	}
}

// gatherTaps are the input offsets of a filter's taps from its first,
// (kh*DilH*W + kw*DilW)*C, for the pixels whose window is inside the
// input (filters of at most maxGatherTaps taps; larger ones take the
// general path).
type gatherTaps struct {
	n   int
	off [maxGatherTaps]int
}

const maxGatherTaps = 49

func (t *gatherTaps) init(g *ConvGeom) {
	if g.KH*g.KW > maxGatherTaps {
		return
	}
	for kh := range g.KH {
		for kw := range g.KW {
			t.off[t.n] = (kh*g.DilH*g.W + kw*g.DilW) * g.C
			t.n++
		}
	}
}

// gather writes, for each output pixel in [px0, px1), one row of k8
// bytes: input channels [c0, c0+cn) of each tap in (kh, kw) order, pad
// where the tap is outside the input and for the depth past KH*KW*cn.
func (t *gatherTaps) gather(g *ConvGeom, in []uint8, pad uint8, dst []uint8, c0, cn, k8, px0, px1 int) {
	oh, ow := px0/g.OW, px0%g.OW
	spanH, spanW := (g.KH-1)*g.DilH, (g.KW-1)*g.DilW
	for p := px0; p < px1; p++ {
		row := dst[(p-px0)*k8 : (p-px0+1)*k8]
		ih0, iw0 := oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft
		if t.n > 0 && ih0 >= 0 && iw0 >= 0 && ih0+spanH < g.H && iw0+spanW < g.W {
			gatherInside(row, in[(ih0*g.W+iw0)*g.C+c0:], t.off[:t.n], cn)
			if j := t.n * cn; j < k8 {
				fill(row[j:], pad)
			}
		} else {
			gatherEdge(g, in, pad, row, c0, cn, ih0, iw0)
		}
		if ow++; ow == g.OW {
			ow = 0
			oh++
		}
	}
}

// gatherInside copies cn bytes at src[off] to row[i*cn:] for each tap i,
// with fixed-size moves for the common widths: 16 bytes is the largest
// array the compiler moves inline (and a call to memmove costs more than
// moving 4 to 64 bytes); array pointers leave one bounds check per tap.
func gatherInside(row, src []uint8, off []int, cn int) {
	switch cn {
	case 4:
		for _, o := range off {
			*(*[4]uint8)(row) = *(*[4]uint8)(src[o:])
			row = row[4:]
		}
	case 8:
		for _, o := range off {
			*(*[8]uint8)(row) = *(*[8]uint8)(src[o:])
			row = row[8:]
		}
	case 16:
		for _, o := range off {
			*(*[16]uint8)(row) = *(*[16]uint8)(src[o:])
			row = row[16:]
		}
	case 32:
		for _, o := range off {
			d, s := (*[32]uint8)(row), (*[32]uint8)(src[o:])
			*(*[16]uint8)(d[:16]) = *(*[16]uint8)(s[:16])
			*(*[16]uint8)(d[16:]) = *(*[16]uint8)(s[16:])
			row = row[32:]
		}
	default:
		for i, o := range off {
			copyTap(row[i*cn:(i+1)*cn], src[o:o+cn])
		}
	}
}

// copyTap is copy(dst, src) for len(dst) == len(src), 16 bytes at a time
// when it is a multiple of 16 up to 64.
func copyTap(dst, src []uint8) {
	n := len(dst)
	if n%16 != 0 || n > 64 {
		copy(dst, src)
		return
	}
	src = src[:n]
	for j := 0; j < n; j += 16 {
		*(*[16]uint8)(dst[j:]) = *(*[16]uint8)(src[j:])
	}
}

// gatherEdge is one row of gather for a pixel whose window starts at
// input (ih0, iw0), tap by tap.
func gatherEdge(g *ConvGeom, in []uint8, pad uint8, row []uint8, c0, cn, ih0, iw0 int) {
	j := 0
	for kh := 0; kh < g.KH; kh++ {
		ih := ih0 + kh*g.DilH
		if ih < 0 || ih >= g.H {
			fill(row[j:j+g.KW*cn], pad)
			j += g.KW * cn
			continue
		}
		src := in[ih*g.W*g.C+c0:]
		for kw := 0; kw < g.KW; kw++ {
			if iw := iw0 + kw*g.DilW; iw < 0 || iw >= g.W {
				fill(row[j:j+cn], pad)
			} else {
				copyTap(row[j:j+cn], src[iw*g.C:][:cn])
			}
			j += cn
		}
	}
	if j < len(row) {
		fill(row[j:], pad)
	}
}
