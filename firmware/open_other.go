//go:build !(linux || darwin || freebsd)

package firmware

func readFile(path string) ([]byte, func([]byte) error, error) { return readWhole(path) }

// syncDir is a no-op where directories cannot be synced (Windows).
func syncDir(string) {}
