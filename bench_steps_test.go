package edgeresnet

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkResNetMinSteps runs ResNet-18/50 at 1 thread b.N times and
// reports the sum over plan steps of each step's fastest time: an estimate
// of the latency without interference, for machines shared with other jobs
// (contention only ever slows a step down). Use -benchtime=10x or so;
// BenchmarkResNet is the plain end-to-end measurement.
func BenchmarkResNetMinSteps(b *testing.B) {
	for _, depth := range []int{18, 50} {
		m := benchModel(b, depth, "auto")
		flops := 2 * float64(graphMACs(m.Graph()))
		b.Run(fmt.Sprintf("resnet%d", depth), func(b *testing.B) {
			s, err := m.NewSession(WithThreads(1))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			n := len(m.Plan().Steps())
			times, best := make([]time.Duration, n), make([]time.Duration, n)
			for i := range best {
				best[i] = 1 << 62
			}
			for i := 0; i < b.N; i++ {
				if err := s.RunProfile(times); err != nil {
					b.Fatal(err)
				}
				for j := range best {
					best[j] = min(best[j], times[j])
				}
			}
			var sum time.Duration
			for _, t := range best {
				sum += t
			}
			b.ReportMetric(sum.Seconds()*1e3, "ms/image")
			b.ReportMetric(flops/sum.Seconds()/1e9, "GFLOP/s")
		})
	}
}
