// Package tunecache keeps the layer measurements of plans tuned by
// measurement (engine.Tuning) in a file per machine, kernel path and
// thread count, so that only the first load on a machine measures.
//
// The file is JSON under DIR/edge-resnet/tune/ (DIR: os.UserCacheDir,
// $XDG_CACHE_HOME or ~/.cache on Linux), named by a hash of its key and
// holding the key itself: a file of another CPU, path or thread count, a
// hash collision or a file of an older format is not used. Its entries are
// keyed by layer signature (precision, batch, path, geometry), not by
// model: layers of one shape run alike whatever model they are in, so
// ResNet-18's measurements serve ResNet-34's layers of the same shapes.
package tunecache

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"github.com/edge-resnet/edge-resnet/internal/engine"
)

// Key says which measurements a file holds: those of one CPU model (its
// brand string and features), kernel path and thread count.
type Key struct {
	CPU     string `json:"cpu"`
	Path    string `json:"path"`
	Threads int    `json:"threads"`
}

// version is the file format; a file of another is remeasured.
const version = 1

// file is the JSON document.
type file struct {
	Version int                          `json:"version"`
	Key     Key                          `json:"key"`
	Layers  map[string]engine.TuneResult `json:"layers"`
}

// maxFileBytes bounds what is read: a file larger than any real one is
// treated as corrupt.
const maxFileBytes = 16 << 20

// Cache is the measurements of one Key, an engine.TuneStore. Put keeps a
// result in memory; Save writes the file when there is something new.
type Cache struct {
	mu    sync.Mutex
	path  string
	key   Key
	m     map[string]engine.TuneResult
	dirty bool
}

// Dir is the directory of the cache files under the user cache
// directory.
func Dir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "edge-resnet", "tune"), nil
}

// Open returns the cache of key in dir, with the measurements of its file
// if there is one. An unreadable, corrupt or foreign file is not used:
// the cache starts empty and warn says why (the file is replaced at the
// next Save); err is reserved for no cache at all.
func Open(dir string, key Key) (c *Cache, warn error) {
	name := fmt.Sprintf("%08x.json", crc32.ChecksumIEEE([]byte(fmt.Sprintf("%q %q %d", key.CPU, key.Path, key.Threads))))
	c = &Cache{path: filepath.Join(dir, name), key: key, m: map[string]engine.TuneResult{}}
	data, err := readCapped(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return c, fmt.Errorf("tuning cache %s: %w", c.path, err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return c, fmt.Errorf("tuning cache %s: corrupt (%v); measuring again", c.path, err)
	}
	if f.Version != version || f.Key != key {
		return c, fmt.Errorf("tuning cache %s: written for %+v (format %d), not %+v; measuring again", c.path, f.Key, f.Version, key)
	}
	for sig, r := range f.Layers {
		if r.Choice == "" || r.Ms == nil {
			return c, fmt.Errorf("tuning cache %s: corrupt (layer %q has no choice); measuring again", c.path, sig)
		}
	}
	c.m = f.Layers
	return c, nil
}

// readCapped reads the file at path, refusing one over maxFileBytes.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileBytes {
		return nil, fmt.Errorf("%d bytes, more than a tuning cache holds (%d)", st.Size(), maxFileBytes)
	}
	return os.ReadFile(path)
}

// Path is the cache's file.
func (c *Cache) Path() string { return c.path }

// Len is the number of layer measurements held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Get returns the measurement of a layer signature.
func (c *Cache) Get(sig string) (engine.TuneResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[sig]
	return r, ok
}

// Put keeps a measurement, for Save.
func (c *Cache) Put(sig string, r engine.TuneResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[sig] = r
	c.dirty = true
}

// Save writes the file if a measurement was added since Open or the last
// Save: to a temporary file in the same directory, then renamed over the
// old one, so a reader never sees half a file.
func (c *Cache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	// Another process (or model) may have saved meanwhile: keep its
	// layers too.
	if other, warn := Open(filepath.Dir(c.path), c.key); warn == nil {
		for sig, r := range other.m {
			if _, ok := c.m[sig]; !ok {
				c.m[sig] = r
			}
		}
	}
	data, err := json.MarshalIndent(file{Version: version, Key: c.key, Layers: maps.Clone(c.m)}, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("tuning cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".tune-*")
	if err != nil {
		return fmt.Errorf("tuning cache: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tuning cache %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tuning cache: %w", err)
	}
	c.dirty = false
	return nil
}
