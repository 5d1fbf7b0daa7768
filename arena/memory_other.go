//go:build !linux && !darwin && !freebsd

package arena

// physicalMemory is unknown here (Windows and others): callers fall back
// to a fixed default.
func physicalMemory() int64 { return 0 }
