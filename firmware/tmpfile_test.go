package firmware

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// deadPID returns the id of a process that has exited: "true" where it
// exists (a native program, so this works when the test itself runs under
// qemu-user, which cannot re-execute a foreign test binary without
// binfmt_misc), else this test binary.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if tru, err := exec.LookPath("true"); err == nil {
		cmd = exec.Command(tru)
	}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A write removes the temporaries that killed writes of the same output
// left behind, and nothing else: not a live writer's, not a recent one
// whose writer cannot be asked about, not another output's.
func TestWriteFileRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.ern")
	dead, live := deadPID(t), os.Getppid() // the parent (go test) outlives us
	old := time.Now().Add(-2 * staleAfter)
	unix := runtime.GOOS != "windows" && runtime.GOOS != "plan9" && runtime.GOOS != "js" && runtime.GOOS != "wasip1"
	cases := []struct {
		name string
		old  bool // modified long ago
		gone bool // removed by the write
	}{
		{fmt.Sprintf(".m.ern.tmp.%d.0123abcd", dead), false, unix}, // killed writer: by pid where it can be asked
		{fmt.Sprintf(".m.ern.tmp.%d.89abcdef", dead), true, true},  // and by age everywhere
		{fmt.Sprintf(".m.ern.tmp.%d.0123abcd", live), false, false},
		{fmt.Sprintf(".m.ern.tmp.%d.0123abcd", os.Getpid()), false, false}, // this process's (another goroutine's)
		{fmt.Sprintf(".m.ern.tmp.%d.0000abcd", live), true, true},          // a reused pid: by age
		{".m.ern.tmp123456789", false, false},                              // an earlier version's: by age
		{".m.ern.tmp987654321", true, true},
		{fmt.Sprintf(".other.ern.tmp.%d.0123abcd", dead), true, false}, // another output's
		{fmt.Sprintf(".m.ern.tmp.%d.0123abcdX", dead), true, false},    // not the pattern
		{fmt.Sprintf(".m.ern.tmp.%d", dead), true, false},
		{fmt.Sprintf(".m.ern.tmp.%d.xyz12345", dead), true, false},
		{".m.ern.tmp", true, false},
		{".m.ern.tmp.-5.0123abcd", true, false},
		{"m.ern.tmp.1.0123abcd", true, false},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if tc.old {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Mkdir(filepath.Join(dir, fmt.Sprintf(".m.ern.tmp.%d.00000000", dead)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(out, tinyModel()); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for _, tc := range cases {
		if gone := !slices.Contains(names, tc.name); gone != tc.gone {
			t.Errorf("%s (old %v): removed = %v, want %v", tc.name, tc.old, gone, tc.gone)
		}
	}
	// Besides them: the output and the directory that looks like a temporary.
	kept := 2
	for _, tc := range cases {
		if !tc.gone {
			kept++
		}
	}
	if len(names) != kept {
		t.Errorf("directory holds %v", names)
	}
}

// Writers of one output at the same time all succeed, and leave nothing
// but the output.
func TestWriteFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.ern")
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- WriteFile(out, allOpsModel()) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %v, want only the output", ents)
	}
	if _, err := Open(out); err != nil {
		t.Fatal(err)
	}
}
