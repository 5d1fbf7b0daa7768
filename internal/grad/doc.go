// Package grad holds the training-mode forward passes and the backward
// passes of the layers a ResNet trains with, on batched NHWC float32
// tensors: the numerical core of edge-resnet's trainer (package train).
//
// Conventions, shared by every layer:
//   - A tensor is a []float32 in NHWC order with a Shape; a batch of N
//     images is one tensor of N*H*W*C values. Dense layers see [N, 1, 1, C].
//   - A layer is a value that owns its parameters and their gradients.
//     Forward(x) computes the output in training mode and keeps what
//     Backward needs (the input, masks, batch statistics); Backward(dy)
//     returns dx and adds the parameter gradients into the layer's
//     gradient buffers (callers zero them between steps with ZeroGrad), so
//     that frozen layers and shared parameters work.
//   - Parameters use the inference layouts of package graph (conv weights
//     HWIO with I = Cin/groups, dense weights In x Out row-major), so a
//     trained layer folds into a model image without reshuffling.
//   - Results are deterministic: for a given thread count the same inputs
//     give bit-identical outputs and gradients (reductions over the batch
//     or over threads go in a fixed order).
//   - Every backward pass is checked against central finite differences in
//     float64 (gradcheck_test.go).
package grad

// Shape is the shape of a batched NHWC tensor.
type Shape struct{ N, H, W, C int }

// Size is the number of values, N*H*W*C.
func (s Shape) Size() int { return s.N * s.H * s.W * s.C }

// Pixels is the number of spatial positions of one image, H*W.
func (s Shape) Pixels() int { return s.H * s.W }
