package preprocess

import (
	"fmt"
	"math"
)

// MaxSize bounds Resize, Height and Width. Larger values are almost
// certainly a corrupt manifest, and they would make Apply allocate
// gigabytes.
const MaxSize = 8192

// Validate reports whether the spec is usable: sizes in 1..MaxSize (Resize
// may also be 0), 1 or 3 channels, one finite Mean and one finite, non-zero
// Std per channel, a finite Scale > 0, and BGR only for color.
func (s Spec) Validate() error {
	if s.Resize < 0 || s.Resize > MaxSize {
		return fmt.Errorf("preprocess: spec resize %d out of range 0..%d", s.Resize, MaxSize)
	}
	if s.Height < 1 || s.Height > MaxSize || s.Width < 1 || s.Width > MaxSize {
		return fmt.Errorf("preprocess: spec size %dx%d (height x width) out of range 1..%d", s.Height, s.Width, MaxSize)
	}
	if s.Channels != 1 && s.Channels != 3 {
		return fmt.Errorf("preprocess: spec channels %d: want 1 or 3", s.Channels)
	}
	if s.BGR && s.Channels != 3 {
		return fmt.Errorf("preprocess: spec bgr needs 3 channels, have %d", s.Channels)
	}
	if !(s.Scale > 0) || math.IsInf(float64(s.Scale), 0) {
		return fmt.Errorf("preprocess: spec scale %v: want a finite value > 0", s.Scale)
	}
	if len(s.Mean) != s.Channels || len(s.Std) != s.Channels {
		return fmt.Errorf("preprocess: spec has %d mean and %d std values for %d channels", len(s.Mean), len(s.Std), s.Channels)
	}
	for c := 0; c < s.Channels; c++ {
		m, d := float64(s.Mean[c]), float64(s.Std[c])
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("preprocess: spec mean[%d] = %v is not finite", c, s.Mean[c])
		}
		if d == 0 || math.IsNaN(d) || math.IsInf(d, 0) {
			return fmt.Errorf("preprocess: spec std[%d] = %v: want finite and non-zero", c, s.Std[c])
		}
	}
	return nil
}
