package main

// The hostile-input suite of issue 8 ("How it is checked"): the CLI is run
// as a subprocess on inputs made at test time (hostile_gen_test.go), and
// every run is checked for its exit status, a clean one-line error naming
// each bad input, the good inputs still processed, and the child's peak
// RSS (rusage max RSS) under a stated bound. A watchdog kills a child whose
// RSS runs far past its bound, so a regression costs seconds, not the
// machine's memory; a child that does not exit in time is killed too.
//
// The CLI binary is this test binary: TestMain runs main() instead of the
// tests when EDGE_RESNET_TEST_CLI=1, so no go tool is needed at test time.
//
// Each run goes through a launcher (the test binary again, with
// EDGE_RESNET_TEST_CLI=launch) that starts the CLI, watches it and reports
// its rusage. The test process cannot start the CLI itself and measure it:
// on Linux a child's ru_maxrss keeps the peak RSS of the memory it was
// forked from (Go forks with vfork, sharing the parent's), which here is
// the test process with its generators; the launcher is small and fresh.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cliEnv makes the test binary act as the CLI ("1") or the launcher.
const cliEnv = "EDGE_RESNET_TEST_CLI"

// launchEnv passes the launcher the RSS ceiling (KiB) and the timeout (ns).
const launchEnv = "EDGE_RESNET_TEST_LAUNCH"

func TestMain(m *testing.M) {
	switch os.Getenv(cliEnv) {
	case "1":
		main() // exits 1 itself on failure
		os.Exit(0)
	case "launch":
		os.Exit(launch())
	}
	// The commands tune by default (--tune measure): keep their cache
	// files out of the user's cache directory, shared by this test
	// binary's commands and the children it starts.
	dir, err := os.MkdirTemp("", "edge-resnet-cmd-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	gibibyte = 1 << 30

	builtinERN = "../../models/resnet20_fashion_mnist.ern"
	samplesDir = "../../testdata/samples/"

	defaultRSSMiB  = 256              // bound for cases that state none
	defaultTimeout = 60 * time.Second // per child
	memPool        = 4 * gibibyte     // watchdog ceilings of children running at once
)

// Reasons: loose, case-insensitive patterns, since the exact wording of the
// messages is free; a bad input's stderr line must name it and match one.
const (
	reBudget    = `budget|max-memory|too (large|big|much)|exceed|limit|more than|larger than|over|cap\b`
	reSize      = `\d+(\.\d+)? ?([kmgtp]i?b|bytes)\b`
	reCorrupt   = `corrupt|crc|checksum|truncated|short|invalid|malformed|unexpected|damaged|bad|not a valid`
	reNonFinite = `non-?finite|nan|inf`
	reSame      = `same file|itself|the input|overwrite|replace|same as|destroy`
	reRange     = `must|invalid|out of range|range|positive|at least|at most|negative|between|>=|<=|not allowed|too (many|large|big|small)|cannot|should|want|bad|illegal|unsupported|not (valid|supported)|outside`
	reMissing   = `no such file|not exist|not found`
	reNotModel  = `not a model|unknown|unsupported|corrupt|magic|invalid|format|truncated|not an|parse`
)

// Wanted exit status: 0, 1, or either (an input that may be accepted but
// must stay within its bounds).
const exitEither = -100

type caseFile struct {
	name string // path in the case's folder, may hold subfolders
	make maker
}

// errLine is a stderr line wanted: one line must match both regexps
// (case-insensitive): what names the input (file, member, flag), reason
// says what is wrong with it.
type errLine struct{ what, reason string }

func errNamed(file, reason string) errLine { return errLine{regexp.QuoteMeta(file), reason} }

type hostileCase struct {
	name     string
	files    []caseFile
	args     []string // run in the case's folder
	env      []string
	stdin    string // a file of the case's folder fed through a pipe
	exit     int
	errs     []errLine // a clean line per bad input
	maxLines int       // most stderr lines allowed; 0: len(errs)+2
	out      []string  // stdout must hold these (the good inputs processed)
	notOut   []string  // and not these
	rssMiB   int64     // peak RSS bound; 0: defaultRSSMiB
	timeout  time.Duration
	before   func(t *testing.T, h *hostileHarness)                        // after files, before the run
	check    func(t *testing.T, h *hostileHarness, r *cliResult) []string // more problems
}

func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile suite: runs in the full (non -short) run; needs up to a minute on 2 cores and up to 4 GiB of memory for its children")
	}
	if runtime.GOOS == "windows" {
		t.Skip("hostile suite: needs a Unix system (devices, pipes, symlinks)")
	}
	s := newHostileSuite()
	if !s.checkRSS {
		t.Logf("peak RSS not checked here (%s)", s.why)
	}
	cases := hostileCases()
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				s.runCase(t, c)
			})
		}
	})
	t.Log(s.summary())
}

// ---- The cases ----

func samplePath(name string) string { return samplesDir + name }

var (
	goodPNG   = copyOf(samplePath("0000_ankle_boot.png"))
	goodPNG2  = copyOf(samplePath("0002_trouser.png"))
	goodPNG3  = copyOf(samplePath("0018_bag.png"))
	brokenPNG = truncatedCopy(samplePath("0004_shirt.png"), 0.5)
	modelERN  = copyOf(builtinERN)
	cifarONNX = copyOf(fixture + ".onnx")
	cifarNPY  = copyOf(fixture + ".input.npy")
	goodNPY   = npyGen([]int{1, 1, 28, 28}, func(i int) float32 { return float32(i%7) / 7 })
)

// evalSet is a class-per-folder data set with two good images, for eval (and
// quantize --calib).
var evalSet = []caseFile{{"data/0/a.png", goodPNG}, {"data/9/b.png", goodPNG2}}

func withFiles(extra []caseFile, files ...caseFile) []caseFile {
	return append(slices.Clone(extra), files...)
}

