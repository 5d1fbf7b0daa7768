package edgeresnet

import (
	_ "embed"
	"fmt"
	"sync"

	"github.com/edge-resnet/edge-resnet/firmware"
)

// The built-in model: a CIFAR-style ResNet-20 (option A shortcuts) trained
// on Fashion-MNIST by edge-resnet train itself, with the recipe in
// tools/make_default_model.sh. See models/README.md for its accuracy.
//
//go:embed models/resnet20_fashion_mnist.ern
var defaultImage []byte

var defaultModel = sync.OnceValues(func() (*firmware.Model, error) {
	return firmware.Decode(defaultImage)
})

// Default returns the built-in Fashion-MNIST ResNet-20 (28x28 grayscale
// input, 10 classes with labels).
func Default(opts ...LoadOption) (*Model, error) {
	fm, err := defaultModel()
	if err != nil {
		return nil, fmt.Errorf("built-in model: %w", err)
	}
	return FromModel(fm, opts...)
}
