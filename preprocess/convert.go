package preprocess

import (
	"image"
	"image/color"
)

// Pixel conversion to packed 8-bit RGB or L, as Pillow's
// Image.convert("RGB") / convert("L") would give for the same file:
//
//   - alpha is dropped, not composited (Pillow's RGBA->RGB keeps the color
//     of even fully transparent pixels). Go's *image.RGBA and *image.RGBA64
//     are premultiplied, so they are un-premultiplied first exactly as
//     color.NRGBAModel does; decoders return *image.NRGBA for PNGs with
//     alpha, so those keep their stored colors;
//   - L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16, Pillow's 16-bit
//     fixed-point ITU-R 601-2 luma (checked against Pillow 9.4 for all
//     2^24 colors). Gray input is kept as is, and replicated for color;
//   - CMYK -> RGB uses Pillow's formula (nk - c*nk/255 rounded, nk = 255-k);
//   - YCbCr -> RGB uses libjpeg's fixed-point tables (which is what Pillow
//     gets from libjpeg-turbo), not Go's slightly different color.YCbCrToRGB,
//     and 4:2:0 / 4:2:2 chroma is interpolated like libjpeg's default
//     "fancy upsampling", not replicated (see loadYCbCr);
//   - 16-bit samples keep their high byte (>>8), as Pillow does for 16-bit
//     RGB(A) PNGs. Pillow opens 16-bit grayscale PNGs as 32-bit "I" and
//     convert() then clips values to 0..255 instead; we deliberately do not
//     copy that (it turns almost every pixel white);
//   - palette images use their palette colors; GIF decoding in Go sets the
//     transparent palette entry to transparent black, Pillow keeps its RGB.
//
// The known concrete types are read through their Pix slices and do not
// allocate. Any other image.Image goes through At, which usually allocates
// one color value per pixel.

// luma is Pillow's "L" conversion.
func luma(r, g, b uint8) uint8 {
	return uint8((uint32(r)*19595 + uint32(g)*38470 + uint32(b)*7471 + 0x8000) >> 16)
}

// unpremul8 un-premultiplies 8-bit premultiplied color like
// color.NRGBAModel (via 16 bits), clamping invalid values (color > alpha).
func unpremul8(r, g, b, a uint8) (uint8, uint8, uint8) {
	switch a {
	case 0xff:
		return r, g, b
	case 0:
		return 0, 0, 0
	}
	return unpremul16(uint32(r)*0x101, uint32(g)*0x101, uint32(b)*0x101, uint32(a)*0x101)
}

// unpremul16 takes 16-bit premultiplied color and returns the high bytes
// of the straight color.
func unpremul16(r, g, b, a uint32) (uint8, uint8, uint8) {
	if a == 0xffff {
		return uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)
	}
	if a == 0 {
		return 0, 0, 0
	}
	f := func(v uint32) uint8 {
		v = v * 0xffff / a
		if v > 0xffff {
			v = 0xffff
		}
		return uint8(v >> 8)
	}
	return f(r), f(g), f(b)
}

// muldiv255 is a*b/255 rounded, in Pillow's integer form.
func muldiv255(a, b int32) int32 {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func cmykToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int32(k)
	f := func(v uint8) uint8 {
		x := nk - muldiv255(int32(v), nk)
		if x < 0 {
			return 0
		}
		return uint8(x) // x <= nk <= 255
	}
	return f(c), f(m), f(y)
}

// libjpeg's YCbCr->RGB tables (16 fraction bits, rounded), built once.
var ycc struct {
	crR, cbB, crG, cbG [256]int32
}

func init() {
	const one = 1 << 16
	fix := func(x float64) int32 { return int32(x*one + 0.5) }
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		ycc.crR[i] = (fix(1.40200)*x + one/2) >> 16
		ycc.cbB[i] = (fix(1.77200)*x + one/2) >> 16
		ycc.crG[i] = -fix(0.71414) * x
		ycc.cbG[i] = -fix(0.34414)*x + one/2
	}
}

func clampU8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

func yccToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y)
	return clampU8(yy + ycc.crR[cr]),
		clampU8(yy + ((ycc.cbG[cb] + ycc.crG[cr]) >> 16)),
		clampU8(yy + ycc.cbB[cb])
}

