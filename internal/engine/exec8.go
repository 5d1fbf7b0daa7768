package engine

import (
	"unsafe"

	"github.com/edge-resnet/edge-resnet/graph"

	"github.com/edge-resnet/edge-resnet/kernels"
)

// asBytes views float32 memory as bytes (uint8 values share the arena).
func asBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// view8 is the uint8 value of shape s at arena offset off (in float32s).
func (e *Exec) view8(off int, s graph.Shape) []uint8 {
	b := 4 * off
	n := s.Size()
	return e.bytes[b : b+n : b+n]
}

// Value returns node i's value after Run when it is stored as float32 and
// still in the arena (plans compiled with KeepValues keep them all), or
// nil.
func (e *Exec) Value(i int) []float32 {
	p := e.plan
	if i < 0 || i >= len(p.offsets) || p.u8[i] {
		return nil
	}
	return e.view(p.offsets[i], p.Graph.Nodes[i].Shape)
}

// ValueBytes returns node i's value as the plan stores it: uint8 values as
// they are, float32 values by their little-endian bits (as Value keeps them
// alive, it needs CompileOptions.KeepValues), or nil for an index out of range.
func (e *Exec) ValueBytes(i int) []byte {
	p := e.plan
	if i < 0 || i >= len(p.offsets) {
		return nil
	}
	if p.u8[i] {
		return e.view8(p.offsets[i], p.Graph.Nodes[i].Shape)
	}
	return asBytes(e.view(p.offsets[i], p.Graph.Nodes[i].Shape))
}

func parallel8(st *step) bool {
	switch st.op {
	case graph.OpConv:
		return true
	case graph.OpDense:
		return st.w8.K*st.w8.N >= 1<<16
	case graph.OpMaxPool:
		return st.outShape.Size() >= 1<<16
	}
	return false
}

// part8 is part for int8 steps: the same splits as float32 (every output
// element computed by one worker; integer results do not depend on the
// split anyway).
func (e *Exec) part8(st *step, w int) {
	n := e.threads
	switch st.op {
	case graph.OpConv, graph.OpDense:
		if wg := st.wino8; wg != nil {
			// As for the GEMM: few tiles (14x14, 7x7), split output
			// channels, which repeats the cheap input transform but
			// halves each worker's share of U; otherwise tiles in units
			// of MR, which keeps the GEMM's row tiles whole.
			mr, tiles, panels := wg.MR(), wg.Tiles(), wg.Panels()
			if tiles < 4*mr*n && panels >= n {
				p0, p1 := split(panels, 1, w, n)
				e.winograd8(st, w, 0, tiles, p0, p1)
			} else {
				q0, q1 := split(tiles, mr, w, n)
				e.winograd8(st, w, q0, q1, 0, panels)
			}
			return
		}
		mr := st.w8.MR()
		px := st.conv.Pixels()
		panels := st.w8.Panels()
		if px < 4*mr*n && panels >= n {
			p0, p1 := split(panels, 1, w, n)
			e.conv8(st, w, 0, px, p0, p1)
		} else {
			x0, x1 := split(px, mr, w, n)
			e.conv8(st, w, x0, x1, 0, panels)
		}
	case graph.OpMaxPool:
		x0, x1 := split(st.outShape.H*st.outShape.W, 1, w, n)
		kernels.MaxPool8(&st.pool, e.view8(st.in, st.inShape), e.view8(st.out, st.outShape), x0, x1)
	}
}

func (e *Exec) conv8(st *step, w, px0, px1, p0, p1 int) {
	if px0 >= px1 || p0 >= p1 {
		return
	}
	rq := &e.rq[w]
	*rq = st.rq
	if st.in2 >= 0 {
		rq.Res = e.view8(st.in2, st.outShape)
	}
	kernels.Conv8(&st.conv, e.view8(st.in, st.inShape), &st.w8, e.view8(st.out, st.outShape), rq, px0, px1, p0, p1, e.scratch8[w])
}

func (e *Exec) winograd8(st *step, w, q0, q1, p0, p1 int) {
	if q0 >= q1 || p0 >= p1 {
		return
	}
	rq := &e.rq[w]
	*rq = st.rq
	if st.in2 >= 0 {
		rq.Res = e.view8(st.in2, st.outShape)
	}
	st.wino8.Run(e.view8(st.in, st.inShape), e.view8(st.out, st.outShape), rq, q0, q1, p0, p1, e.scratch8[w])
}

// serial8 runs an int8 step or a conversion on the calling goroutine.
func (e *Exec) serial8(st *step) {
	switch st.op {
	case graph.OpQuantize:
		kernels.Quantize(e.view(st.in, st.inShape), e.view8(st.out, st.outShape), st.q.Scale, st.q.Zero)
		return
	case graph.OpDequantize:
		kernels.Dequantize(e.view8(st.in, st.inShape), e.view(st.out, st.outShape), st.q.Scale, st.q.Zero)
		return
	}
	in, out := e.view8(st.in, st.inShape), e.view8(st.out, st.outShape)
	switch st.op {
	case graph.OpConv, graph.OpDense:
		if wg := st.wino8; wg != nil {
			e.winograd8(st, 0, 0, wg.Tiles(), 0, wg.Panels())
		} else {
			e.conv8(st, 0, 0, st.conv.Pixels(), 0, st.w8.Panels())
		}
	case graph.OpMaxPool:
		kernels.MaxPool8(&st.pool, in, out, 0, st.outShape.H*st.outShape.W)
	case graph.OpGlobalAvgPool:
		hw := st.inShape.H * st.inShape.W
		scale := float32(float64(st.q.Scale) / (float64(hw) * float64(st.qOut.Scale)))
		kernels.GlobalAvgPool8(in, hw, st.inShape.C, st.q.Zero, scale, st.qOut.Zero, out)
	case graph.OpAdd:
		kernels.Add8(in, e.view8(st.in2, st.inShape), out, &st.add8)
	case graph.OpPad:
		kernels.Pad(in, dims(st.inShape), st.pad.Before, st.pad.After, uint8(st.q.Zero), out)
	case graph.OpSlice:
		kernels.Slice(in, dims(st.inShape), st.slice.Start, st.slice.Step, dims(st.outShape), out)
	case graph.OpConcat:
		for _, part := range st.concat {
			kernels.ConcatPart(e.view8(part.off, part.shape), dims(part.shape), out, dims(st.outShape), int(e.plan.Graph.Nodes[st.node].Axis), part.at)
		}
	case graph.OpFlatten:
		kernels.FlattenNCHW(in, dims(st.inShape), out)
	}
}
