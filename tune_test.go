package edgeresnet

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tuneChoices opens a session of the model file (or the built-in model
// for "") with tune at threads and returns its steps' choices, the cache
// files, and the logits of a fixed input.
func tuneChoices(t *testing.T, file string, tune Tune, threads int) (choices []string, logits []float32) {
	t.Helper()
	var m *Model
	var err error
	if file == "" {
		m, err = Default()
	} else {
		m, err = Load(file)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewSession(WithTune(tune), WithThreads(threads))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, st := range s.Plan().Steps() {
		if st.Choice != "" {
			choices = append(choices, st.Choice)
		}
	}
	in := s.Input()
	for i := range in {
		in[i] = float32(i%17)/8 - 1
	}
	out, err := s.RunBatch(1)
	if err != nil {
		t.Fatal(err)
	}
	return choices, slices.Clone(out)
}

// allHave reports whether every choice starts with prefix (and there is
// one).
func allHave(choices []string, prefix string) bool {
	return len(choices) > 0 && !slices.ContainsFunc(choices, func(c string) bool { return !strings.HasPrefix(c, prefix) })
}

// cacheFiles lists the tuning cache files under dir.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "edge-resnet", "tune", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestTuneCache checks the tuning cache as a user meets it: the first
// load on a machine measures and writes the cache, the second reads it
// (no measuring), another key (thread count) measures again into a file
// of its own, and a corrupt file is ignored with a warning, measured
// again and replaced.
func TestTuneCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))

	c, policyOut := tuneChoices(t, "", TuneOff, 1)
	if !allHave(c, "policy") || len(cacheFiles(t, dir)) != 0 {
		t.Fatalf("off: choices %q, cache files %q", c, cacheFiles(t, dir))
	}
	c, _ = tuneChoices(t, "", TuneCached, 1)
	if !allHave(c, "policy (not measured)") {
		t.Errorf("cached on an empty cache: %q", c)
	}
	c, out := tuneChoices(t, "", TuneMeasure, 1)
	files := cacheFiles(t, dir)
	if !slices.ContainsFunc(c, func(c string) bool { return strings.HasPrefix(c, "measured: ") }) || len(files) != 1 {
		t.Fatalf("first measure: choices %q, cache files %q", c, files)
	}
	if d := maxAbsDiff(out, policyOut); d > 1e-4 {
		t.Errorf("tuned logits differ from the policy's by %g", d)
	}
	c, _ = tuneChoices(t, "", TuneMeasure, 1)
	if !allHave(c, "cached: ") {
		t.Errorf("second load: %q", c)
	}
	c, _ = tuneChoices(t, "", TuneMeasure, 2)
	if !slices.ContainsFunc(c, func(c string) bool { return strings.HasPrefix(c, "measured: ") }) || len(cacheFiles(t, dir)) != 2 {
		t.Errorf("2 threads: choices %q, cache files %q", c, cacheFiles(t, dir))
	}
	if err := os.WriteFile(files[0], []byte(`{"version": 1, "key": {"cpu": `), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ = tuneChoices(t, "", TuneMeasure, 1)
	if !strings.Contains(logged.String(), "corrupt") || !strings.Contains(logged.String(), files[0]) {
		t.Errorf("corrupt cache: no warning naming it; logged %q", logged.String())
	}
	if !slices.ContainsFunc(c, func(c string) bool { return strings.HasPrefix(c, "measured: ") }) {
		t.Errorf("corrupt cache: %q", c)
	}
	var f struct{ Layers map[string]any }
	if data, err := os.ReadFile(files[0]); err != nil || json.Unmarshal(data, &f) != nil || len(f.Layers) == 0 {
		t.Errorf("corrupt cache not replaced: %v %s", err, data)
	}
}

// TestTuneInt8Exact checks that tuning never changes int8 results: the
// int8 model with every tunable layer on GEMM and on Winograd (the cache
// rewritten to each) gives the same bytes.
func TestTuneInt8Exact(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	const model = "testdata/int8/resnet20_fashion_mnist_int8.ern"
	c, want := tuneChoices(t, model, TuneMeasure, 1)
	files := cacheFiles(t, dir)
	if len(c) == 0 || len(files) != 1 {
		t.Fatalf("choices %q, files %q", c, files)
	}
	for _, choice := range []string{"gemm8", "winograd8"} {
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		for _, r := range f["layers"].(map[string]any) {
			r.(map[string]any)["choice"] = choice
		}
		data, _ = json.Marshal(f)
		if err := os.WriteFile(files[0], data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, got := tuneChoices(t, model, TuneCached, 1)
		if !allHave(c, "cached: ") || !slices.Equal(got, want) {
			t.Errorf("every layer %s: choices %q, logits equal %v", choice, c, slices.Equal(got, want))
		}
	}
}

// maxAbsDiff is the largest |a[i] - b[i]| (+Inf for different lengths).
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