// hostileCases is the table. Section numbers are the items of issue 8;
// items 4 and 5 (API misuse) and 13 (a static binary) are not inputs of
// the CLI and are tested elsewhere.
func hostileCases() []hostileCase {
	const bomb16 = "bomb16.png"
	oneGiB := int64(gibibyte)
	cases := []hostileCase{
		// 1. Arena budget.
		// The bomb: 4 Pads of a 1x3x8192x8192 input to
		// 1x3x13192x13192 (2 GiB each), summed: a 10 GiB plan.
		{name: "arena bomb (issue's 4 Pads, 10 GiB plan) classify",
			files: []caseFile{{"bomb.onnx", arenaBomb(8192, 4, 2500)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "bomb.onnx", "good.png"},
			exit:  1, errs: []errLine{{reSize, reBudget}}, rssMiB: 1024},
		{name: "arena bomb bench",
			files: []caseFile{{"bomb.onnx", arenaBomb(8192, 4, 2500)}},
			args:  []string{"bench", "-m", "bomb.onnx", "--runs", "1", "--warmup", "0"},
			exit:  1, errs: []errLine{{reSize, reBudget}}, rssMiB: 1024},
		{name: "arena bomb of 64 Pads (59 GiB plan) bench",
			files: []caseFile{{"bomb64.onnx", arenaBomb(8192, 64, 400)}},
			args:  []string{"bench", "-m", "bomb64.onnx", "--runs", "1", "--warmup", "0"},
			exit:  1, errs: []errLine{{reSize, reBudget}}, rssMiB: 1024},
		{name: "arena bomb inspect stays bounded",
			files: []caseFile{{"bomb.onnx", arenaBomb(8192, 4, 2500)}},
			args:  []string{"inspect", "bomb.onnx"},
			exit:  exitEither, rssMiB: 1024},
		// A smaller bomb (4.5 GiB plan) that the default budget of a large
		// machine may let through, refused under an explicit budget.
		{name: "arena bomb of 4.5 GiB under --max-memory 2GB",
			files: []caseFile{{"bomb.onnx", arenaBomb(8192, 4, 400)}, {"good.png", goodPNG}},
			args:  []string{"classify", "--max-memory", "2GB", "-m", "bomb.onnx", "good.png"},
			exit:  1, errs: []errLine{{reSize, reBudget}}, rssMiB: 1024},
		{name: "legit model over --max-memory 256KiB",
			files: []caseFile{{"model.ern", modelERN}, {"good.png", goodPNG}},
			args:  []string{"classify", "--max-memory", "256KiB", "-m", "model.ern", "good.png"},
			exit:  1, errs: []errLine{{reSize, reBudget}}, notOut: []string{"good.png"}},
		{name: "resnet50 over --max-memory 64MiB bench",
			args: []string{"bench", "--arch", "resnet50", "--max-memory", "64MiB", "--runs", "1", "--warmup", "0"},
			exit: 1, errs: []errLine{{reSize, reBudget}}, rssMiB: 512},
		{name: "legit model within the default budget",
			files: []caseFile{{"model.ern", modelERN}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "model.ern", "good.png"},
			exit:  0, out: []string{"good.png"}},
		{name: "legit model within --max-memory 1e9",
			files: []caseFile{{"m.onnx", cifarONNX}, {"in.npy", cifarNPY}},
			args:  []string{"classify", "--max-memory", "1e9", "-m", "m.onnx", "in.npy"},
			exit:  0, out: []string{"in.npy"}},
		{name: "legit model within --max-memory 512MiB bench",
			files: []caseFile{{"m.onnx", cifarONNX}},
			args:  []string{"bench", "--max-memory", "512MiB", "-m", "m.onnx", "--runs", "2", "--warmup", "0"},
			exit:  0, out: []string{"median"}},

		// 2. Sizes validated before allocating: ONNX constants.
		{name: "short initializer: 2^28 INT64 in 8 bytes of raw_data",
			files: []caseFile{{"short.onnx", shortInit("huge_init", onnxInt64, []int64{1 << 28}, le64s(7))}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "short.onnx", "good.png"},
			exit:  1, errs: []errLine{errNamed("huge_init", `raw_data|bytes|need|short|holds|stores|exceed|corrupt`)}},
		{name: "short initializer: 2^28 FLOAT with 2 float_data",
			files: []caseFile{{"short.onnx", withConstant(onnxTensorFloats("short_floats", []int64{1 << 28}, []float32{1, 2}), "short_floats")}},
			args:  []string{"inspect", "short.onnx"},
			exit:  1, errs: []errLine{errNamed("short_floats", `float_data|values|need|short|holds|stores|exceed|corrupt`)}},
		{name: "short initializer: 16384x16384 FLOAT in 4 bytes, convert",
			files: []caseFile{{"short.onnx", shortInit("square", onnxFloat, []int64{16384, 16384}, make([]byte, 4))}},
			args:  []string{"convert", "short.onnx", "-o", "out.ern"},
			exit:  1, errs: []errLine{errNamed("square", `raw_data|bytes|need|short|holds|stores|exceed|corrupt`)},
			check: noFile("out.ern")},
		{name: "initializer with a negative dimension",
			files: []caseFile{{"neg.onnx", shortInit("neg_dims", onnxInt64, []int64{-1, 4}, nil)}},
			args:  []string{"inspect", "neg.onnx"},
			exit:  1, errs: []errLine{errNamed("neg_dims", `negative|dimension|dims|range|invalid|corrupt`)}},
		{name: "initializer whose dims overflow int64",
			files: []caseFile{{"ovf.onnx", shortInit("ovf_dims", onnxFloat, []int64{1 << 20, 1 << 20, 1 << 20, 1 << 20}, make([]byte, 4))}},
			args:  []string{"inspect", "ovf.onnx"},
			exit:  1, errs: []errLine{errNamed("ovf_dims", `exceed|too (large|big|many)|range|overflow|elements|dims|dimension`)}},
		{name: "initializer with dims of 2^40",
			files: []caseFile{{"big.onnx", shortInit("big_dims", onnxFloat, []int64{1 << 40, 1 << 40}, make([]byte, 4))}},
			args:  []string{"inspect", "big.onnx"},
			exit:  1, errs: []errLine{errNamed("big_dims", `exceed|too (large|big|many)|range|overflow|elements|dims|dimension`)}},
		{name: "ConstantOfShape of 2^31 floats",
			files: []caseFile{{"cos.onnx", constantOfShape("cos_bomb", onnxFloat, 65536, 32768)}},
			args:  []string{"inspect", "cos.onnx"},
			exit:  1, errs: []errLine{{`cos_bomb|ConstantOfShape`, reBudget + `|elements`}}},
		{name: "ConstantOfShape of 2^28 INT64 (2 GiB)",
			files: []caseFile{{"cos.onnx", constantOfShape("cos_i64", onnxInt64, 16384, 16384)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "cos.onnx", "good.png"},
			exit:  1, errs: []errLine{{`cos_i64|ConstantOfShape`, reBudget + `|elements`}}},
		{name: "Range of 2^28 INT64 (2 GiB) cast to float",
			files: []caseFile{{"range.onnx", rangeOf("range_bomb", 1<<28)}},
			args:  []string{"convert", "range.onnx", "-o", "out.ern"},
			exit:  1, errs: []errLine{{`range_bomb|Range|Cast`, reBudget + `|elements`}}, check: noFile("out.ern")},

		// 2. Images: pixel bombs beside a good image, header bombs, damage.
		{name: "16-bit RGBA PNG bomb 11000x11000 beside a good image",
			files: []caseFile{{bomb16, pngBomb(11000, 11000, 16, 6)}, {"good.png", goodPNG}},
			args:  []string{"classify", bomb16, "good.png"},
			exit:  1, errs: []errLine{errNamed(bomb16, reBudget+`|pixels`)}, out: []string{"good.png"}, notOut: []string{bomb16}, rssMiB: 600},
		{name: "16-bit RGB PNG bomb 11000x11000 beside a good image, --json",
			files: []caseFile{{"bomb16rgb.png", pngBomb(11000, 11000, 16, 2)}, {"good.png", goodPNG}},
			args:  []string{"classify", "--json", "bomb16rgb.png", "good.png"},
			exit:  1, errs: []errLine{errNamed("bomb16rgb.png", reBudget+`|pixels`)}, out: []string{`"file":"good.png"`}, rssMiB: 600,
			check: jsonLines},
		{name: "8-bit RGBA PNG of 11585x11585 (just under the pixel cap) beside a good image",
			files: []caseFile{{"rgba8.png", pngBomb(11585, 11585, 8, 6)}, {"good.png", goodPNG}},
			args:  []string{"classify", "rgba8.png", "good.png"},
			exit:  exitEither, out: []string{"good.png"}, rssMiB: 600},
		{name: "JPEG header declaring 65500x65500",
			files: []caseFile{{"huge.jpg", jpegHeader(65500, 65500)}, {"good.png", goodPNG}},
			args:  []string{"classify", "huge.jpg", "good.png"},
			exit:  1, errs: []errLine{errNamed("huge.jpg", reBudget+`|pixels`)}, out: []string{"good.png"}},
		{name: "JPEG header declaring 11000x11000 without data",
			files: []caseFile{{"trunc11k.jpg", jpegHeader(11000, 11000)}, {"good.png", goodPNG}},
			args:  []string{"classify", "trunc11k.jpg", "good.png"},
			exit:  1, errs: []errLine{errNamed("trunc11k.jpg", reBudget+`|pixels|`+reCorrupt)}, out: []string{"good.png"}, rssMiB: 600},
		{name: "GIF header declaring 65535x65535",
			files: []caseFile{{"huge.gif", gifHeader(65535, 65535)}, {"good.png", goodPNG}},
			args:  []string{"classify", "huge.gif", "good.png"},
			exit:  1, errs: []errLine{errNamed("huge.gif", reBudget+`|pixels`)}, out: []string{"good.png"}},
		{name: "BMP header declaring 100000x100000",
			files: []caseFile{{"huge.bmp", bmpHeader(100000, 100000)}, {"good.png", goodPNG}},
			args:  []string{"classify", "huge.bmp", "good.png"},
			exit:  1, errs: []errLine{errNamed("huge.bmp", reBudget+`|pixels`)}, out: []string{"good.png"}},
		{name: "truncated and bit-flipped PNGs and an empty one beside a good image",
			files: []caseFile{{"trunc.png", brokenPNG}, {"flip.png", bitFlipped(samplePath("0006_coat.png"), 0.6)},
				{"empty.png", writeGen(nil)}, {"good.png", goodPNG}},
			args: []string{"classify", "trunc.png", "flip.png", "empty.png", "good.png"},
			exit: 1, errs: []errLine{errNamed("trunc.png", reCorrupt), errNamed("flip.png", reCorrupt), errNamed("empty.png", `empty|`+reCorrupt)},
			out: []string{"good.png"}},

		// 2. Archives: zip members that inflate to 1 GiB.
		{name: "eval zip with a member inflating to 1 GiB (honest header)",
			files: []caseFile{{"data.zip", zipGen(zipMember{name: "0/a.png", src: samplePath("0000_ankle_boot.png")},
				zipMember{name: "0/bomb.png", zeros: oneGiB}, zipMember{name: "9/b.png", src: samplePath("0002_trouser.png")})}},
			args: []string{"eval", "data.zip"},
			exit: 1, errs: []errLine{errNamed("bomb.png", reBudget)}, out: []string{"top-1"}, rssMiB: 512},
		{name: "quantize --calib zip with a member inflating to 1 GiB among good images",
			files: []caseFile{{"calib.zip", zipGen(zipMember{name: "a.png", src: samplePath("0000_ankle_boot.png")},
				zipMember{name: "bomb.png", zeros: oneGiB}, zipMember{name: "b.png", src: samplePath("0002_trouser.png")},
				zipMember{name: "c.png", src: samplePath("0018_bag.png")})}},
			args: []string{"quantize", "--calib", "calib.zip", "-n", "0", "-o", "q.ern"},
			exit: 0, errs: []errLine{errNamed("bomb.png", reBudget)}, out: []string{"q.ern"}, rssMiB: 512, check: hasFile("q.ern")},
		{name: "eval zip whose member header lies (declares 4 KiB, inflates to 1 GiB)",
			files: []caseFile{{"liar.zip", zipGen(zipMember{name: "0/a.png", src: samplePath("0000_ankle_boot.png")},
				zipMember{name: "0/liar.png", zeros: oneGiB, declared: 4096}, zipMember{name: "9/b.png", src: samplePath("0002_trouser.png")})}},
			args: []string{"eval", "liar.zip"},
			exit: 1, errs: []errLine{errNamed("liar.png", reBudget+`|`+reCorrupt+`|format|size`)}, out: []string{"top-1"}, rssMiB: 512},
		{name: "eval zip holding a 16-bit PNG bomb",
			files: []caseFile{{"pngbomb.zip", zipGen(zipMember{name: "0/a.png", src: samplePath("0000_ankle_boot.png")},
				zipMember{name: "0/" + bomb16, data: pngBombData(11000, 11000, 16, 6)}, zipMember{name: "9/b.png", src: samplePath("0002_trouser.png")})}},
			args: []string{"eval", "pngbomb.zip"},
			exit: 1, errs: []errLine{errNamed(bomb16, reBudget+`|pixels`)}, out: []string{"top-1"}, rssMiB: 600},

		// 2. IDX and CIFAR readers.
		{name: "gzip IDX whose header says 60000x28x28 but inflates to 1 GiB",
			files: []caseFile{{"bomb-images-idx3-ubyte.gz", gzipGen(idxHeader(60000, 28, 28), oneGiB)},
				{"bomb-labels-idx1-ubyte.gz", gzipGen(append(idxHeader(60000), make([]byte, 60000)...), 0)}},
			args: []string{"eval", "bomb-images-idx3-ubyte.gz"},
			exit: 1, errs: []errLine{errNamed("bomb-images-idx3-ubyte.gz", reBudget+`|holds|need|trailing|size|bytes`)}, rssMiB: 512},
		{name: "gzip IDX declaring 2^28 images of 28x28 in 784 bytes",
			files: []caseFile{{"many-images-idx3-ubyte.gz", gzipGen(idxHeader(1<<28-1, 28, 28), 784)},
				{"many-labels-idx1-ubyte.gz", gzipGen(idxHeader(1<<28-1), 1)}},
			args: []string{"eval", "many-images-idx3-ubyte.gz"},
			exit: 1, errs: []errLine{errNamed("many-images-idx3-ubyte.gz", reBudget+`|holds|need|truncated|size|bytes|dimension`)}},
		{name: "gzip IDX labels file inflating to 1 GiB",
			files: []caseFile{{"lab-images-idx3-ubyte.gz", gzipGen(idxHeader(10, 28, 28), 7840)},
				{"lab-labels-idx1-ubyte.gz", gzipGen(idxHeader(10), oneGiB)}},
			args: []string{"eval", "lab-images-idx3-ubyte.gz"},
			exit: 1, errs: []errLine{errNamed("lab-labels-idx1-ubyte.gz", reBudget+`|holds|need|trailing|size|bytes`)}, rssMiB: 512},
		{name: "raw IDX of 2 GiB (sparse) whose header says 60000x28x28",
			files: []caseFile{{"sparse-images-idx3-ubyte", sparseWith(idxHeader(60000, 28, 28), 2*gibibyte)},
				{"sparse-labels-idx1-ubyte", writeGen(append(idxHeader(60000), make([]byte, 60000)...))}},
			args: []string{"eval", "sparse-images-idx3-ubyte"},
			exit: 1, errs: []errLine{errNamed("sparse-images-idx3-ubyte", reBudget+`|holds|need|trailing|size|bytes`)}, rssMiB: 512},
		{name: "CIFAR-10 .bin of 1.2 GB (sparse), eval --limit 10",
			files: []caseFile{{"big.bin", sparseWith(nil, 3073*400000)}},
			args:  []string{"eval", "--limit", "10", "big.bin"},
			exit:  exitEither, rssMiB: 512},

		// 3. Models from pipes and devices.
		{name: "model image piped to -m /dev/stdin",
			files: []caseFile{{"m.ern", modelERN}, {"good.png", goodPNG}}, stdin: "m.ern",
			args: []string{"classify", "-m", "/dev/stdin", "good.png"},
			exit: 0, out: []string{"good.png"}},
		{name: "model image piped to -m -, same output as from the file",
			files: []caseFile{{"m.ern", modelERN}, {"good.png", goodPNG}}, stdin: "m.ern",
			args: []string{"classify", "--json", "--logits", "-m", "-", "good.png"},
			exit: 0, out: []string{"good.png"},
			check: sameAsFile([]string{"classify", "--json", "--logits", "-m", "m.ern", "good.png"})},
		{name: "ONNX model piped to -m -",
			files: []caseFile{{"m.onnx", cifarONNX}, {"in.npy", cifarNPY}}, stdin: "m.onnx",
			args: []string{"classify", "--json", "--logits", "-m", "-", "in.npy"},
			exit: 0, out: []string{"in.npy"},
			check: sameAsFile([]string{"classify", "--json", "--logits", "-m", "m.onnx", "in.npy"})},
		{name: "-m /dev/zero fails quickly",
			files: []caseFile{{"good.png", goodPNG}},
			args:  []string{"classify", "-m", "/dev/zero", "good.png"},
			// The cap on what a model read may hold can be as large as the
			// 2 GiB a protobuf can hold; the point is that it ends.
			exit: 1, errs: []errLine{errNamed("/dev/zero", reBudget+`|`+reNotModel)}, rssMiB: 3 * 1024, timeout: 10 * time.Second},

		// 6. Non-finite outputs and degenerate preprocessing.
		{name: "NaN .npy beside good .npy and .png",
			files: []caseFile{{"nan.npy", npyGen([]int{1, 1, 28, 28}, func(int) float32 { return float32(math.NaN()) })},
				{"good.npy", goodNPY}, {"good.png", goodPNG}},
			args: []string{"classify", "nan.npy", "good.npy", "good.png"},
			exit: 1, errs: []errLine{errNamed("nan.npy", reNonFinite)}, out: []string{"good.npy", "good.png"}, notOut: []string{"nan.npy", "NaN"}},
		{name: "+Inf .npy before a good .npy, --json",
			files: []caseFile{{"inf.npy", npyGen([]int{1, 1, 28, 28}, func(int) float32 { return float32(math.Inf(1)) })}, {"good.npy", goodNPY}},
			args:  []string{"classify", "--json", "inf.npy", "good.npy"},
			exit:  1, errs: []errLine{errNamed("inf.npy", reNonFinite)}, out: []string{`"file":"good.npy"`}, notOut: []string{"inf.npy", "NaN"},
			check: jsonLines},
		{name: "3e38 .npy (outputs overflow) beside a good .npy",
			files: []caseFile{{"huge.npy", npyGen([]int{1, 1, 28, 28}, func(int) float32 { return 3e38 })}, {"good.npy", goodNPY}},
			args:  []string{"classify", "--json", "huge.npy", "good.npy"},
			exit:  exitEither, out: []string{`"file":"good.npy"`}, notOut: []string{"NaN", "Inf"}, check: jsonLines},
		{name: "convert --std 1e-45",
			files: []caseFile{{"m.onnx", cifarONNX}},
			args:  []string{"convert", "m.onnx", "-o", "out.ern", "--std", "1e-45,1e-45,1e-45"},
			exit:  1, errs: []errLine{{`std`, `finite|degenerate|tiny|small|zero|subnormal|` + reRange}}, check: noFile("out.ern")},
		{name: "convert --std 0",
			files: []caseFile{{"m.onnx", cifarONNX}},
			args:  []string{"convert", "m.onnx", "-o", "out.ern", "--std", "0,0,0"},
			exit:  1, errs: []errLine{{`std`, `finite|degenerate|zero|` + reRange}}, check: noFile("out.ern")},
		{name: "convert --mean nan",
			files: []caseFile{{"m.onnx", cifarONNX}},
			args:  []string{"convert", "m.onnx", "-o", "out.ern", "--mean", "nan,0,0"},
			exit:  1, errs: []errLine{{`mean`, `finite|nan|` + reRange}}, check: noFile("out.ern")},
		{name: "convert --scale inf",
			files: []caseFile{{"m.onnx", cifarONNX}},
			args:  []string{"convert", "m.onnx", "-o", "out.ern", "--scale", "inf"},
			exit:  1, errs: []errLine{{`scale`, `finite|inf|` + reRange}}, check: noFile("out.ern")},

		{name: "convert --labels /dev/zero",
			files: []caseFile{{"m.onnx", cifarONNX}},
			args:  []string{"convert", "m.onnx", "-o", "out.ern", "--labels", "/dev/zero"},
			exit:  1, errs: []errLine{{`/dev/zero`, `more than|labels`}}, rssMiB: 128, check: noFile("out.ern")},

		// 7. Commands refuse to replace their input.
		{name: "convert in.onnx -o in.onnx",
			files: []caseFile{{"in.onnx", cifarONNX}},
			args:  []string{"convert", "in.onnx", "-o", "in.onnx"},
			exit:  1, errs: []errLine{errNamed("in.onnx", reSame)}, check: unchanged("in.onnx", fixture+".onnx")},
		{name: "convert onto a symlink to its input",
			files: []caseFile{{"in.onnx", cifarONNX}, {"link.onnx", symlinkTo("in.onnx")}},
			args:  []string{"convert", "in.onnx", "-o", "link.onnx"},
			exit:  1, errs: []errLine{{`in\.onnx|link\.onnx`, reSame}}, check: unchanged("in.onnx", fixture+".onnx")},
		{name: "convert onto a hard link to its input",
			files: []caseFile{{"in.onnx", cifarONNX}, {"hard.onnx", hardlinkTo("in.onnx")}},
			args:  []string{"convert", "in.onnx", "-o", "hard.onnx"},
			exit:  1, errs: []errLine{{`in\.onnx|hard\.onnx`, reSame}}, check: unchanged("hard.onnx", fixture+".onnx")},
		{name: "convert onto its input spelled another way",
			files: []caseFile{{"in.onnx", cifarONNX}, {"sub/keep", writeGen(nil)}},
			args:  []string{"convert", "in.onnx", "-o", "sub/../in.onnx"},
			exit:  1, errs: []errLine{{`in\.onnx`, reSame}}, check: unchanged("in.onnx", fixture+".onnx")},
		{name: "quantize -m q.ern -o q.ern",
			files: withFiles(evalSet, caseFile{"q.ern", modelERN}),
			args:  []string{"quantize", "-m", "q.ern", "-o", "q.ern", "--calib", "data", "-n", "2"},
			exit:  1, errs: []errLine{errNamed("q.ern", reSame)}, check: unchanged("q.ern", builtinERN)},
		{name: "quantize onto a symlink to its input",
			files: withFiles(evalSet, caseFile{"q.ern", modelERN}, caseFile{"ql.ern", symlinkTo("q.ern")}),
			args:  []string{"quantize", "-m", "q.ern", "-o", "ql.ern", "--calib", "data", "-n", "2"},
			exit:  1, errs: []errLine{{`q\.ern|ql\.ern`, reSame}}, check: unchanged("q.ern", builtinERN)},
		{name: "quantize onto a hard link to its input",
			files: withFiles(evalSet, caseFile{"q.ern", modelERN}, caseFile{"qh.ern", hardlinkTo("q.ern")}),
			args:  []string{"quantize", "-m", "q.ern", "-o", "qh.ern", "--calib", "data", "-n", "2"},
			exit:  1, errs: []errLine{{`q\.ern|qh\.ern`, reSame}}, check: unchanged("qh.ern", builtinERN)},

		// 8. Temporaries of killed and failed writes.
		{name: "convert after a write killed by SIGKILL leaves no temporaries",
			files:  []caseFile{{"big.onnx", gemmModel(4096)}, {"small.onnx", cifarONNX}},
			before: killMidWrite([]string{"convert", "big.onnx", "-o", "out.ern", "--resize", "0"}, "out.ern"),
			args:   []string{"convert", "small.onnx", "-o", "out.ern", "--resize", "0"},
			exit:   0, out: []string{"out.ern"}, rssMiB: 512,
			check: onlyFiles("big.onnx", "small.onnx", "out.ern")},
		{name: "failed convert leaves no files",
			files: []caseFile{{"bad.onnx", truncatedCopy(fixture+".onnx", 0.5)}},
			args:  []string{"convert", "bad.onnx", "-o", "out.ern"},
			exit:  1, errs: []errLine{errNamed("bad.onnx", reCorrupt)}, check: onlyFiles("bad.onnx")},

		// 9. Symlinked folders and loops.
		{name: "symlink to a folder of images",
			files: []caseFile{{"imgs/a.png", goodPNG}, {"imgs/b.png", goodPNG2}, {"link", symlinkTo("imgs")}},
			args:  []string{"classify", "-k", "1", "link"},
			exit:  0, out: []string{"a.png", "b.png"}},
		{name: "symlinked subfolder inside a walked folder",
			files: []caseFile{{"imgs/b.png", goodPNG2}, {"root/a.png", goodPNG}, {"root/sub", symlinkTo("../imgs")}},
			args:  []string{"classify", "-k", "1", "root"},
			exit:  0, out: []string{"a.png", "b.png"}},
		{name: "symlink loop (dir/loop -> dir)",
			files: []caseFile{{"root/a.png", goodPNG}, {"root/loop", symlinkTo(".")}},
			args:  []string{"classify", "-k", "1", "root"},
			exit:  exitEither, out: []string{"a.png"}, timeout: 30 * time.Second, check: atMostLines("a.png", 2)},
		{name: "symlink cycle across two folders",
			files: []caseFile{{"x/a.png", goodPNG}, {"y/b.png", goodPNG2}, {"x/toy", symlinkTo("../y")}, {"y/tox", symlinkTo("../x")}},
			args:  []string{"classify", "-k", "1", "x"},
			exit:  exitEither, out: []string{"a.png", "b.png"}, timeout: 30 * time.Second, check: atMostLines("a.png", 2)},

		// 10. EDGE_RESNET_KERNELS and numeric flags.
		{name: "EDGE_RESNET_KERNELS=bogus",
			files: []caseFile{{"good.png", goodPNG}}, env: []string{"EDGE_RESNET_KERNELS=bogus"},
			args: []string{"classify", "good.png"},
			exit: 1, errs: []errLine{{`bogus`, `generic`}}, notOut: []string{"good.png"}},
		{name: "EDGE_RESNET_KERNELS=" + foreignKernel() + " (another architecture's path)",
			files: []caseFile{{"good.png", goodPNG}}, env: []string{"EDGE_RESNET_KERNELS=" + foreignKernel()},
			args: []string{"classify", "good.png"},
			exit: 1, errs: []errLine{{foreignKernel(), `generic`}}},
		{name: "EDGE_RESNET_KERNELS=bogus bench",
			env:  []string{"EDGE_RESNET_KERNELS=bogus"},
			args: []string{"bench", "--runs", "1", "--warmup", "0"},
			exit: 1, errs: []errLine{{`bogus`, `generic`}}},
		{name: "EDGE_RESNET_KERNELS=generic works",
			files: []caseFile{{"good.png", goodPNG}}, env: []string{"EDGE_RESNET_KERNELS=generic"},
			args: []string{"classify", "good.png"},
			exit: 0, out: []string{"good.png"}},
		{name: "EDGE_RESNET_MAX_MEMORY=bogus",
			files: []caseFile{{"good.png", goodPNG}}, env: []string{"EDGE_RESNET_MAX_MEMORY=bogus"},
			args: []string{"classify", "good.png"},
			exit: 1, errs: []errLine{{`EDGE_RESNET_MAX_MEMORY`, reRange}}},
		{name: "eval within --max-memory 1GiB",
			files: evalSet, args: []string{"eval", "--max-memory", "1GiB", "data"},
			exit: 0, out: []string{"top-1"}},
		flagCase("eval --limit -5", `limit`, "eval", "--limit", "-5", "data"),
		flagCase("eval --threads -1", `threads`, "eval", "--threads", "-1", "data"),
		flagCase("classify -k 0", `-k\b|--top|\btop\b`, "classify", "-k", "0", "good.png"),
		flagCase("classify -k -3", `-k\b|--top|\btop\b`, "classify", "-k", "-3", "good.png"),
		flagCase("classify --threads -1", `threads`, "classify", "--threads", "-1", "good.png"),
		flagCase("classify --threads 100000", `threads`, "classify", "--threads", "100000", "good.png"),
		flagCase("bench --runs 0", `runs`, "bench", "--runs", "0"),
		flagCase("bench --runs -1", `runs`, "bench", "--runs", "-1"),
		flagCase("bench --warmup -1", `warmup`, "bench", "--warmup", "-1"),
		flagCase("bench --threads -1", `threads`, "bench", "--threads", "-1", "--runs", "1"),
		flagCase("bench --arch resnet18 --height -1", `--height|\bheight\b[^:]`, "bench", "--arch", "resnet18", "--height", "-1", "--runs", "1"),
		flagCase("inspect --threads -1", `threads`, "inspect", "--threads", "-1"),
		flagCase("quantize -n -1", `-n\b`, "quantize", "-n", "-1", "--calib", "data", "-o", "q.ern"),
		flagCase("quantize --threads -1", `threads`, "quantize", "--threads", "-1", "--calib", "data", "-o", "q.ern"),
		flagCase("quantize --weight-bits 6", `weight.bits`, "quantize", "--weight-bits", "6", "--calib", "data", "-o", "q.ern"),
		flagCase("classify --max-memory -1", `max-memory`, "classify", "--max-memory", "-1", "good.png"),
		flagCase("classify --max-memory bogus", `max-memory`, "classify", "--max-memory", "bogus", "good.png"),
		flagCase("eval --max-memory 12XB", `max-memory`, "eval", "--max-memory", "12XB", "data"),

		// 11. Unreadable calibration and evaluation images.
		{name: "quantize with one unreadable calibration image among good ones",
			files: []caseFile{{"calib/a.png", goodPNG}, {"calib/b.png", goodPNG2}, {"calib/c.png", goodPNG3}, {"calib/broken.png", brokenPNG}},
			args:  []string{"quantize", "--calib", "calib", "-n", "0", "-o", "q.ern"},
			exit:  0, errs: []errLine{errNamed("broken.png", `skip|warn|`+reCorrupt)}, out: []string{"q.ern"}, check: hasFile("q.ern")},
		{name: "quantize with only unreadable calibration images",
			files: []caseFile{{"calib/a.png", brokenPNG}, {"calib/b.png", writeGen(nil)}, {"calib/c.png", bitFlipped(samplePath("0006_coat.png"), 0.6)}},
			args:  []string{"quantize", "--calib", "calib", "-n", "0", "-o", "q.ern"},
			// A warning per image may come before the error.
			exit: 1, errs: []errLine{{`calib|image`, `too few|fewer|only \d+ of|no (usable|readable|valid)|none|all|remain|unreadable|could not`}}, maxLines: 3 + 2,
			check: noFile("q.ern")},
		{name: "eval names an unreadable image",
			files: withFiles(evalSet, caseFile{"data/9/broken.png", brokenPNG}),
			args:  []string{"eval", "data"},
			exit:  1, errs: []errLine{errNamed("broken.png", reCorrupt)}, out: []string{"top-1"}},

		// 12. A deep graph loads and runs (the quadratic planner took 12 s
		// for this one on 2 cores, the fixed one 3). The bound leaves room
		// for a loaded CI machine; the growth itself (n log n, not n²) is
		// asserted by the arena and ONNX import tests, which compare sizes.
		{name: "160,000-node graph loads in seconds",
			files: []caseFile{{"deep.onnx", chainModel(160000)}},
			args:  []string{"bench", "-m", "deep.onnx", "--runs", "1", "--warmup", "0", "--threads", "1"},
			exit:  0, out: []string{"median"}, rssMiB: 512, timeout: 30 * time.Second},

		// Damaged, empty and misplaced model files (these held before the
		// issue; kept against regressions).
		{name: "truncated model image",
			files: []caseFile{{"trunc.ern", truncatedCopy(builtinERN, 0.5)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "trunc.ern", "good.png"},
			exit:  1, errs: []errLine{errNamed("trunc.ern", reCorrupt)}},
		{name: "bit-flipped model image",
			files: []caseFile{{"flip.ern", bitFlipped(builtinERN, 0.5)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "flip.ern", "good.png"},
			exit:  1, errs: []errLine{errNamed("flip.ern", `crc|checksum|corrupt`)}},
		{name: "bit-flipped model image, inspect",
			files: []caseFile{{"flip.ern", bitFlipped(builtinERN, 0.9)}},
			args:  []string{"inspect", "flip.ern"},
			exit:  1, errs: []errLine{errNamed("flip.ern", `crc|checksum|corrupt`)}},
		{name: "model image with a flipped magic byte",
			files: []caseFile{{"magic.ern", bitFlipped(builtinERN, 0)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "magic.ern", "good.png"},
			exit:  1, errs: []errLine{errNamed("magic.ern", reNotModel)}},
		{name: "empty model file",
			files: []caseFile{{"empty.ern", writeGen(nil)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "empty.ern", "good.png"},
			exit:  1, errs: []errLine{errNamed("empty.ern", `empty|0 bytes|no data|no graph|`+reNotModel)}},
		{name: "directory as -m",
			files: []caseFile{{"modeldir/x", writeGen(nil)}, {"good.png", goodPNG}},
			args:  []string{"classify", "-m", "modeldir", "good.png"},
			exit:  1, errs: []errLine{errNamed("modeldir", `directory|folder`)}},
		{name: "nonexistent model",
			files: []caseFile{{"good.png", goodPNG}},
			args:  []string{"classify", "-m", "nope.ern", "good.png"},
			exit:  1, errs: []errLine{errNamed("nope.ern", reMissing)}},
		{name: "truncated ONNX model",
			files: []caseFile{{"trunc.onnx", truncatedCopy(fixture+".onnx", 0.5)}, {"in.npy", cifarNPY}},
			args:  []string{"classify", "-m", "trunc.onnx", "in.npy"},
			exit:  1, errs: []errLine{errNamed("trunc.onnx", reCorrupt)}},
		{name: "an image as -m",
			files: []caseFile{{"good.png", goodPNG}},
			args:  []string{"classify", "-m", "good.png", "good.png"},
			exit:  1, errs: []errLine{errNamed("good.png", reNotModel)}},
	}
	return cases
}

// flagCase is a numeric flag out of range: one line naming the flag.
func flagCase(name, flag string, args ...string) hostileCase {
	return hostileCase{name: name, files: withFiles(evalSet, caseFile{"good.png", goodPNG}), args: args,
		exit: 1, errs: []errLine{{flag, reRange}}}
}

// foreignKernel is a kernel path of another architecture.
func foreignKernel() string {
	if strings.HasPrefix(runtime.GOARCH, "arm") {
		return "avx2"
	}
	return "neon"
}

// ---- Running a child ----

type cliResult struct {
	args           []string
	stdout, stderr string
	exit           int // -1: killed by a signal
	rssKiB         int64
	wall           time.Duration
	timedOut       bool
	watchdog       int64 // the RSS ceiling (KiB) at which the watchdog killed it, or 0
	startErr       error
}

type hostileSuite struct {
	checkRSS bool
	why      string // when not
	race     bool

	mu   sync.Mutex
	cond *sync.Cond
	free int64 // memPool left for watchdog ceilings

	cases, failed int
	failures      []string
	maxRSS        int64
	maxRSSCase    string
	runs          int
}

func newHostileSuite() *hostileSuite {
	s := &hostileSuite{checkRSS: rssSupported, free: memPool}
	s.cond = sync.NewCond(&s.mu)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "-race" && kv.Value == "true" {
				s.race = true
			}
		}
	}
	switch {
	case !rssSupported:
		s.why = "no rusage max RSS in KiB on " + runtime.GOOS
	case s.race:
		s.checkRSS, s.why = false, "the race detector inflates memory"
	}
	return s
}

// ceilingKiB is where the watchdog kills a child with a bound of rssMiB.
func (s *hostileSuite) ceilingKiB(rssMiB int64) int64 {
	c := max(2*rssMiB, rssMiB+256) * 1024
	if s.race {
		c *= 4
	}
	return min(c, memPool/1024)
}

func (s *hostileSuite) acquire(kib int64) {
	s.mu.Lock()
	for s.free < kib*1024 {
		s.cond.Wait()
	}
	s.free -= kib * 1024
	s.mu.Unlock()
}

func (s *hostileSuite) release(kib int64) {
	s.mu.Lock()
	s.free += kib * 1024
	s.mu.Unlock()
	s.cond.Broadcast()
}

// self is this binary, by an absolute path (children run in other
// folders).
var self = sync.OnceValue(func() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	p, _ := filepath.Abs(os.Args[0])
	return p
})

// cliCommand is the CLI (this binary, see TestMain) with args in dir.
func cliCommand(ctx context.Context, dir string, args, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, self(), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), cliEnv+"=1")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// launchReport is what the launcher tells the suite about the CLI's run.
type launchReport struct {
	Exit     int    `json:"exit"` // -1: killed by a signal
	MaxRSS   int64  `json:"maxrss_kib"`
	TimedOut bool   `json:"timed_out"`
	Watchdog int64  `json:"watchdog_kib"` // the ceiling it was killed at, or 0
	StartErr string `json:"start_err,omitempty"`
}

// launch is the launcher: it runs the CLI with its own arguments, stdin,
// stdout and stderr, kills it on timeout or when its RSS passes the
// ceiling, and writes a launchReport to file descriptor 3.
func launch() int {
	var ceiling, timeout int64
	fmt.Sscanf(os.Getenv(launchEnv), "%d,%d", &ceiling, &timeout)
	report := os.NewFile(3, "report")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, self(), os.Args[1:]...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	dieWithParent(cmd)
	var rep launchReport
	if err := cmd.Start(); err != nil {
		rep.Exit, rep.StartErr = -1, err.Error()
		json.NewEncoder(report).Encode(rep)
		return 0
	}
	done := make(chan struct{})
	watched := make(chan int64, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				watched <- 0
				return
			case <-tick.C:
				if kib, ok := liveRSSKiB(cmd.Process.Pid); ok && kib > ceiling {
					cmd.Process.Kill()
					watched <- ceiling
					return
				}
			}
		}
	}()
	cmd.Wait()
	close(done)
	rep.Watchdog = <-watched
	rep.Exit = cmd.ProcessState.ExitCode()
	rep.MaxRSS = peakRSSKiB(cmd.ProcessState)
	rep.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	json.NewEncoder(report).Encode(rep)
	return 0
}

