//go:build gc && !purego && (amd64 || arm64)

package kernels

// winoLanes wraps an asm transform of rows x cols on vectors of lanes
// channels: it checks the last vector of each side of the last rep once,
// runs the multiple-of-lanes channels of every rep in asm and the rest in
// tail.
func winoLanes(rows, cols, lanes int, asm func(*float32, int, *float32, int, int, int, int, int), tail winoFunc) winoFunc {
	return func(dst []float32, ds int, src []float32, ss, n, reps, dstep, sstep int) {
		if reps <= 0 {
			return
		}
		nv := n / lanes * lanes
		if nv > 0 {
			_ = src[(reps-1)*sstep+(cols-1)*ss+nv-1]
			_ = dst[(reps-1)*dstep+(rows-1)*ds+nv-1]
			asm(&dst[0], ds, &src[0], ss, nv, reps, dstep, sstep)
		}
		if nv < n {
			tail(dst[nv:], ds, src[nv:], ss, n-nv, reps, dstep, sstep)
		}
	}
}
