package edgeresnet

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// imagenet_classes.txt: the 1000 ImageNet-1k class names in torchvision's
// index order (torchvision.models._meta._IMAGENET_CATEGORIES, BSD-3-Clause),
// so that torchvision models converted from ONNX print names, not numbers.
//
//go:embed labels/imagenet_classes.txt
var imagenetClasses string

// ImageNetLabels returns the 1000 ImageNet class names.
func ImageNetLabels() []string {
	return strings.Split(strings.TrimRight(imagenetClasses, "\n"), "\n")
}

// parseClassIndexJSON reads {"0": ["n01440764", "tench"], ...}; values may
// also be plain strings.
func parseClassIndexJSON(data []byte) ([]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: labels JSON: %v", ErrInput, err)
	}
	labels := make([]string, len(raw))
	for k, v := range raw {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(raw) {
			return nil, fmt.Errorf("%w: labels JSON: key %q is not an index 0..%d", ErrInput, k, len(raw)-1)
		}
		var pair []string
		var one string
		switch {
		case json.Unmarshal(v, &pair) == nil && len(pair) > 0:
			labels[i] = pair[len(pair)-1]
		case json.Unmarshal(v, &one) == nil:
			labels[i] = one
		default:
			return nil, fmt.Errorf("%w: labels JSON: entry %q is neither a string nor a list of strings", ErrInput, k)
		}
	}
	return labels, nil
}