// run runs the CLI once through the launcher: killed after timeout or
// when its RSS passes the ceiling for rssMiB.
func (s *hostileSuite) run(dir string, args, env []string, stdin io.Reader, timeout time.Duration, rssMiB int64) *cliResult {
	ceiling := s.ceilingKiB(rssMiB)
	s.acquire(ceiling)
	defer s.release(ceiling)
	r := &cliResult{args: args, exit: -1}
	// The launcher's own deadline, for a launcher that hangs.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self(), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), cliEnv+"=launch", fmt.Sprintf("%s=%d,%d", launchEnv, ceiling, timeout))
	cmd.Stdin = stdin // not an *os.File: exec feeds it through a pipe
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	pr, pw, err := os.Pipe()
	if err != nil {
		r.startErr = err
		return r
	}
	defer pr.Close()
	cmd.ExtraFiles = []*os.File{pw}
	t0 := time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		r.startErr = err
		return r
	}
	var rep launchReport
	decoded := make(chan error, 1)
	go func() { decoded <- json.NewDecoder(pr).Decode(&rep) }()
	werr := cmd.Wait()
	r.wall = time.Since(t0)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	if derr := <-decoded; derr != nil {
		r.startErr = fmt.Errorf("no report from the launcher (%v, %v)", werr, derr)
		return r
	}
	if rep.StartErr != "" {
		r.startErr = errors.New(rep.StartErr)
	}
	r.exit, r.rssKiB, r.timedOut, r.watchdog = rep.Exit, rep.MaxRSS, rep.TimedOut, rep.Watchdog
	s.mu.Lock()
	s.runs++
	s.mu.Unlock()
	return r
}

