package preprocess

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// Scratch holds the buffers Apply reuses between calls. The zero value is
// ready to use; a Scratch must not be used by two goroutines at once.
// Once it has seen the largest image and spec it will get, Apply does not
// allocate (for the image types listed in convert.go).
type Scratch struct {
	src, tmp, out []uint8
	acc           []int32
	ccol          []int32
	cbs, crs      []int32
	h, v          coeffs
	pal           [256][3]uint8

	lut    [3][256]float32
	lutKey lutKey
}

// lutKey identifies the normalization a LUT was built for.
type lutKey struct {
	ok        bool
	ch        int
	scale     float32
	mean, std [3]float32
}

// geometry is where the crop window sits in the resized image.
type geometry struct {
	rw, rh int // size after torchvision's Resize
	x0, y0 int // crop origin in resized pixels; negative means zero padding
}

// maxResized bounds the long side that Resize may produce (a 1x100000
// strip resized to 256 would be 25.6M pixels long). Apply only computes
// the crop window, so this only guards int overflow and nonsense input.
const maxResized = 1 << 24

// geometry follows torchvision 0.14: Resize(n) maps the shorter side to n
// and the longer to int(n*long/short) (Python true division, truncated);
// Resize((h, w)) maps straight to the size. CenterCrop pads with zeros,
// (c-s)//2 before, when the image is smaller than the crop, and otherwise
// starts at int(round((s-c)/2)) with round half to even.
func (s Spec) geometry(w, h int) (geometry, error) {
	var g geometry
	if s.Resize == 0 {
		g.rw, g.rh = s.Width, s.Height
		return g, nil
	}
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	// Both factors are < 2^31, so the product is exact in int64; dividing
	// two exact float64 values rounds once, like Python's int/int.
	nl := float64(int64(s.Resize)*int64(long)) / float64(short)
	if nl > maxResized {
		return g, fmt.Errorf("preprocess: %dx%d image resized to short side %d would be %.0f pixels long", w, h, s.Resize, nl)
	}
	newLong := int(nl)
	if w <= h {
		g.rw, g.rh = s.Resize, newLong
	} else {
		g.rw, g.rh = newLong, s.Resize
	}
	g.x0 = cropOrigin(g.rw, s.Width)
	g.y0 = cropOrigin(g.rh, s.Height)
	return g, nil
}

func cropOrigin(size, crop int) int {
	if crop > size {
		return -((crop - size) / 2)
	}
	d := size - crop
	o := d / 2
	if d%2 == 1 && o%2 == 1 { // x.5 rounds to the even neighbour
		o++
	}
	return o
}

// window is the part of the resized image inside the crop.
func (s Spec) window(g geometry) (x0, y0, x1, y1 int) {
	return max(g.x0, 0), max(g.y0, 0), min(g.x0+s.Width, g.rw), min(g.y0+s.Height, g.rh)
}

// loadBand is how many bytes of converted source rows resize holds at a
// time before the horizontal pass: the source is converted in bands of
// rows, not whole, so a large image costs Apply little beyond itself.
var loadBand int64 = 1 << 20 // a variable for tests

// resize computes the window [wx0,wx1)x[wy0,wy1) of the img resized to
// rw x rh, packed with ch channels (stride (wx1-wx0)*ch). The returned
// slice aliases scratch memory. Before allocating, it checks that img and
// the buffers, plus extra bytes the caller will allocate, fit in
// MaxDecodeBytes.
func (scr *Scratch) resize(img image.Image, ch, rw, rh, wx0, wy0, wx1, wy1 int, extra int64) ([]uint8, error) {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	ow, oh := wx1-wx0, wy1-wy0
	// Pillow skips a pass when that dimension does not change.
	needH, needV := rw != sw, rh != sh
	sx0, sx1 := wx0, wx1
	if needH {
		scr.h.compute(sw, rw, wx0, wx1)
		sx0, sx1 = scr.h.span(ow)
	}
	sy0, sy1 := wy0, wy1
	if needV {
		scr.v.compute(sh, rh, wy0, wy1)
		sy0, sy1 = scr.v.span(oh)
	}
	// What the passes below hold: converted source rows (a band of them
	// if there is a horizontal pass, else all the pass reads), the
	// horizontal pass's rows, the vertical pass's output and accumulator.
	rows, srow, orow := int64(sy1-sy0), int64(sx1-sx0)*int64(ch), int64(ow)*int64(ch)
	band := rows
	if needH {
		band = min(rows, max(1, loadBand/srow))
	}
	c := cost{image: imageBytes(img)}
	c.add("converted source rows", mulSat(band, srow))
	if needH {
		c.add("horizontal pass", mulSat(rows, orow))
	}
	if needV {
		c.add("vertical pass", mulSat(int64(oh), orow))
		c.add("accumulator", mulSat(orow, 4))
	}
	c.add("filter tables", scr.h.bytes(needH)+scr.v.bytes(needV))
	c.add("result", extra)
	if err := c.check(MaxDecodeBytes, func() string {
		return fmt.Sprintf("preprocessing the %dx%d %T into %dx%dx%d", sw, sh, img, ow, oh, ch)
	}); err != nil {
		return nil, err
	}
	var cur []uint8
	if needH {
		scr.tmp = grow(scr.tmp, int(rows*orow))
		for y := sy0; y < sy1; y += int(band) {
			n := min(int(band), sy1-y)
			src := scr.load(img, ch, sx0, y, sx1, y+n)
			resampleH(scr.tmp[(y-sy0)*int(orow):], src, int(srow), n, ch, sx0, &scr.h, ow)
		}
		cur = scr.tmp
	} else {
		cur = scr.load(img, ch, sx0, sy0, sx1, sy1)
	}
	if needV {
		stride := ow * ch
		scr.out = grow(scr.out, oh*stride)
		scr.acc = grow(scr.acc, stride)
		resampleV(scr.out, cur, stride, sy0, &scr.v, oh, scr.acc)
		cur = scr.out
	}
	return cur, nil
}

