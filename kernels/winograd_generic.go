package kernels

// The 1-D Winograd transforms on channel vectors, in portable Go. Each
// applies one fixed matrix to t vectors of n channels (vector j at
// src[j*ss:], result i at dst[i*ds:]); the loop over channels is innermost
// and free of bounds checks (every stream is resliced to length n). The
// common subexpressions follow the symmetric structure of the points ±p:
// rows for p and -p share their even and odd parts.

// winoIn4 applies Bᵀ of F(2x2, 3x3).
func winoIn4(dst []float32, ds int, src []float32, ss, n int) {
	s0, s1, s2, s3 := src[:n], src[ss:][:n], src[2*ss:][:n], src[3*ss:][:n]
	d0, d1, d2, d3 := dst[:n], dst[ds:][:n], dst[2*ds:][:n], dst[3*ds:][:n]
	for c := range s0 {
		x0, x1, x2, x3 := s0[c], s1[c], s2[c], s3[c]
		d0[c] = x0 - x2
		d1[c] = x1 + x2
		d2[c] = x2 - x1
		d3[c] = x1 - x3
	}
}

// winoOut2 applies Aᵀ of F(2x2, 3x3).
func winoOut2(dst []float32, ds int, src []float32, ss, n int) {
	s0, s1, s2, s3 := src[:n], src[ss:][:n], src[2*ss:][:n], src[3*ss:][:n]
	d0, d1 := dst[:n], dst[ds:][:n]
	for c := range s0 {
		x1, x2 := s1[c], s2[c]
		d0[c] = s0[c] + x1 + x2
		d1[c] = x1 - x2 - s3[c]
	}
}

// winoIn6 applies Bᵀ of F(4x4, 3x3).
func winoIn6(dst []float32, ds int, src []float32, ss, n int) {
	s0, s1, s2 := src[:n], src[ss:][:n], src[2*ss:][:n]
	s3, s4, s5 := src[3*ss:][:n], src[4*ss:][:n], src[5*ss:][:n]
	d0, d1, d2 := dst[:n], dst[ds:][:n], dst[2*ds:][:n]
	d3, d4, d5 := dst[3*ds:][:n], dst[4*ds:][:n], dst[5*ds:][:n]
	for c := range s0 {
		x0, x1, x2, x3, x4, x5 := s0[c], s1[c], s2[c], s3[c], s4[c], s5[c]
		d0[c] = 4*x0 - 5*x2 + x4
		a, b := x3+x4, 4*(x1+x2)
		d1[c] = a - b
		a, b = x4-x3, 4*(x1-x2)
		d2[c] = a + b
		a, b = x4-x2, 2*(x3-x1)
		d3[c] = a + b
		d4[c] = a - b
		d5[c] = 4*x1 - 5*x3 + x5
	}
}

// winoOut4 applies Aᵀ of F(4x4, 3x3).
func winoOut4(dst []float32, ds int, src []float32, ss, n int) {
	s0, s1, s2 := src[:n], src[ss:][:n], src[2*ss:][:n]
	s3, s4, s5 := src[3*ss:][:n], src[4*ss:][:n], src[5*ss:][:n]
	d0, d1, d2, d3 := dst[:n], dst[ds:][:n], dst[2*ds:][:n], dst[3*ds:][:n]
	for c := range s0 {
		x1, x2, x3, x4 := s1[c], s2[c], s3[c], s4[c]
		a, b := x1+x2, x1-x2
		p, q := x3+x4, x3-x4
		d0[c] = s0[c] + a + p
		d1[c] = b + 2*q
		d2[c] = a + 4*p
		d3[c] = b + 8*q + s5[c]
	}
}

// winoIn8 applies Bᵀ of F(6x6, 3x3).
func winoIn8(dst []float32, ds int, src []float32, ss, n int) {
	s0, s1, s2, s3 := src[:n], src[ss:][:n], src[2*ss:][:n], src[3*ss:][:n]
	s4, s5, s6, s7 := src[4*ss:][:n], src[5*ss:][:n], src[6*ss:][:n], src[7*ss:][:n]
	d0, d1, d2, d3 := dst[:n], dst[ds:][:n], dst[2*ds:][:n], dst[3*ds:][:n]
	d4, d5, d6, d7 := dst[4*ds:][:n], dst[5*ds:][:n], dst[6*ds:][:n], dst[7*ds:][:n]
	for c := range s0 {
		x0, x1, x2, x3, x4, x5, x6, x7 := s0[c], s1[c], s2[c], s3[c], s4[c], s5[c], s6[c], s7[c]
		d0[c] = x0 - x6 + 5.25*(x4-x2)
		d7[c] = x7 - x1 + 5.25*(x3-x5)
		e, o := x2+x6-4.25*x4, x1+x5-4.25*x3
		d1[c] = e + o
		d2[c] = e - o
		e, o = x6+0.25*x2-1.25*x4, 0.5*x1-2.5*x3+2*x5
		d3[c] = e + o
		d4[c] = e - o
		e, o = x6+4*x2-5*x4, 2*x1-2.5*x3+0.5*x5
		d5[c] = e + o
		d6[c] = e - o
	}
}

// winoOut6 applies Aᵀ of F(6x6, 3x3).
func winoOut6(dst []float32, ds int, src []float32, ss, n int) {
	s0, s1, s2, s3 := src[:n], src[ss:][:n], src[2*ss:][:n], src[3*ss:][:n]
	s4, s5, s6, s7 := src[4*ss:][:n], src[5*ss:][:n], src[6*ss:][:n], src[7*ss:][:n]
	d0, d1, d2 := dst[:n], dst[ds:][:n], dst[2*ds:][:n]
	d3, d4, d5 := dst[3*ds:][:n], dst[4*ds:][:n], dst[5*ds:][:n]
	for c := range s0 {
		x1, x2, x3, x4, x5, x6 := s1[c], s2[c], s3[c], s4[c], s5[c], s6[c]
		a, b := x1+x2, x1-x2
		p, q := x3+x4, x3-x4
		r, s := x5+x6, x5-x6
		d0[c] = s0[c] + a + p + r
		d1[c] = b + 2*q + 0.5*s
		d2[c] = a + 4*p + 0.25*r
		d3[c] = b + 8*q + 0.125*s
		d4[c] = a + 16*p + 0.0625*r
		d5[c] = b + 32*q + 0.03125*s + s7[c]
	}
}