// hostileHarness is one case's folder and runner.
type hostileHarness struct {
	s   *hostileSuite
	dir string
	c   *hostileCase
	rss int64 // the case's peak over its runs
}

func (h *hostileHarness) path(name string) string { return filepath.Join(h.dir, name) }

// run runs the CLI in the case's folder with the case's bounds.
func (h *hostileHarness) run(args []string, stdin io.Reader) *cliResult {
	timeout := orDefault(h.c.timeout, defaultTimeout)
	r := h.s.run(h.dir, args, h.c.env, stdin, timeout, h.rssBound())
	h.rss = max(h.rss, r.rssKiB)
	return r
}

func (h *hostileHarness) rssBound() int64 { return orDefault(h.c.rssMiB, defaultRSSMiB) }

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (s *hostileSuite) runCase(t *testing.T, c hostileCase) {
	h := &hostileHarness{s: s, dir: t.TempDir(), c: &c}
	for _, f := range c.files {
		p := h.path(f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f.make(t, p)
	}
	if c.before != nil {
		c.before(t, h)
	}
	var stdin io.Reader
	if c.stdin != "" {
		data, err := os.ReadFile(h.path(c.stdin))
		if err != nil {
			t.Fatal(err)
		}
		stdin = bytes.NewReader(data)
	}
	r := h.run(c.args, stdin)
	problems := s.assess(h, r)
	if c.check != nil && r.startErr == nil {
		problems = append(problems, c.check(t, h, r)...)
	}
	s.record(c.name, h.rss, problems)
	if len(problems) > 0 {
		t.Error(s.report(h, r, problems))
		return
	}
	first, _, _ := strings.Cut(strings.TrimSpace(r.stderr), "\n")
	t.Logf("exit %d after %.1fs, peak RSS %d MiB; stderr: %.200s", r.exit, r.wall.Seconds(), r.rssKiB/1024, first)
}

func (s *hostileSuite) record(name string, rssKiB int64, problems []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cases++
	if len(problems) > 0 {
		s.failed++
		s.failures = append(s.failures, name)
	}
	if rssKiB > s.maxRSS {
		s.maxRSS, s.maxRSSCase = rssKiB, name
	}
}

func (s *hostileSuite) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rss := fmt.Sprintf("max RSS %d MiB (%s)", s.maxRSS/1024, s.maxRSSCase)
	if !s.checkRSS {
		rss = "RSS not checked: " + s.why
	}
	if s.failed == 0 {
		return fmt.Sprintf("%d hostile cases (%d runs), all clean errors, %s", s.cases, s.runs, rss)
	}
	slices.Sort(s.failures)
	return fmt.Sprintf("%d hostile cases (%d runs), %d failed, %s; failed:\n  %s", s.cases, s.runs, s.failed, rss, strings.Join(s.failures, "\n  "))
}

