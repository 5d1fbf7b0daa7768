package grad

import (
	"fmt"
	"testing"
)

// BenchmarkBatchNorm is a training Forward and Backward of ResNet-20's
// first-stage BatchNorm (128 x 28 x 28 x 16) at 1 and 2 threads.
func BenchmarkBatchNorm(b *testing.B) {
	s := Shape{128, 28, 28, 16}
	x, dy := fdRandom(1, s.Size(), -1, 1), fdRandom(2, s.Size(), -1, 1)
	for _, threads := range []int{1, 2} {
		for _, pass := range []string{"forward", "backward"} {
			b.Run(fmt.Sprintf("%s/threads=%d", pass, threads), func(b *testing.B) {
				bn := NewBatchNorm(s.C)
				bn.Threads = threads
				bn.Forward(x, s)
				for range b.N {
					if pass == "forward" {
						bn.Forward(x, s)
					} else {
						bn.Backward(dy)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Size()), "ns/value")
			})
		}
	}
}
