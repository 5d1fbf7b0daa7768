package edgeresnet

import (
	"fmt"
	"github.com/edge-resnet/edge-resnet/kernels"
	"os"
	"strings"
	"sync"

	"github.com/edge-resnet/edge-resnet/arena"
)

// EnvMaxMemory sets the default memory budget of every model and session
// (DefaultMaxMemory), as a byte count such as "2GiB" or "512MB"; "0" or
// "off" removes it.
const EnvMaxMemory = "EDGE_RESNET_MAX_MEMORY"

// DefaultMaxMemory is the memory budget of a model's plans and of each
// session unless LoadMaxMemory/WithMaxMemory say otherwise (<= 0: none).
//
// It is half of the memory the process may use (physical memory, or the
// control group's limit when lower) on machines of up to 4 GiB, so that a
// 512 MiB Raspberry Pi Zero 2 W still runs ResNet-50, and a quarter of it
// on larger ones, but never less than 2 GiB there: a model that wants
// gigabytes on a server is far more often a hostile or broken file than a
// real ResNet. Measured plan sizes (packed weights + one 1-thread arena,
// fp32, 224x224, avx512vnni path): ResNet-18 61 MiB, ResNet-50 120 MiB,
// ResNet-152 311 MiB. When the machine's memory cannot be read it is
// 4 GiB. EDGE_RESNET_MAX_MEMORY overrides it.
func DefaultMaxMemory() int64 {
	n, _ := defaultMaxMemory()
	return n
}

var defaultMaxMemory = sync.OnceValues(func() (int64, error) {
	if v := strings.TrimSpace(os.Getenv(EnvMaxMemory)); v != "" {
		if strings.EqualFold(v, "off") {
			return 0, nil
		}
		n, err := arena.ParseBytes(v)
		if err != nil {
			return budgetFor(arena.PhysicalMemory()), err
		}
		return n, nil
	}
	return budgetFor(arena.PhysicalMemory()), nil
})

// budgetFor is the default budget for a machine with phys bytes of memory.
func budgetFor(phys int64) int64 {
	const gib = 1 << 30
	if phys <= 0 {
		return 4 * gib
	}
	return min(phys/2, max(phys/4, 2*gib))
}

// envError reports a bad EDGE_RESNET_KERNELS or EDGE_RESNET_MAX_MEMORY
// setting: every load and session refuses to run under one.
func envError() error {
	if err := kernels.EnvError(); err != nil {
		return err
	}
	if _, err := defaultMaxMemory(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInput, EnvMaxMemory, err)
	}
	return nil
}

// ParseBytes reads a byte count such as "512MiB", "2GB" or "1e9" (see
// arena.ParseBytes), for flags and settings.
func ParseBytes(s string) (int64, error) { return arena.ParseBytes(s) }

// FormatBytes prints a byte count for people, e.g. "1.5 GiB".
func FormatBytes(n int64) string { return arena.FormatBytes(n) }