// load converts the source rectangle [x0,x1)x[y0,y1) (relative to the
// image's Bounds().Min) to packed 8-bit pixels with ch channels in scr.src.
func (scr *Scratch) load(img image.Image, ch, x0, y0, x1, y1 int) []uint8 {
	scr.src = grow(scr.src, (x1-x0)*(y1-y0)*ch)
	dst := scr.src
	switch m := img.(type) {
	case *image.YCbCr:
		scr.loadYCbCr(m, dst, ch, x0, y0, x1, y1)
	case *image.NYCbCrA:
		scr.loadYCbCr(&m.YCbCr, dst, ch, x0, y0, x1, y1)
	case *image.Paletted:
		scr.loadPaletted(m, dst, ch, x0, y0, x1, y1)
	default:
		if f, ok := pixRowsOf(img); ok {
			f.load(dst, ch, x0, y0, x1, y1)
		} else {
			loadAt(img, dst, ch, x0, y0, x1, y1)
		}
	}
	return dst
}

// pixRows is an image whose pixels are stored in Pix rows (stride bytes
// apart, bpp bytes a pixel), with the function that converts one such row
// p into a row d of ch bytes a pixel.
type pixRows struct {
	pix         []uint8
	stride, bpp int
	row         func(d, p []uint8, ch int)
}

// pixRowsOf returns how to read img when it is one of the formats
// loaded row by row.
func pixRowsOf(img image.Image) (pixRows, bool) {
	switch m := img.(type) {
	case *image.NRGBA:
		return pixRows{m.Pix, m.Stride, 4, rowNRGBA}, true
	case *image.RGBA:
		return pixRows{m.Pix, m.Stride, 4, rowRGBA}, true
	case *image.Gray:
		return pixRows{m.Pix, m.Stride, 1, rowGray}, true
	case *image.CMYK:
		return pixRows{m.Pix, m.Stride, 4, rowCMYK}, true
	case *image.Gray16:
		return pixRows{m.Pix, m.Stride, 2, rowGray16}, true
	case *image.NRGBA64:
		return pixRows{m.Pix, m.Stride, 8, rowNRGBA64}, true
	case *image.RGBA64:
		return pixRows{m.Pix, m.Stride, 8, rowRGBA64}, true
	}
	return pixRows{}, false
}

// load converts the rectangle row by row, calling f.row once a row
// through a function value: inlined into Scratch.load, the short loops of
// rowGray and rowGray16 measured up to 25% slower.
func (f pixRows) load(dst []uint8, ch, x0, y0, x1, y1 int) {
	w := x1 - x0
	for y := 0; y < y1-y0; y++ {
		p := f.pix[(y0+y)*f.stride+x0*f.bpp : (y0+y)*f.stride+x1*f.bpp]
		f.row(dst[y*w*ch:(y+1)*w*ch], p, ch)
	}
}

// putPixel stores one pixel as RGB, or as its luma for ch == 1. It
// inlines, and the branch is perfectly predicted.
func putPixel(d []uint8, ch int, r, g, b uint8) {
	if ch == 3 {
		d[0], d[1], d[2] = r, g, b
	} else {
		d[0] = luma(r, g, b)
	}
}

// Row conversions for pixRows, one per format.

func rowNRGBA(d, p []uint8, ch int) {
	for x := range len(p) / 4 {
		q := p[x*4 : x*4+3]
		putPixel(d[x*ch:], ch, q[0], q[1], q[2])
	}
}

func rowRGBA(d, p []uint8, ch int) {
	for x := range len(p) / 4 {
		q := p[x*4 : x*4+4]
		r, g, b := unpremul8(q[0], q[1], q[2], q[3])
		putPixel(d[x*ch:], ch, r, g, b)
	}
}

func rowGray(d, p []uint8, ch int) {
	if ch == 1 {
		copy(d, p)
		return
	}
	for x, v := range p {
		d[x*3], d[x*3+1], d[x*3+2] = v, v, v
	}
}

func rowCMYK(d, p []uint8, ch int) {
	for x := range len(p) / 4 {
		q := p[x*4 : x*4+4]
		r, g, b := cmykToRGB(q[0], q[1], q[2], q[3])
		putPixel(d[x*ch:], ch, r, g, b)
	}
}

