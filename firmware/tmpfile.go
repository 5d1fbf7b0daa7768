package firmware

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WriteFile replaces its output atomically: it writes a temporary file
// beside it and renames that over the output. A writer killed meanwhile
// (kill -9, a crash, power loss) leaves its temporary behind; the next
// write of the same output removes it.
//
// Temporaries are named ".OUT.tmp.PID.RAND", PID being the writer's
// process id: a temporary is stale when its writer is gone (on Unix,
// kill(PID, 0) fails with ESRCH), and a live writer's, in this or another
// process, is left alone, so concurrent writers of one output do not
// disturb each other. Where that cannot be asked (Windows), and for a PID
// that another process has taken since, age decides: a temporary not
// modified for staleAfter is stale (writing a model takes seconds).
// Temporaries of earlier versions (".OUT.tmpDIGITS") go by age too.
//
// Not O_TMPFILE + linkat (Linux): linkat cannot replace the output, so the
// file still needs a temporary name before the rename; O_TMPFILE only
// exists on some filesystems (not NFS or vfat); linking it needs /proc or
// CAP_DAC_READ_SEARCH; and macOS and Windows have nothing like it. The
// named scheme with cleanup is needed anyway, and one scheme on every
// system is one scheme to test.
//
// The limit: a writer on another host or in another PID namespace that
// writes the same output at the same time looks dead from here. Its
// temporary may be removed; its rename then fails with an error, and the
// output stays intact.
const staleAfter = time.Hour

// tempPrefix starts the names of path's temporaries.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp" }

// createTemp removes the stale temporaries of path and creates a new one.
func createTemp(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	removeStaleTemps(dir, tempPrefix(path))
	for try := 0; ; try++ {
		name := filepath.Join(dir, fmt.Sprintf("%s.%d.%08x", tempPrefix(path), os.Getpid(), rand.Uint32()))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if os.IsExist(err) && try < 100 {
			continue
		}
		return f, err
	}
}

// removeStaleTemps removes, best effort, the stale temporaries in dir
// whose names start with prefix (see staleAfter).
func removeStaleTemps(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	now := time.Now()
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		pid, isOurs := tempPID(rest)
		if !isOurs && !isDigits(rest) { // neither ours nor an old-style temporary
			continue
		}
		stale := false
		if pid > 0 && pid != os.Getpid() {
			alive, known := processAlive(pid)
			stale = known && !alive
		}
		if !stale {
			info, err := e.Info()
			stale = err == nil && now.Sub(info.ModTime()) > staleAfter
		}
		if stale {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// tempPID parses the ".PID.RAND" that follows a temporary's prefix.
func tempPID(rest string) (int, bool) {
	rest, ok := strings.CutPrefix(rest, ".")
	if !ok {
		return 0, false
	}
	pidStr, rnd, ok := strings.Cut(rest, ".")
	if !ok || len(rnd) != 8 || !isDigits(pidStr) {
		return 0, false
	}
	if _, err := strconv.ParseUint(rnd, 16, 32); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return 0, false
	}
	return pid, true
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