// ---- Assertions ----

// stackTrace matches what a clean error never holds.
var stackTrace = regexp.MustCompile(`panic|goroutine \d|runtime error|fatal error|SIGSEGV|\.go:\d+|^\s+\S+\(0x`)

func textLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func (s *hostileSuite) assess(h *hostileHarness, r *cliResult) []string {
	c := h.c
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	switch {
	case r.startErr != nil:
		add("the CLI did not run: %v", r.startErr)
	case r.timedOut:
		add("no exit within %v: killed (a hang?)", orDefault(c.timeout, defaultTimeout))
	case r.watchdog > 0:
		add("peak RSS passed %d MiB (the watchdog's ceiling for a %d MiB bound): killed", r.watchdog/1024, h.rssBound())
	case c.exit == exitEither && r.exit != 0 && r.exit != 1:
		add("exit status %d, want 0 or 1", r.exit)
	case c.exit != exitEither && r.exit != c.exit:
		add("exit status %d, want %d", r.exit, c.exit)
	}
	errLines := textLines(r.stderr)
	for i, l := range errLines {
		if stackTrace.MatchString(l) {
			add("stderr line %d is a panic or stack trace, not a clean error: %.200q", i+1, l)
			break
		}
		if len(l) > 1000 {
			add("stderr line %d is %d characters long, not a one-line error", i+1, len(l))
		}
	}
	if n, most := len(errLines), orDefault(c.maxLines, len(c.errs)+2); n > most {
		add("stderr has %d lines, more than the %d expected (one clean line per bad input)", n, most)
	}
	for _, w := range c.errs {
		what := regexp.MustCompile(`(?i)` + w.what)
		reason := regexp.MustCompile(`(?i)` + w.reason)
		found := false
		for _, l := range errLines {
			// The reason must be in the rest of the line: a file named
			// nan.npy does not say "NaN" by itself.
			if what.MatchString(l) && reason.MatchString(what.ReplaceAllString(l, "")) {
				found = true
				break
			}
		}
		if !found {
			add("no stderr line names /%s/ with a reason matching /%s/", w.what, w.reason)
		}
	}
	for _, o := range c.out {
		if !strings.Contains(r.stdout, o) {
			add("stdout lacks %q (the good inputs must still be processed)", o)
		}
	}
	for _, o := range c.notOut {
		if strings.Contains(r.stdout, o) {
			add("stdout holds %q", o)
		}
	}
	if s.checkRSS && r.watchdog == 0 && r.rssKiB > h.rssBound()*1024 {
		add("peak RSS %d MiB, over the bound of %d MiB", r.rssKiB/1024, h.rssBound())
	}
	return p
}

