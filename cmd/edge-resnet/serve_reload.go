package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/serve"
)

// reloader owns the served models: it reloads their files on SIGHUP
// and, with --watch-models, when a file changes, and closes a replaced
// model once the server has closed its sessions.
type reloader struct {
	srv   *serve.Server
	log   *slog.Logger
	files []servedFile
	hup   chan os.Signal
}

// servedFile is a served model and the file it came from ("" for the
// built-in model, never reloaded).
type servedFile struct {
	name, version, path string
	model               *edgeresnet.Model
	loaded, seen        fileStamp // when last loaded, at the last poll
}

// fileStamp is what polling compares: size and modification time.
type fileStamp struct{ size, mtime int64 }

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.Size(), fi.ModTime().UnixNano()}
}

func newReloader(srv *serve.Server, log *slog.Logger, named []serve.Named, paths []string) *reloader {
	// Notify now, not in run: a SIGHUP before run starts must not kill
	// the process (its default action).
	rl := &reloader{srv: srv, log: log, hup: make(chan os.Signal, 1)}
	signal.Notify(rl.hup, syscall.SIGHUP)
	for i, nm := range named {
		st := stamp(paths[i])
		rl.files = append(rl.files, servedFile{name: nm.Name, version: nm.Version, path: paths[i], model: nm.Model, loaded: st, seen: st})
	}
	return rl
}

// run reloads until ctx ends: every model on SIGHUP, a changed file
// every interval (0: no polling).
func (rl *reloader) run(ctx context.Context, interval time.Duration) {
	defer signal.Stop(rl.hup)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-rl.hup:
			rl.log.Info("SIGHUP: reloading the models")
			for i := range rl.files {
				rl.reload(&rl.files[i])
			}
		case <-tick:
			for i := range rl.files {
				rl.poll(&rl.files[i])
			}
		}
	}
}

// poll reloads a file whose stamp changed and then held still for one
// interval, so that a file being written is not read half-way.
func (rl *reloader) poll(f *servedFile) {
	st := stamp(f.path)
	if st != f.seen {
		f.seen = st
		return
	}
	if f.path != "" && st != f.loaded && st != (fileStamp{}) {
		rl.reload(f)
	}
}

// reload loads f's file and swaps it in; on failure the old model stays
// served and the error is logged. A failed file is retried when it
// changes again (or on SIGHUP).
func (rl *reloader) reload(f *servedFile) {
	if f.path == "" {
		return
	}
	f.loaded = stamp(f.path)
	m, err := loadModel(f.path)
	if err != nil {
		rl.log.Error("reload failed: the old model stays served", "model", f.name, "version", f.version, "path", f.path, "err", err)
		return
	}
	oldClosed, err := rl.srv.Reload(serve.Named{Name: f.name, Version: f.version, Model: m})
	if err != nil {
		m.Close()
		rl.log.Error("reload failed: the old model stays served", "model", f.name, "version", f.version, "path", f.path, "err", err)
		return
	}
	old := f.model
	f.model = m
	go func() {
		<-oldClosed
		old.Close()
	}()
	rl.log.Info("reloaded", "model", f.name, "version", f.version, "path", f.path)
}

// close closes the models served now (after the server's Close).
func (rl *reloader) close() {
	for _, f := range rl.files {
		f.model.Close()
	}
}
