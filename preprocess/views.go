package preprocess

import (
	"fmt"
	"image"
	"slices"
	"strings"
)

// Crop is where a test-time augmentation view's crop window sits in the
// resized image.
type Crop uint8

// The five crops of torchvision's FiveCrop, in its order after the center.
const (
	Center Crop = iota // the window Apply uses (CenterCrop)
	TopLeft
	TopRight
	BottomLeft
	BottomRight
)

var cropNames = [...]string{"center", "top-left", "top-right", "bottom-left", "bottom-right"}

func (c Crop) String() string {
	if int(c) < len(cropNames) {
		return cropNames[c]
	}
	return fmt.Sprintf("Crop(%d)", c)
}

// View is one test-time augmentation view of an image: a crop window of
// the model's input size, mirrored left to right when Flip is set.
//
// The corner crops follow torchvision's FiveCrop on the resized image
// (Resize, before CenterCrop): each corner window sits at that corner.
// Where the resized image is not larger than the crop by at least a
// margin m on an axis (always so for specs that resize straight to the
// input size, such as the built-in 28x28 model's), the corner windows are
// shifted m pixels from the center window on that axis instead, into the
// zero padding CenterCrop itself uses; that is the pad-and-crop of CIFAR
// and Fashion-MNIST training. m is round(size/14) of the crop's size on
// that axis (16 for 224, 2 for 28 or 32; 16/224 is ImageNet's 256 vs 224
// margin), at least 1 and at most (size-1)/2 so a window keeps at least
// half of the image (0 for sizes 1 and 2, where the corners equal the
// center). With the ImageNet spec (Resize 256, crop 224) the five crops
// and their mirrors are exactly torchvision's TenCrop.
type View struct {
	Crop Crop
	Flip bool
}

// The view sets of ParseViews, in torchvision's order: TenCrop returns the
// five crops, then the same five mirrored.
var (
	viewsNone     = []View{{}}
	viewsFlip     = []View{{}, {Flip: true}}
	viewsCrop     = []View{{Crop: Center}, {Crop: TopLeft}, {Crop: TopRight}, {Crop: BottomLeft}, {Crop: BottomRight}}
	viewsFlipCrop = append(append([]View(nil), viewsCrop...),
		View{Center, true}, View{TopLeft, true}, View{TopRight, true}, View{BottomLeft, true}, View{BottomRight, true})
)

// ViewSets names the test-time augmentation sets ParseViews takes.
const ViewSets = `none, flip, crop or flip,crop`

// ParseViews turns a test-time augmentation name into its views:
// "" or "none": the plain input (1 view); "flip": it and its mirror (2);
// "crop": the center and four corner crops (5, see View); "flip,crop" or
// "crop,flip": those five and their mirrors (10, the classic 10-crop).
func ParseViews(name string) ([]View, error) {
	var flip, crop bool
	for _, part := range strings.Split(name, ",") {
		switch strings.TrimSpace(strings.ToLower(part)) {
		case "flip":
			flip = true
		case "crop":
			crop = true
		case "":
			if strings.TrimSpace(name) != "" {
				return nil, fmt.Errorf("preprocess: test-time augmentation %q: empty view name (want %s)", name, ViewSets)
			}
		case "none":
			if strings.Contains(name, ",") {
				return nil, fmt.Errorf("preprocess: test-time augmentation %q: none cannot be combined (want %s)", name, ViewSets)
			}
		default:
			return nil, fmt.Errorf("preprocess: test-time augmentation %q: unknown view %q (want %s)", name, part, ViewSets)
		}
	}
	switch { // copies: callers may change their views
	case flip && crop:
		return slices.Clone(viewsFlipCrop), nil
	case flip:
		return slices.Clone(viewsFlip), nil
	case crop:
		return slices.Clone(viewsCrop), nil
	}
	return slices.Clone(viewsNone), nil
}

// cropMargin is the least shift m of a corner window from the center one
// on an axis whose crop is size pixels (see View).
func cropMargin(size int) int {
	return min(max((size+7)/14, 1), (size-1)/2)
}

// cornerOrigins are the origins of the first and last corner windows on
// one axis: the resized image's edges (FiveCrop), or margin pixels from
// the center window where the image is not that much larger.
func cornerOrigins(center, resized, crop int) (lo, hi int) {
	m := cropMargin(crop)
	return min(0, center-m), max(resized-crop, center+m)
}

