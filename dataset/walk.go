package dataset

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// walk calls fn with the path of every entry below the root of fsys that
// is not a directory, in lexical order within each directory (as
// fs.WalkDir). With follow (directories on disk; a zip archive has no
// links), symbolic links to directories are walked as directories, and
// every directory is walked once, at the first path that reaches it: a link
// to a directory already walked (or being walked, a loop) is skipped. So
// the work is bounded by the number of directories, whatever the links. A
// link to a file, or a broken one, is passed to fn like a file (reading it
// then says what is wrong).
func walk(fsys fs.FS, follow bool, fn func(p string)) error {
	// Directories walked, bucketed by modification time (one directory has
	// one, whatever the path) so that os.SameFile compares few of them.
	seen := map[int64][]fs.FileInfo{}
	first := func(dir string) (bool, error) {
		st, err := fs.Stat(fsys, dir)
		if err != nil {
			return false, err
		}
		key := st.ModTime().UnixNano()
		for _, s := range seen[key] {
			if os.SameFile(s, st) {
				return false, nil
			}
		}
		seen[key] = append(seen[key], st)
		return true, nil
	}
	var visit func(dir string) error
	visit = func(dir string) error {
		if follow {
			if ok, err := first(dir); err != nil || !ok {
				return err
			}
		}
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			isDir := e.IsDir()
			if follow && e.Type()&fs.ModeSymlink != 0 {
				if st, err := fs.Stat(fsys, p); err == nil && st.IsDir() {
					isDir = true
				}
			}
			if !isDir {
				fn(p)
			} else if err := visit(p); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(".")
}

// WalkFiles calls fn with the path of every file below the directory root
// (root joined with the path within it), in lexical order within each
// directory, following symbolic links and walking every directory once
// (see walk): links to folders work, link loops end.
func WalkFiles(root string, fn func(path string)) error {
	return walk(os.DirFS(root), true, func(p string) { fn(filepath.Join(root, filepath.FromSlash(p))) })
}
