//go:build purego || !gc

package kernels

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestPureGoHasNoAssembly checks that the purego tag (or a non-gc
// compiler) leaves only the portable path: the only Set is the generic
// one, it is the default (a forced asm path is refused), and ForPath
// refuses the asm paths of every GOARCH as unknown here.
func TestPureGoHasNoAssembly(t *testing.T) {
	if got := Available(); !slices.Equal(got, []string{"generic"}) {
		t.Errorf("paths %v, want only generic", got)
	}
	if got := Sets(); len(got) != 1 || got[0] != genericSet() || Best() != genericSet() {
		t.Errorf("Sets() %v, Best() %s, want only generic", got, Best())
	}
	if !strings.HasPrefix(Selection(), "generic") {
		t.Errorf("Selection() = %q", Selection())
	}
	for _, name := range []string{"avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot"} {
		if s, err := ForPath(name); !errors.Is(err, ErrPath) || !strings.Contains(err.Error(), "paths are generic") {
			t.Errorf("ForPath(%q) = %v, %v", name, s, err)
		}
	}
	sameResolution(t, "generic", Best(), oldPaths["generic"])
}