func rowGray16(d, p []uint8, ch int) {
	for x := range len(p) / 2 {
		v := p[x*2] // big-endian: the high byte comes first
		if ch == 1 {
			d[x] = v
		} else {
			d[x*3], d[x*3+1], d[x*3+2] = v, v, v
		}
	}
}

func rowNRGBA64(d, p []uint8, ch int) {
	for x := range len(p) / 8 {
		q := p[x*8 : x*8+6]
		putPixel(d[x*ch:], ch, q[0], q[2], q[4])
	}
}

func rowRGBA64(d, p []uint8, ch int) {
	for x := range len(p) / 8 {
		q := p[x*8 : x*8+8]
		be := func(i int) uint32 { return uint32(q[i])<<8 | uint32(q[i+1]) }
		r, g, b := unpremul16(be(0), be(2), be(4), be(6))
		putPixel(d[x*ch:], ch, r, g, b)
	}
}

// loadPaletted converts a paletted rectangle through tables of the
// palette's colors (in scr.pal) and lumas, built once per call.
func (scr *Scratch) loadPaletted(m *image.Paletted, dst []uint8, ch, x0, y0, x1, y1 int) {
	var lum [256]uint8
	for i := range scr.pal {
		var r, g, b uint8
		if i < len(m.Palette) && m.Palette[i] != nil {
			switch c := m.Palette[i].(type) {
			case color.NRGBA:
				r, g, b = c.R, c.G, c.B
			case color.RGBA:
				r, g, b = unpremul8(c.R, c.G, c.B, c.A)
			default:
				r, g, b = unpremul16(c.RGBA())
			}
		}
		scr.pal[i] = [3]uint8{r, g, b}
		lum[i] = luma(r, g, b)
	}
	w := x1 - x0
	for y := 0; y < y1-y0; y++ {
		p := m.Pix[(y0+y)*m.Stride+x0 : (y0+y)*m.Stride+x1]
		rowPaletted(dst[y*w*ch:(y+1)*w*ch], p, ch, &scr.pal, &lum)
	}
}

// rowPaletted converts one row of palette indices through the color and
// luma tables of loadPaletted.
func rowPaletted(d, p []uint8, ch int, pal *[256][3]uint8, lum *[256]uint8) {
	for x, v := range p {
		if ch == 1 {
			d[x] = lum[v]
		} else {
			c := &pal[v]
			d[x*3], d[x*3+1], d[x*3+2] = c[0], c[1], c[2]
		}
	}
}

// loadAt converts any other image through At, which usually allocates one
// color value per pixel.
func loadAt(img image.Image, dst []uint8, ch, x0, y0, x1, y1 int) {
	min := img.Bounds().Min
	w := x1 - x0
	for y := 0; y < y1-y0; y++ {
		d := dst[y*w*ch : (y+1)*w*ch]
		for x := 0; x < w; x++ {
			r, g, b := unpremul16(img.At(min.X+x0+x, min.Y+y0+y).RGBA())
			putPixel(d[x*ch:], ch, r, g, b)
		}
	}
}

