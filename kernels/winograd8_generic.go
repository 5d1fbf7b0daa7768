package kernels

// The stages of Winograd8 in portable Go: the references of the SIMD
// implementations (which must agree bit for bit; all of it is integer
// arithmetic except the requantization, which is Requantize itself).

// wino8GemmGo returns the int16 GEMM over one panel of nr columns.
func wino8GemmGo(nr int) func(m, k2 int, a []int16, lda int, b []int16, c []int32, ldc int) {
	return func(m, k2 int, a []int16, lda int, b []int16, c []int32, ldc int) {
		b = b[:k2*nr*2]
		for i := 0; i < m; i++ {
			row := a[i*lda : i*lda+2*k2]
			out := c[i*ldc : i*ldc+nr]
			clear(out)
			for p := 0; p < k2; p++ {
				a0, a1 := int32(row[2*p]), int32(row[2*p+1])
				bp := b[p*nr*2 : (p+1)*nr*2]
				for j := range out {
					out[j] += a0*int32(bp[2*j]) + a1*int32(bp[2*j+1])
				}
			}
		}
	}
}

// wino8InGo is the input transform: a 1-D pass down the columns, then
// along the rows, with Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
func wino8InGo(dst []int16, ds int, src []uint8, rs, ps, n int, zero int32) {
	for c := 0; c < n; c++ {
		var d [4][4]int16
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				d[y][x] = int16(int32(src[y*rs+x*ps+c]) - zero)
			}
		}
		var t [4][4]int16
		for x := 0; x < 4; x++ {
			t[0][x] = d[0][x] - d[2][x]
			t[1][x] = d[1][x] + d[2][x]
			t[2][x] = d[2][x] - d[1][x]
			t[3][x] = d[1][x] - d[3][x]
		}
		for i := 0; i < 4; i++ {
			dst[(i*4+0)*ds+c] = t[i][0] - t[i][2]
			dst[(i*4+1)*ds+c] = t[i][1] + t[i][2]
			dst[(i*4+2)*ds+c] = t[i][2] - t[i][1]
			dst[(i*4+3)*ds+c] = t[i][1] - t[i][3]
		}
	}
}

// wino8OutGo is the output transform, Aᵀ = [1 1 1 0; 0 1 -1 -1], the exact
// division by 4 and the requantization.
func wino8OutGo(dst []uint8, rs, ps int, src []int32, ss, n int, rq Requant) {
	hasRes := rq.Res != nil
	for c := 0; c < n; c++ {
		var t [2][4]int32
		for x := 0; x < 4; x++ {
			m0, m1, m2, m3 := src[x*ss+c], src[(4+x)*ss+c], src[(8+x)*ss+c], src[(12+x)*ss+c]
			t[0][x] = m0 + m1 + m2
			t[1][x] = m1 - m2 - m3
		}
		for i := 0; i < 2; i++ {
			y := [2]int32{t[i][0] + t[i][1] + t[i][2], t[i][1] - t[i][2] - t[i][3]}
			for k := 0; k < 2; k++ {
				acc := y[k] >> 2 // exact: y = 4·acc
				if rq.Bias != nil {
					acc += rq.Bias[c]
				}
				o := i*rs + k*ps + c
				var r uint8
				if hasRes {
					r = rq.Res[o]
				}
				dst[o] = Requantize(acc, rq.Scale[c], hasRes, r, rq.ResZero, rq.ResScale, rq.ZeroOut, rq.Lo)
			}
		}
	}
}
