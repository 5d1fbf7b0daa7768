package preprocess

import (
	"fmt"
	"math"
)

// MaxSize bounds Resize, Height and Width. Larger values are almost
// certainly a corrupt manifest, and they would make Apply allocate
// gigabytes.
const MaxSize = 8192

// Bounds of the normalization parameters. Real models use Scale 1/255,
// 1/127.5 or 1, Std about 0.2 to 1 for inputs in 0..1 or about 1 to 128
// for raw pixels, and Mean within a few hundred: each at least three
// orders of magnitude inside these. Outside them a value is a typo or a
// corrupt manifest (convert --std 1e-45 used to be accepted, and every
// input then became Inf or NaN). Within them, (x*Scale - Mean)/Std is
// at most about 2.6e14 in magnitude for a pixel value x in 0..255, so
// Apply's output is always finite.
const (
	minParam float32 = 1e-6 // smallest Scale and Std
	maxParam float32 = 1e6  // largest Scale and Std, and largest |Mean|
)

// Validate reports whether the spec is usable: Resize in 0..MaxSize,
// Height and Width in 1..MaxSize, 1 or 3 channels (BGR only for 3), one
// Mean and one Std per channel, Scale and every Std finite and in
// [1e-6, 1e6], every Mean finite and within ±1e6. Errors name the field
// and its value.
func (s Spec) Validate() error {
	if s.Resize < 0 || s.Resize > MaxSize {
		return fmt.Errorf("preprocess: spec resize %d out of range 0..%d (0 resizes straight to height x width)", s.Resize, MaxSize)
	}
	if s.Height < 1 || s.Height > MaxSize {
		return fmt.Errorf("preprocess: spec height %d out of range 1..%d", s.Height, MaxSize)
	}
	if s.Width < 1 || s.Width > MaxSize {
		return fmt.Errorf("preprocess: spec width %d out of range 1..%d", s.Width, MaxSize)
	}
	if s.Channels != 1 && s.Channels != 3 {
		return fmt.Errorf("preprocess: spec channels %d: want 1 or 3", s.Channels)
	}
	if s.BGR && s.Channels != 3 {
		return fmt.Errorf("preprocess: spec bgr needs 3 channels, have %d", s.Channels)
	}
	if err := checkParam("scale", -1, s.Scale, minParam); err != nil {
		return err
	}
	if len(s.Mean) != s.Channels || len(s.Std) != s.Channels {
		return fmt.Errorf("preprocess: spec has %d mean and %d std values for %d channels", len(s.Mean), len(s.Std), s.Channels)
	}
	for c := 0; c < s.Channels; c++ {
		if err := checkParam("mean", c, s.Mean[c], -maxParam); err != nil {
			return err
		}
		if err := checkParam("std", c, s.Std[c], minParam); err != nil {
			return err
		}
	}
	return nil
}

// checkParam checks that v (field name, element i or -1) is finite and in
// [lo, maxParam].
func checkParam(name string, i int, v, lo float32) error {
	if v >= lo && v <= maxParam { // NaN and ±Inf fail
		return nil
	}
	x := float64(v)
	if i >= 0 {
		name = fmt.Sprintf("%s[%d]", name, i)
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Errorf("preprocess: spec %s = %v is not finite", name, v)
	}
	return fmt.Errorf("preprocess: spec %s = %v is outside [%g, %g]", name, v, lo, maxParam)
}