// report says what was expected, what happened and the problems.
func (s *hostileSuite) report(h *hostileHarness, r *cliResult, problems []string) string {
	c := h.c
	var b strings.Builder
	fmt.Fprintf(&b, "hostile case %q:\n  command: edge-resnet %s", c.name, strings.Join(r.args, " "))
	if len(c.env) > 0 {
		fmt.Fprintf(&b, "  (env %s)", strings.Join(c.env, " "))
	}
	if c.stdin != "" {
		fmt.Fprintf(&b, "  (stdin: pipe from %s)", c.stdin)
	}
	exit := fmt.Sprint(c.exit)
	if c.exit == exitEither {
		exit = "0 or 1"
	}
	fmt.Fprintf(&b, "\n  expected: exit %s", exit)
	for _, w := range c.errs {
		fmt.Fprintf(&b, "; a stderr line naming /%s/ with /%s/", w.what, w.reason)
	}
	if len(c.out) > 0 {
		fmt.Fprintf(&b, "; stdout holding %q", c.out)
	}
	fmt.Fprintf(&b, "; peak RSS <= %d MiB; done within %v", h.rssBound(), orDefault(c.timeout, defaultTimeout))
	rss := fmt.Sprintf("%d MiB", r.rssKiB/1024)
	if !s.checkRSS {
		rss += " (not checked: " + s.why + ")"
	}
	fmt.Fprintf(&b, "\n  got: exit %d after %.1fs, peak RSS %s", r.exit, r.wall.Seconds(), rss)
	b.WriteString("\n  problems:")
	for _, p := range problems {
		b.WriteString("\n    - " + p)
	}
	excerpt := func(what, text string, n int) {
		l := textLines(text)
		fmt.Fprintf(&b, "\n  %s (%d lines):", what, len(l))
		for i, x := range l {
			if i == n {
				fmt.Fprintf(&b, "\n    ...")
				break
			}
			if len(x) > 300 {
				x = x[:300] + "..."
			}
			b.WriteString("\n    | " + x)
		}
	}
	excerpt("stderr", r.stderr, 12)
	excerpt("stdout", r.stdout, 6)
	return b.String()
}