// setLUT tabulates the 256 possible outputs of each channel. Doing the
// float32 arithmetic once per value makes the result exactly torch's
// ((v/255) - mean) / std, each step rounded to float32, and the per-pixel
// work a table lookup.
func (scr *Scratch) setLUT(s Spec) {
	key := lutKey{ok: true, ch: s.Channels, scale: s.Scale}
	copy(key.mean[:], s.Mean)
	copy(key.std[:], s.Std)
	if scr.lutKey == key {
		return
	}
	div, isDiv := scaleDivisor(s.Scale)
	for c := 0; c < s.Channels; c++ {
		m, sd := s.Mean[c], s.Std[c]
		for v := 0; v < 256; v++ {
			var x float32
			if isDiv {
				x = float32(v) / div
			} else {
				x = float32(float32(v) * s.Scale) // conversion: no fused multiply-add
			}
			scr.lut[c][v] = (x - m) / sd
		}
	}
	scr.lutKey = key
}

// scaleDivisor reports whether scale is float32(1/d) for a whole d, so
// that dividing by d reproduces ToTensor's x.div(255) exactly.
func scaleDivisor(scale float32) (float32, bool) {
	d := math.Round(1 / float64(scale))
	if d >= 1 && d <= 1<<16 && float32(1/d) == scale {
		return float32(d), true
	}
	return 0, false
}

var errNilImage = errors.New("preprocess: nil image")

func checkImage(img image.Image) (w, h int, err error) {
	if img == nil {
		return 0, 0, errNilImage
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return 0, 0, fmt.Errorf("preprocess: empty image (bounds %v)", b)
	}
	return b.Dx(), b.Dy(), nil
}

// Apply writes the model input for img into dst (NHWC float32, length
// Height*Width*Channels) following s. It reproduces torchvision 0.14's
//
//	img.convert("RGB" or "L") -> Resize -> CenterCrop -> ToTensor -> Normalize
//
// on a Pillow image exactly (see resample.go and convert.go for what
// "exactly" covers). For PNG input the result is bit-identical to
// torchvision 0.14.1 / Pillow 9.4 on every fixture and on the skimage
// photos. For JPEG, the YCbCr->RGB conversion and 4:2:0/4:2:2 chroma
// upsampling match libjpeg-turbo exactly, but Go's IDCT does not, so
// decoded pixels can differ by a level or two: measured on skimage's
// rocket.jpg (640x427, 4:4:4) through the ImageNet spec, the tensor
// differs from torchvision by at most 0.035 (2/255/std), and 97.4% of the
// values are identical. EXIF orientation is not applied, which is also
// what torchvision's Pillow loader does.
//
// The image and the scratch buffers Apply needs for it (a band of
// converted source rows, the rows of the horizontal pass, the output of
// the vertical one: for ImageNet's spec a few MB whatever the image size)
// must fit in MaxDecodeBytes together; otherwise Apply returns an error
// wrapping ErrOverBudget before allocating.
//
// With a reused *Scratch, Apply does not allocate for *image.NRGBA, RGBA,
// Gray, YCbCr, NYCbCrA, Paletted, CMYK, Gray16, NRGBA64 and RGBA64; other
// image types go through image.Image.At, which usually allocates. A nil
// scr allocates fresh buffers.
func (s Spec) Apply(img image.Image, dst []float32, scr *Scratch) error {
	return s.ApplyViews(img, viewsNone, dst, scr)
}

// fillPad writes the value of a zero pixel (CenterCrop's padding) into
// whole pixels of row.
func (s Spec) fillPad(row []float32, scr *Scratch) {
	ch := s.Channels
	for i := 0; i < len(row); i += ch {
		for c := 0; c < ch; c++ {
			row[i+c] = scr.lut[c][0]
		}
	}
}

// Resized returns img after the spec's color conversion and Resize, before
// CenterCrop: the uint8 image torchvision would hand to CenterCrop, as an
// *image.NRGBA (opaque) or *image.Gray. It is for tests and debugging and
// allocates the whole resized image (counted against MaxDecodeBytes).
func (s Spec) Resized(img image.Image, scr *Scratch) (image.Image, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, _, err := checkImage(img); err != nil {
		return nil, err
	}
	b := img.Bounds()
	g, err := s.geometry(b.Dx(), b.Dy())
	if err != nil {
		return nil, err
	}
	if scr == nil {
		scr = new(Scratch)
	}
	ch := s.Channels
	res := mulSat(int64(g.rw), int64(g.rh), 4) // the *image.NRGBA returned
	if ch == 1 {
		res = mulSat(int64(g.rw), int64(g.rh))
	}
	px, err := scr.resize(img, ch, g.rw, g.rh, 0, 0, g.rw, g.rh, res)
	if err != nil {
		return nil, err
	}
	r := image.Rect(0, 0, g.rw, g.rh)
	if ch == 1 {
		m := image.NewGray(r)
		copy(m.Pix, px)
		return m, nil
	}
	m := image.NewNRGBA(r)
	for i, j := 0, 0; j < len(px); i, j = i+4, j+3 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = px[j], px[j+1], px[j+2], 255
	}
	return m, nil
}
