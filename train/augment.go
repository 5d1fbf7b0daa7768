package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

// Augment is the random augmentation of training images, applied to each
// preprocessed image (one h x w x c NHWC float32 tensor) in this order:
//
//  1. Scale jitter, when MaxScale > 0: a random resized crop as
//     torchvision's RandomResizedCrop(scale=(MinScale, MaxScale),
//     ratio=(3/4, 4/3)): a box of that fraction of the area and aspect
//     ratio, at a random place, resized back to h x w bilinearly
//     (align_corners=False, edges clamped, no antialiasing). Unlike
//     torchvision it works on the already preprocessed tensor, not on the
//     full-size photo, so a small box is upsampled from the model's input
//     resolution: simple, and fine for modest jitter (MinScale 0.5 and
//     above); for strong zoom on large photos, preprocess with a larger
//     Resize first.
//  2. Random crop with padding, when Pad > 0: as torchvision's
//     RandomCrop(size, padding=Pad), the image is padded by Pad pixels on
//     every side and an h x w window is cut at a uniformly random offset
//     in 0..2*Pad on each axis. The padding is the fill value of each
//     channel: the Loader passes the preprocessed value of a black pixel,
//     which is what torchvision's zero padding of the PIL image becomes
//     after ToTensor and Normalize.
//  3. Horizontal flip with probability 0.5, when Flip is set.
//
// The random draws come from the *rand.Rand the caller passes, in the
// order above, so an image's augmentation is a function of that
// generator's seed alone.
type Augment struct {
	Pad      int     // padding of the random crop, 0 for none
	Flip     bool    // horizontal flip with probability 0.5
	MinScale float64 // scale jitter: the box's area fraction, in (0, 1]
	MaxScale float64 // 0 for no scale jitter
}

// Validate checks the parameters.
func (a Augment) Validate() error {
	if a.Pad < 0 {
		return fmt.Errorf("train: augmentation padding %d < 0", a.Pad)
	}
	if a.MaxScale != 0 && !(a.MinScale > 0 && a.MinScale <= a.MaxScale && a.MaxScale <= 1) {
		return fmt.Errorf("train: scale jitter %g..%g: want 0 < min <= max <= 1", a.MinScale, a.MaxScale)
	}
	return nil
}

// Apply augments the h x w x c image x in place, drawing from r. fill is
// the padding value of each channel (len c). tmp is scratch space of at
// least len(x) values, needed when Pad or MaxScale is set.
func (a Augment) Apply(x []float32, h, w, c int, fill []float32, r *rand.Rand, tmp []float32) {
	n := h * w * c
	if a.MaxScale > 0 {
		y0, x0, bh, bw := resizedCropBox(h, w, a.MinScale, a.MaxScale, r)
		copy(tmp[:n], x[:n])
		ResizedCrop(x, tmp, h, w, c, y0, x0, bh, bw)
	}
	if a.Pad > 0 {
		dy := r.IntN(2*a.Pad + 1)
		dx := r.IntN(2*a.Pad + 1)
		copy(tmp[:n], x[:n])
		CropPad(x, tmp, h, w, c, a.Pad, dy, dx, fill)
	}
	if a.Flip && r.IntN(2) == 1 {
		preprocess.FlipH(x, h, w, c)
	}
}

// CropPad writes to dst the h x w window at offset (dy, dx) of src (h x w
// x c) padded by pad pixels of fill on every side: dst(y, x) is
// src(y+dy-pad, x+dx-pad), or fill outside src. dy = dx = pad copies src.
// dst and src must not overlap.
func CropPad(dst, src []float32, h, w, c, pad, dy, dx int, fill []float32) {
	for y := 0; y < h; y++ {
		row := dst[y*w*c : (y+1)*w*c]
		sy := y + dy - pad
		if sy < 0 || sy >= h {
			fillPixels(row, fill, c)
			continue
		}
		// Output columns [lo, hi) come from src; the rest is padding.
		lo := max(0, pad-dx)
		hi := min(w, w+pad-dx)
		fillPixels(row[:lo*c], fill, c)
		fillPixels(row[hi*c:], fill, c)
		sx := lo + dx - pad
		copy(row[lo*c:hi*c], src[(sy*w+sx)*c:])
	}
}

func fillPixels(row, fill []float32, c int) {
	for i := 0; i+c <= len(row); i += c {
		copy(row[i:i+c], fill)
	}
}

// resizedCropBox draws RandomResizedCrop's box (top, left, height, width)
// as torchvision's get_params does: up to 10 tries of an area fraction in
// [lo, hi] and a log-uniform aspect ratio in [3/4, 4/3]; if none fits,
// the whole image.
func resizedCropBox(h, w int, lo, hi float64, r *rand.Rand) (y0, x0, bh, bw int) {
	area := float64(h * w)
	lr0, lr1 := math.Log(3.0/4), math.Log(4.0/3)
	for range 10 {
		target := area * (lo + (hi-lo)*r.Float64())
		ratio := math.Exp(lr0 + (lr1-lr0)*r.Float64())
		bw = int(math.Round(math.Sqrt(target * ratio)))
		bh = int(math.Round(math.Sqrt(target / ratio)))
		if bw > 0 && bw <= w && bh > 0 && bh <= h {
			return r.IntN(h - bh + 1), r.IntN(w - bw + 1), bh, bw
		}
	}
	return 0, 0, h, w
}

// ResizedCrop writes to dst (h x w x c) the box of bh x bw pixels at (y0,
// x0) of src (h x w x c) resized bilinearly to h x w, as PyTorch's
// interpolate(mode="bilinear", align_corners=False) without antialiasing:
// output pixel centers map into the box, coordinates are clamped to its
// edges. dst and src must not overlap.
func ResizedCrop(dst, src []float32, h, w, c, y0, x0, bh, bw int) {
	fy, fx := float64(bh)/float64(h), float64(bw)/float64(w)
	for y := 0; y < h; y++ {
		ya, yb, ty := bilinearTap(y, fy, bh)
		ra := src[((y0+ya)*w+x0)*c:]
		rb := src[((y0+yb)*w+x0)*c:]
		out := dst[y*w*c : (y+1)*w*c]
		for x := 0; x < w; x++ {
			xa, xb, tx := bilinearTap(x, fx, bw)
			for k := 0; k < c; k++ {
				top := ra[xa*c+k] + tx*(ra[xb*c+k]-ra[xa*c+k])
				bot := rb[xa*c+k] + tx*(rb[xb*c+k]-rb[xa*c+k])
				out[x*c+k] = top + ty*(bot-top)
			}
		}
	}
}

// bilinearTap returns the two source positions (in 0..n-1) that output
// position i samples at scale f, and the weight of the second.
func bilinearTap(i int, f float64, n int) (a, b int, t float32) {
	s := max(0, (float64(i)+0.5)*f-0.5)
	a = min(int(s), n-1)
	b = min(a+1, n-1)
	return a, b, float32(s - float64(a))
}