// ---- Checks beyond the table ----

type checkFunc = func(t *testing.T, h *hostileHarness, r *cliResult) []string

func noFile(name string) checkFunc {
	return func(t *testing.T, h *hostileHarness, r *cliResult) []string {
		if _, err := os.Lstat(h.path(name)); err == nil {
			return []string{name + " was written by a run that failed"}
		}
		return nil
	}
}

func hasFile(name string) checkFunc {
	return func(t *testing.T, h *hostileHarness, r *cliResult) []string {
		if st, err := os.Stat(h.path(name)); err != nil || st.Size() == 0 {
			return []string{fmt.Sprintf("%s was not written: %v", name, err)}
		}
		return nil
	}
}

// unchanged: the case's file name still holds the bytes of the repository
// file orig.
func unchanged(name, orig string) checkFunc {
	return func(t *testing.T, h *hostileHarness, r *cliResult) []string {
		got, err := os.ReadFile(h.path(name))
		if err != nil {
			return []string{fmt.Sprintf("the input %s is gone: %v", name, err)}
		}
		if !bytes.Equal(got, readRepo(t, orig)) {
			return []string{fmt.Sprintf("the input %s was changed (%d bytes now, %d before)", name, len(got), len(readRepo(t, orig)))}
		}
		return nil
	}
}

