//go:build purego || !gc

package kernels

import (
	"slices"
	"testing"
)

// TestPureGoHasNoAssembly checks that the purego tag (or a non-gc
// compiler) leaves only the portable path.
func TestPureGoHasNoAssembly(t *testing.T) {
	if got := Available(); !slices.Equal(got, []string{"generic"}) {
		t.Errorf("paths %v, want only generic", got)
	}
}
