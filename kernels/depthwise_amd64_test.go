//go:build gc && !purego

package kernels

import "testing"

// TestDepthwiseTailRegistered: the 16-lane depthwise implementations hand
// the channels they leave to the AVX2 kernels wherever the CPU has AVX2
// (TestDepthwiseTail checks that they run); AVX2's leaves them to Go.
func TestDepthwiseTailRegistered(t *testing.T) {
	var want *depthwiseImpl
	if hasAVX2() {
		want = depthwiseAVX2
	}
	for _, dw := range []*depthwiseImpl{depthwiseAVX512, depthwiseAVX512VNNI} {
		if dw.tail != want {
			t.Errorf("%s: tail %v, want %v", dw.name, dw.tail, want)
		}
	}
	if depthwiseAVX2.tail != nil {
		t.Errorf("avx2: tail %s", depthwiseAVX2.tail.name)
	}
}