// onlyFiles: the case's folder holds exactly these entries afterwards.
func onlyFiles(names ...string) checkFunc {
	return func(t *testing.T, h *hostileHarness, r *cliResult) []string {
		got := listDir(t, h.dir)
		expected := slices.Sorted(slices.Values(names))
		if !slices.Equal(got, expected) {
			return []string{fmt.Sprintf("the folder holds %q, want only %q (no temporaries may remain)", got, expected)}
		}
		return nil
	}
}

func listDir(t *testing.T, dir string) []string {
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// jsonLines: every stdout line is a JSON object.
func jsonLines(t *testing.T, h *hostileHarness, r *cliResult) []string {
	for i, l := range textLines(r.stdout) {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			return []string{fmt.Sprintf("stdout line %d is not a JSON object (%v): %.200q", i+1, err, l)}
		}
	}
	return nil
}

// atMostLines: stdout names file on at most n lines (a loop is not walked
// again and again).
func atMostLines(file string, n int) checkFunc {
	return func(t *testing.T, h *hostileHarness, r *cliResult) []string {
		k := 0
		for _, l := range textLines(r.stdout) {
			if strings.Contains(l, file) {
				k++
			}
		}
		if k > n {
			return []string{fmt.Sprintf("%s was classified %d times (a symlink loop walked repeatedly)", file, k)}
		}
		return nil
	}
}

// sameAsFile: the JSON results equal those of args (the model read from
// its file), apart from timings.
func sameAsFile(args []string) checkFunc {
	return func(t *testing.T, h *hostileHarness, r *cliResult) []string {
		ref := h.run(args, nil)
		if ref.exit != 0 {
			return []string{fmt.Sprintf("the reference run from the file failed (exit %d): %.300s", ref.exit, ref.stderr)}
		}
		a, b := withoutTimes(r.stdout), withoutTimes(ref.stdout)
		if a != b {
			return []string{fmt.Sprintf("output through the pipe differs from the file's:\n      pipe: %.300s\n      file: %.300s", a, b)}
		}
		return nil
	}
}

func withoutTimes(out string) string {
	var b strings.Builder
	for _, l := range textLines(out) {
		var v map[string]any
		if json.Unmarshal([]byte(l), &v) != nil {
			b.WriteString(l + "\n")
			continue
		}
		delete(v, "ms")
		j, _ := json.Marshal(v)
		b.Write(append(j, '\n'))
	}
	return b.String()
}

// killMidWrite runs args (a command writing out) and kills it with SIGKILL
// while a new file other than out exists in the folder: the temporary of
// an atomic write. Stale files it leaves are aged by an hour, as those of
// a crash usually are. If the write is too quick to catch in a few tries,
// or leaves no named temporary (O_TMPFILE), that is logged: the case then
// checks that a normal write leaves none.
func killMidWrite(args []string, out string) func(t *testing.T, h *hostileHarness) {
	return func(t *testing.T, h *hostileHarness) {
		before := listDir(t, h.dir)
		known := func(n string) bool { return n == out || slices.Contains(before, n) }
		for try := 1; try <= 5; try++ {
			os.Remove(h.path(out))
			ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
			cmd := cliCommand(ctx, h.dir, args, nil)
			if err := cmd.Start(); err != nil {
				cancel()
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			var stale []string
		poll:
			for {
				select {
				case <-exited:
					break poll
				default:
				}
				for _, n := range listDir(t, h.dir) {
					if !known(n) {
						cmd.Process.Kill()
						<-exited
						stale = append(stale, n)
						break poll
					}
				}
				time.Sleep(200 * time.Microsecond)
			}
			cancel()
			if stale != nil {
				for _, n := range listDir(t, h.dir) {
					if !known(n) {
						old := time.Now().Add(-time.Hour)
						os.Chtimes(h.path(n), old, old)
					}
				}
				t.Logf("killed %q mid-write (try %d); it left %q", args, try, listDir(t, h.dir))
				return
			}
		}
		t.Logf("could not catch %q mid-write in 5 tries (too quick, or no named temporary): checking a normal write only", args)
		os.Remove(h.path(out))
	}
}

// TestHostileGenerators checks the generators themselves (fast, also in
// -short runs): deflateZeros and the zlib/gzip/zip wrappers inflate to
// what they claim.
func TestHostileGenerators(t *testing.T) {
	for _, n := range []int64{0, 1, zeroUnit - 1, zeroUnit, 3*zeroUnit + 17} {
		var b bytes.Buffer
		if err := deflateZeros(&b, n); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(flateReader(&b))
		if err != nil || int64(len(got)) != n || bytes.ContainsFunc(got, func(r rune) bool { return r != 0 }) {
			t.Fatalf("deflateZeros(%d): %d bytes, %v", n, len(got), err)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x.gz")
	gzipGen([]byte("head"), 2*zeroUnit+5)(t, p)
	if n, err := gunzipLen(p); err != nil || n != 2*zeroUnit+9 {
		t.Fatalf("gzipGen: %d bytes, %v", n, err)
	}
	p = filepath.Join(dir, "x.zip")
	zipGen(zipMember{name: "a", data: []byte("hi")}, zipMember{name: "z", zeros: zeroUnit + 3})(t, p)
	if n, err := zipLen(p, "z"); err != nil || n != zeroUnit+3 {
		t.Fatalf("zipGen: %d bytes, %v", n, err)
	}
	if n, err := pngPixels(pngBombData(300, 200, 16, 6)); err != nil || n != 300*200 {
		t.Fatalf("pngBomb: %d pixels, %v", n, err)
	}
}
