// Package preprocess turns image files and .npy tensors into the float32
// NHWC input a model expects, following the model's own preprocessing
// metadata. The default is torchvision's ImageNet eval transform.
package preprocess

// Spec says how an image becomes a model input. It is stored in the model
// image's manifest, so its JSON names are part of the file format.
type Spec struct {
	// Resize scales the image so that its shorter side has this many
	// pixels (bilinear with antialiasing, as PIL and torchvision do).
	// 0 resizes straight to Height x Width instead (no crop needed).
	Resize int `json:"resize"`
	// Height and Width are the model input size; the resized image is
	// center-cropped to it.
	Height int `json:"height"`
	Width  int `json:"width"`
	// Channels is 3 (color) or 1 (grayscale, ITU-R 601-2 luma as PIL's "L").
	Channels int `json:"channels"`
	// BGR reverses the channel order of color input. Mean and Std are in
	// the model's (output) order, so a Caffe-style BGR model lists the blue
	// mean first.
	BGR bool `json:"bgr,omitempty"`
	// Scale multiplies the 0..255 pixel values first: 1/255 for torchvision,
	// 1 for models that take raw pixels. When Scale is float32(1/d) for a
	// whole d (1/255, 1), Apply divides by d instead, because that is what
	// torchvision's ToTensor does and it differs from multiplying by
	// float32(1/255) in the last bit for 126 of the 256 pixel values.
	Scale float32 `json:"scale"`
	// Mean and Std normalize each channel after scaling: (x*Scale - Mean)/Std,
	// each step rounded to float32 as torch does.
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// ImageNet is torchvision's eval transform for ImageNet models:
// Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet mean/std).
func ImageNet() Spec {
	return Spec{
		Resize: 256, Height: 224, Width: 224, Channels: 3, Scale: 1.0 / 255,
		Mean: []float32{0.485, 0.456, 0.406},
		Std:  []float32{0.229, 0.224, 0.225},
	}
}