// loadYCbCr converts a YCbCr rectangle. 4:2:0 and 4:2:2 chroma is
// upsampled like libjpeg's default "fancy" upsampling (what Pillow gets):
// each full-resolution chroma sample is 3/4 of its own subsampled sample
// plus 1/4 of the nearer neighbour, horizontally and (4:2:0) vertically,
// with libjpeg's integer rounding and edge replication. Other ratios, and
// images with a negative origin, replicate chroma as Go's At does.
func (scr *Scratch) loadYCbCr(m *image.YCbCr, dst []uint8, ch, x0, y0, x1, y1 int) {
	r := m.Rect
	fancyH := m.SubsampleRatio == image.YCbCrSubsampleRatio420 || m.SubsampleRatio == image.YCbCrSubsampleRatio422
	// libjpeg only interpolates chroma planes wider than 2 samples.
	if !fancyH || r.Min.X < 0 || r.Min.Y < 0 || (r.Max.X-1)/2-r.Min.X/2+1 <= 2 {
		scr.loadYCbCrNearest(m, dst, ch, x0, y0, x1, y1)
		return
	}
	v2 := m.SubsampleRatio == image.YCbCrSubsampleRatio420
	w := x1 - x0
	// Chroma columns and rows that exist for this image (libjpeg's
	// downsampled_width/height when Min is 0).
	cxMin, cxMax := r.Min.X/2, (r.Max.X-1)/2
	cyMin, cyMax := r.Min.Y, r.Max.Y-1
	if v2 {
		cyMin, cyMax = r.Min.Y/2, (r.Max.Y-1)/2
	}
	// Column sums for chroma columns ca..cb (one beyond the region on each
	// side, clamped), for Cb and Cr.
	X0, X1 := r.Min.X+x0, r.Min.X+x1
	ca, cb := max(X0/2-1, cxMin), min((X1-1)/2+1, cxMax)
	n := cb - ca + 1
	scr.cbs = grow(scr.cbs, n)
	scr.crs = grow(scr.crs, n)
	// libjpeg's rounding: h2v2 sums 16ths with +8 (left neighbour) or +7
	// (right neighbour); h2v1 sums quarters with +1 or +2.
	shift, biasL, biasR := uint(2), int32(1), int32(2)
	if v2 {
		shift, biasL, biasR = 4, 8, 7
	}
	for y := y0; y < y1; y++ {
		Y := r.Min.Y + y
		cy := Y
		if v2 {
			cy = Y / 2
		}
		rowOff := func(c int) int { return (c - cyMin) * m.CStride }
		this := rowOff(cy) - cxMin
		if v2 {
			ny := cy - 1 // the nearer chroma row: above for even rows
			if Y%2 == 1 {
				ny = cy + 1
			}
			ny = min(max(ny, cyMin), cyMax)
			near := rowOff(ny) - cxMin
			for i := 0; i < n; i++ {
				c := ca + i
				scr.cbs[i] = 3*int32(m.Cb[this+c]) + int32(m.Cb[near+c])
				scr.crs[i] = 3*int32(m.Cr[this+c]) + int32(m.Cr[near+c])
			}
		} else {
			for i := 0; i < n; i++ {
				c := ca + i
				scr.cbs[i] = int32(m.Cb[this+c])
				scr.crs[i] = int32(m.Cr[this+c])
			}
		}
		yrow := m.Y[m.YOffset(X0, Y):]
		d := dst[(y-y0)*w*ch : (y-y0+1)*w*ch]
		for x := 0; x < w; x++ {
			X := X0 + x
			i := X/2 - ca
			var j int
			var bias int32
			if X%2 == 0 {
				j, bias = max(X/2-1, cxMin)-ca, biasL
			} else {
				j, bias = min(X/2+1, cxMax)-ca, biasR
			}
			cbv := uint8((3*scr.cbs[i] + scr.cbs[j] + bias) >> shift)
			crv := uint8((3*scr.crs[i] + scr.crs[j] + bias) >> shift)
			rr, gg, bb := yccToRGB(yrow[x], cbv, crv)
			if ch == 3 {
				d[x*3], d[x*3+1], d[x*3+2] = rr, gg, bb
			} else {
				d[x] = luma(rr, gg, bb)
			}
		}
	}
}

// loadYCbCrNearest converts a YCbCr rectangle with replicated chroma. The
// chroma column of each pixel is tabulated once per call, so the inner
// loop has no division.
func (scr *Scratch) loadYCbCrNearest(m *image.YCbCr, dst []uint8, ch, x0, y0, x1, y1 int) {
	w := x1 - x0
	r := m.Rect
	scr.ccol = grow(scr.ccol, w)
	// COffset = row part + column part; tabulate the column part.
	for x := 0; x < w; x++ {
		scr.ccol[x] = int32(m.COffset(r.Min.X+x0+x, r.Min.Y+y0) - m.COffset(r.Min.X+x0, r.Min.Y+y0))
	}
	for y := y0; y < y1; y++ {
		yi := m.YOffset(r.Min.X+x0, r.Min.Y+y)
		ci := m.COffset(r.Min.X+x0, r.Min.Y+y)
		yrow := m.Y[yi : yi+w]
		d := dst[(y-y0)*w*ch : (y-y0+1)*w*ch]
		for x, yv := range yrow {
			c := ci + int(scr.ccol[x])
			rr, gg, bb := yccToRGB(yv, m.Cb[c], m.Cr[c])
			if ch == 3 {
				d[x*3], d[x*3+1], d[x*3+2] = rr, gg, bb
			} else {
				d[x] = luma(rr, gg, bb)
			}
		}
	}
}