// viewGeometry moves g's crop window to where view v's sits.
func (s Spec) viewGeometry(g geometry, v View) geometry {
	if v.Crop == Center {
		return g
	}
	left, right := cornerOrigins(g.x0, g.rw, s.Width)
	top, bottom := cornerOrigins(g.y0, g.rh, s.Height)
	g.x0, g.y0 = left, top
	if v.Crop == TopRight || v.Crop == BottomRight {
		g.x0 = right
	}
	if v.Crop == BottomLeft || v.Crop == BottomRight {
		g.y0 = bottom
	}
	return g
}

// ApplyViews writes the model input of every view of img into dst, one
// Height*Width*Channels NHWC tensor after another (the layout of a
// session's batch), resizing img once for all of them. The center view
// without Flip is exactly what Apply writes.
func (s Spec) ApplyViews(img image.Image, views []View, dst []float32, scr *Scratch) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if len(views) == 0 {
		return fmt.Errorf("preprocess: no views to write")
	}
	for _, v := range views {
		if v.Crop > BottomRight {
			return fmt.Errorf("preprocess: view crop %v unknown (want center or a corner)", v.Crop)
		}
	}
	ch := s.Channels
	n := s.Height * s.Width * ch
	if len(dst) != len(views)*n {
		return fmt.Errorf("preprocess: dst has %d values, want %d (%d view(s) of %dx%dx%d)", len(dst), len(views)*n, len(views), s.Height, s.Width, ch)
	}
	w, h, err := checkImage(img)
	if err != nil {
		return err
	}
	g, err := s.geometry(w, h)
	if err != nil {
		return err
	}
	if scr == nil {
		scr = new(Scratch)
	}
	// Resize only the part of the image some view sees.
	wx0, wy0, wx1, wy1 := s.window(s.viewGeometry(g, views[0]))
	for _, v := range views[1:] {
		x0, y0, x1, y1 := s.window(s.viewGeometry(g, v))
		wx0, wy0, wx1, wy1 = min(wx0, x0), min(wy0, y0), max(wx1, x1), max(wy1, y1)
	}
	px, err := scr.resize(img, ch, g.rw, g.rh, wx0, wy0, wx1, wy1, 0)
	if err != nil {
		return err
	}
	scr.setLUT(s)
	r := resized{px: px, x0: wx0, y0: wy0, stride: (wx1 - wx0) * ch}
	for i, v := range views {
		out := dst[i*n : (i+1)*n]
		s.writeCrop(out, r, s.viewGeometry(g, v), scr)
		if v.Flip {
			FlipH(out, s.Height, s.Width, ch)
		}
	}
	return nil
}

// resized is a window of the resized image: packed uint8 pixels whose
// first is at (x0, y0) of the resized image, stride values a row.
type resized struct {
	px             []uint8
	x0, y0, stride int
}

// writeCrop writes the crop window of g, normalized, into dst (NHWC):
// pixels from r, which holds the window's part of the resized image, and
// the value of a zero pixel outside the image (CenterCrop's padding).
func (s Spec) writeCrop(dst []float32, r resized, g geometry, scr *Scratch) {
	ch, W := s.Channels, s.Width
	// Source channel of each output channel.
	sc := [3]int{0, 1, 2}
	if s.BGR {
		sc = [3]int{2, 1, 0}
	}
	vx0, vy0, vx1, vy1 := s.window(g)
	for y := 0; y < s.Height; y++ {
		row := dst[y*W*ch : (y+1)*W*ch]
		ry := g.y0 + y
		if ry < vy0 || ry >= vy1 || vx1 <= vx0 {
			s.fillPad(row, scr)
			continue
		}
		// Columns [lo, hi) of the crop come from the image; the rest pad.
		lo, hi := vx0-g.x0, vx1-g.x0
		s.fillPad(row[:lo*ch], scr)
		s.fillPad(row[hi*ch:], scr)
		at := (ry-r.y0)*r.stride + (vx0-r.x0)*ch
		src := r.px[at : at+(hi-lo)*ch]
		out := row[lo*ch : hi*ch]
		if ch == 1 {
			lut := &scr.lut[0]
			for i, v := range src {
				out[i] = lut[v]
			}
			continue
		}
		l0, l1, l2 := &scr.lut[0], &scr.lut[1], &scr.lut[2]
		for i := 0; i+2 < len(src); i += 3 {
			out[i] = l0[src[i+sc[0]]]
			out[i+1] = l1[src[i+sc[1]]]
			out[i+2] = l2[src[i+sc[2]]]
		}
	}
}

// FlipH mirrors the h x w x c image x (NHWC) left to right, in place.
func FlipH(x []float32, h, w, c int) {
	for y := 0; y < h; y++ {
		row := x[y*w*c : (y+1)*w*c]
		for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
			for k := 0; k < c; k++ {
				row[i*c+k], row[j*c+k] = row[j*c+k], row[i*c+k]
			}
		}
	}
}
