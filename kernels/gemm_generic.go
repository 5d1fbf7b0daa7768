package kernels

// The portable GEMM: a 4x8 register tile in plain Go. It is the reference
// for every assembly kernel and the fallback on CPUs without one (ARMv7,
// purego builds). Each output is accumulated over k in increasing order,
// then bias, residual and ReLU, so any split of M or N across threads gives
// bit-identical results.

const (
	genericMR = 4
	genericNR = 8
)

var gemmGeneric = &gemmImpl{name: "generic", mr: genericMR, nr: genericNR, tile: gemmTileGeneric}

func gemmTileGeneric(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, ep Epilogue) {
	var acc [genericMR][genericNR]float32
	if m == genericMR {
		gemmKernel4x8(k, a, lda, b, &acc)
	} else {
		for i := 0; i < m; i++ {
			row := a[i*lda : i*lda+k]
			for kk, av := range row {
				bp := b[kk*genericNR : kk*genericNR+genericNR]
				for j := range genericNR {
					acc[i][j] += av * bp[j]
				}
			}
		}
	}
	storeTile(m, n, &acc, c, ldc, &ep)
}

// gemmKernel4x8 keeps the 32 sums in locals so the compiler can hold most
// of them in registers; the k loop reads A once per row and B once.
func gemmKernel4x8(k int, a []float32, lda int, b []float32, acc *[genericMR][genericNR]float32) {
	a0 := a[0*lda : 0*lda+k]
	a1 := a[1*lda : 1*lda+k]
	a2 := a[2*lda : 2*lda+k]
	a3 := a[3*lda : 3*lda+k]
	b = b[:k*genericNR]
	var c00, c01, c02, c03, c04, c05, c06, c07 float32
	var c10, c11, c12, c13, c14, c15, c16, c17 float32
	var c20, c21, c22, c23, c24, c25, c26, c27 float32
	var c30, c31, c32, c33, c34, c35, c36, c37 float32
	for kk := 0; kk < k; kk++ {
		bp := (*[genericNR]float32)(b[kk*genericNR:])
		b0, b1, b2, b3, b4, b5, b6, b7 := bp[0], bp[1], bp[2], bp[3], bp[4], bp[5], bp[6], bp[7]
		x := a0[kk]
		c00 += x * b0
		c01 += x * b1
		c02 += x * b2
		c03 += x * b3
		c04 += x * b4
		c05 += x * b5
		c06 += x * b6
		c07 += x * b7
		x = a1[kk]
		c10 += x * b0
		c11 += x * b1
		c12 += x * b2
		c13 += x * b3
		c14 += x * b4
		c15 += x * b5
		c16 += x * b6
		c17 += x * b7
		x = a2[kk]
		c20 += x * b0
		c21 += x * b1
		c22 += x * b2
		c23 += x * b3
		c24 += x * b4
		c25 += x * b5
		c26 += x * b6
		c27 += x * b7
		x = a3[kk]
		c30 += x * b0
		c31 += x * b1
		c32 += x * b2
		c33 += x * b3
		c34 += x * b4
		c35 += x * b5
		c36 += x * b6
		c37 += x * b7
	}
	acc[0] = [genericNR]float32{c00, c01, c02, c03, c04, c05, c06, c07}
	acc[1] = [genericNR]float32{c10, c11, c12, c13, c14, c15, c16, c17}
	acc[2] = [genericNR]float32{c20, c21, c22, c23, c24, c25, c26, c27}
	acc[3] = [genericNR]float32{c30, c31, c32, c33, c34, c35, c36, c37}
}

// storeTile applies the epilogue to an m x n corner of acc and stores it.
func storeTile(m, n int, acc *[genericMR][genericNR]float32, c []float32, ldc int, ep *Epilogue) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			v := acc[i][j]
			if ep.Bias != nil {
				v += ep.Bias[j]
			}
			if ep.Res != nil {
				v += ep.Res[i*ep.LdRes+j]
			}
			if ep.Relu && v < 0 {
				v = 0
			}
			row[j] = v
		}
	}
}
