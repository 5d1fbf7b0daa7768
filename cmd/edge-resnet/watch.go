package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

type watchFlags struct {
	classifyFlags
	interval time.Duration
	settle   time.Duration
	once     bool
	existing bool
}

func newWatchCmd() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [-m MODEL] [-k 5] [--json] [--interval 200ms] [--settle 500ms] [--existing] [--once] DIR",
		Short: "Classify image files as they appear in a folder",
		Long: `Classify each image (or .npy) file that appears in DIR, as classify would,
with the model loaded once: a camera or motion detector that saves
snapshots there gets one result per snapshot, as a JSON line with --json.

DIR is looked at every --interval (polling: portable, and it works on
network and FUSE mounts). Only files directly in DIR with an image or .npy
extension count; names starting with "." are left alone, so a writer can
write .name.tmp and rename it in. A file is read once its size and
modification time have stayed the same for --settle (over two looks at
least), so one still being written is not read half-done; a writer that
pauses longer than that needs a longer --settle, or a rename. An empty
file waits to be written. A file
that changes later (a camera overwriting latest.jpg) is classified again.
Files there before the start are left alone unless --existing; --once
classifies the files there now, once each is complete, and exits.
Ctrl-C or SIGTERM ends it. A file that cannot be classified is reported
on stderr; the exit status is then 1 at the end.`,
		Example: `  edge-resnet watch --json /home/pi/snapshots
  rpicam-still -t 0 --timelapse 2000 -o /tmp/snaps/img%04d.jpg &  edge-resnet watch -k 1 /tmp/snaps
  edge-resnet watch -m resnet18.ern --once --json incoming/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, args[0])
		},
	}
	addModelFlags(cmd, &f.classifyFlags)
	fl := cmd.Flags()
	fl.DurationVar(&f.interval, "interval", 200*time.Millisecond, "how often to look at DIR (at least 10ms)")
	fl.DurationVar(&f.settle, "settle", 500*time.Millisecond, "read a file once it has not changed for this long")
	fl.BoolVar(&f.once, "once", false, "classify the files in DIR now, once each is complete, then exit")
	fl.BoolVar(&f.existing, "existing", false, "also classify the files in DIR at the start")
	return cmd
}

// runWatch classifies files as they appear in dir until ctx is done (or,
// with --once, until the files there are done).
func runWatch(ctx context.Context, stdout, stderr io.Writer, f watchFlags, dir string) error {
	if f.interval < 10*time.Millisecond {
		return fmt.Errorf("--interval %v: must be at least 10ms", f.interval)
	}
	if f.settle < 0 {
		return fmt.Errorf("--settle %v: must be >= 0", f.settle)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: not a directory: watch takes a folder (classify FILE classifies one file)", dir)
	}
	m, ss, err := openClassifier(f.classifyFlags)
	if err != nil {
		return err
	}
	defer m.Close()
	defer ss.close()
	limitHeap(preprocess.MaxDecodeBytes)

	w := &watcher{dir: dir, settle: f.settle, seen: map[string]*watchedFile{}}
	if !f.existing && !f.once {
		if _, err := w.poll(true); err != nil {
			return fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	fmt.Fprintf(stderr, "edge-resnet: watching %s every %v\n", dir, f.interval)
	failed, err := w.loop(ctx, f, func(path string) bool {
		_, ok := classifyFiles(stdout, stderr, json.NewEncoder(stdout), ss, f.classifyFlags, []string{path})
		return ok
	})
	if err != nil {
		return err
	}
	if failed {
		return errReported
	}
	return nil
}

// watcher remembers what it saw of each file in dir.
type watcher struct {
	dir    string
	settle time.Duration
	seen   map[string]*watchedFile
}

type watchedFile struct {
	size    int64
	modTime time.Time
	since   time.Time // first seen in this state
	done    bool      // classified in this state
}

// loop polls every interval and classifies each file that is ready,
// until ctx is done or, with --once, nothing is left to do; failed
// reports a file that classify failed on.
func (w *watcher) loop(ctx context.Context, f watchFlags, classify func(path string) bool) (failed bool, err error) {
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		ready, err := w.poll(false)
		if err != nil {
			return failed, fmt.Errorf("watching %s: %w", w.dir, err)
		}
		for _, path := range ready {
			if ctx.Err() != nil {
				return failed, nil
			}
			failed = !classify(path) || failed
		}
		if f.once && w.settled() {
			return failed, nil
		}
		select {
		case <-ctx.Done():
			return failed, nil
		case <-tick.C:
		}
	}
}

// poll looks at dir and returns the files (paths, by name) that are
// complete and not yet classified in their present state: the same size
// and modification time for settle, since an earlier look. With initial,
// every file there counts as done.
func (w *watcher) poll(initial bool) ([]string, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, err
	}
	var ready []string
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !inputExts[strings.ToLower(filepath.Ext(name))] {
			continue
		}
		path := filepath.Join(w.dir, name)
		info, err := os.Stat(path) // through links
		if err != nil || !info.Mode().IsRegular() {
			continue // gone since ReadDir, or not a file
		}
		present[name] = true
		old, now := w.seen[name], time.Now()
		switch {
		case old == nil:
			w.seen[name] = &watchedFile{size: info.Size(), modTime: info.ModTime(), since: now, done: initial}
		case old.size != info.Size() || !old.modTime.Equal(info.ModTime()):
			*old = watchedFile{size: info.Size(), modTime: info.ModTime(), since: now}
		case !old.done && old.size > 0 && now.Sub(old.since) >= w.settle:
			old.done = true
			ready = append(ready, path)
		}
	}
	for name := range w.seen {
		if !present[name] {
			delete(w.seen, name)
		}
	}
	return ready, nil
}

// settled reports that every file seen is classified (or still empty).
func (w *watcher) settled() bool {
	for _, f := range w.seen {
		if !f.done && f.size > 0 {
			return false
		}
	}
	return true
}
