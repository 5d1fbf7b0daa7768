// Command compare times edge-resnet beside ONNX Runtime (npm onnxruntime-node)
// and PyTorch on the same torchvision ResNets, interleaved in one run, and
// prints a Markdown table of medians and ratios (see bench/README.md).
//
//	go run ./bench/cmd/compare [--models resnet18,resnet50] [--threads 1,2]
//	                           [--rounds 5] [--runs 30] [--warmup 5]
//	                           [--precision fp32|int8|both]
//
// It builds the CLI, exports the ONNX models with bench/export_models.py
// when they are missing, installs onnxruntime-node with `npm ci` when it is
// missing, converts the models to .ern images, checks that edge-resnet's
// logits agree with ONNX Runtime's and PyTorch's on one input, and then
// runs rounds: in each, for every model and thread count, every runtime's
// benchmark once (a fresh process, --warmup untimed then --runs timed
// runs), in an order rotated each round. A cell of the table is the median
// of the round medians, with the fastest single run in parentheses.
//
// --precision int8 times, instead, edge-resnet's fp32 image, its int8 image
// (made with edge-resnet quantize on the calibration images of
// bench/export_qdq.py) and ONNX Runtime's QDQ int8 export of the same model
// (bench/export_qdq.py), and prints our int8 over our fp32 and over ORT's
// int8; --precision both times all five.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edge-resnet/edge-resnet/preprocess"
)

const modulePath = "github.com/edge-resnet/edge-resnet"

type options struct {
	models    []string
	threads   []int
	runtimes  []string
	precision string
	calibN    int
	wbits     int
	int8Cos   float64
	rounds    int
	runs      int
	warmup    int
	cache     string
	python    string
	node      string
	raw       string
	tol       float64
	noCheck   bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	models := fs.String("models", "resnet18,resnet50", "torchvision models, comma-separated")
	threads := fs.String("threads", "1,2", "thread counts, comma-separated")
	runtimes := fs.String("runtimes", "", "runtimes to time, comma-separated, from "+strings.Join(knownRuntime, ", ")+
		" (default: by --precision)")
	fs.StringVar(&o.precision, "precision", "fp32", "fp32 (edge-resnet, onnxruntime, pytorch), int8 (edge-resnet fp32 and int8, onnxruntime int8) or both")
	fs.IntVar(&o.calibN, "calib-n", 0, "calibration images for edge-resnet quantize (0: all that bench/export_qdq.py wrote)")
	fs.IntVar(&o.wbits, "weight-bits", 8, "edge-resnet quantize --weight-bits: 8, or 7 (faster on AVX2 without VNNI; the int8 image is then MODEL.int8w7.ern)")
	fs.Float64Var(&o.int8Cos, "int8-cos", 0.98, "smallest allowed cosine between an int8 runtime's logits and PyTorch fp32's on the check image")
	fs.IntVar(&o.rounds, "rounds", 7, "interleaved rounds")
	fs.IntVar(&o.runs, "runs", 30, "timed runs per runtime per round")
	fs.IntVar(&o.warmup, "warmup", 5, "untimed runs before them")
	fs.StringVar(&o.cache, "cache", "", "directory for models and the CLI build (default: bench/.cache)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with Debian's torch, torchvision, onnx")
	fs.StringVar(&o.node, "node", "node", "Node.js (>= 18)")
	fs.StringVar(&o.raw, "raw", "", "also write every round's result as JSON lines to this file (default: CACHE/last-compare.jsonl)")
	fs.Float64Var(&o.tol, "tol", 1e-3, "largest allowed max|Δlogit|/max|logit| between edge-resnet and the others")
	fs.BoolVar(&o.noCheck, "no-check", false, "skip the logit agreement check")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench/cmd/compare [flags]\n\n"+
			"Times edge-resnet, ONNX Runtime and PyTorch on torchvision ResNets, interleaved,\n"+
			"and prints a Markdown table. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.models = splitList(*models)
	for _, m := range o.models {
		if !strings.HasPrefix(m, "resnet") {
			return o, fmt.Errorf("--models: %q is not a torchvision ResNet (resnet18, resnet50, ...)", m)
		}
	}
	for _, s := range splitList(*threads) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return o, fmt.Errorf("--threads: bad thread count %q", s)
		}
		o.threads = append(o.threads, n)
	}
	o.runtimes = splitList(*runtimes)
	if *runtimes == "" {
		switch o.precision {
		case "fp32":
			o.runtimes = slices.Clone(allRuntimes)
		case "int8":
			o.runtimes = slices.Clone(int8Runtimes)
		case "both":
			o.runtimes = append(slices.Clone(allRuntimes), rtEdge8, rtORT8)
		default:
			return o, fmt.Errorf("--precision: %q is not fp32, int8 or both", o.precision)
		}
	}
	for _, rt := range o.runtimes {
		if !slices.Contains(knownRuntime, rt) {
			return o, fmt.Errorf("--runtimes: unknown runtime %q (want %s)", rt, strings.Join(knownRuntime, ", "))
		}
	}
	if o.calibN < 0 || !(o.int8Cos <= 1) {
		return o, errors.New("--calib-n must be >= 0 and --int8-cos <= 1")
	}
	if o.wbits != 7 && o.wbits != 8 {
		return o, fmt.Errorf("--weight-bits: %d is not 7 or 8", o.wbits)
	}
	switch {
	case len(o.models) == 0 || len(o.threads) == 0 || len(o.runtimes) == 0:
		return o, errors.New("--models, --threads and --runtimes must not be empty")
	case o.rounds < 1 || o.runs < 1 || o.warmup < 0:
		return o, errors.New("--rounds and --runs must be >= 1 and --warmup >= 0")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// env holds the paths of one comparison.
type env struct {
	o      options
	root   string // repository root
	bench  string // root/bench
	cache  string
	cli    string // built edge-resnet binary
	goBin  string
	stderr io.Writer
}

// run runs the whole comparison: flags, preparation, the agreement check,
// the interleaved rounds and the report on stdout.
func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	e, err := newEnv(o, stderr)
	if err != nil {
		return err
	}
	o = e.o // with the cache and raw-results paths resolved
	if err := e.prepare(); err != nil {
		return err
	}
	info := e.machineInfo()
	if !o.noCheck {
		if err := e.checkAgreement(stdout); err != nil {
			return err
		}
	}
	loadBefore := loadAvg()
	start := time.Now()
	results, err := e.rounds()
	if err != nil {
		return err
	}
	info.load = fmt.Sprintf("%s at the start, %s at the end", loadBefore, loadAvg())
	info.elapsed = time.Since(start).Round(time.Second)
	kernel8 := info.noteVersions(results)
	agg := aggregate(results)
	fmt.Fprint(stdout, info.markdown(o))
	printTables(stdout, o, agg, kernel8)
	printTargets(stdout, o, agg, kernel8)
	fmt.Fprintf(stderr, "raw results: %s\n", o.raw)
	return nil
}

// newEnv finds the checkout and makes the cache directory (default
// bench/.cache), and resolves the default raw-results file in it.
func newEnv(o options, stderr io.Writer) (*env, error) {
	root, err := findRoot()
	if err != nil {
		return nil, err
	}
	bench := filepath.Join(root, "bench")
	if o.cache == "" {
		o.cache = filepath.Join(bench, ".cache")
	}
	if o.cache, err = filepath.Abs(o.cache); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		return nil, err
	}
	if o.raw == "" {
		o.raw = filepath.Join(o.cache, "last-compare.jsonl")
	}
	e := &env{o: o, root: root, bench: bench, cache: o.cache, cli: filepath.Join(o.cache, "edge-resnet"), stderr: stderr}
	if runtime.GOOS == "windows" {
		e.cli += ".exe"
	}
	return e, nil
}

// noteVersions records the ONNX Runtime and PyTorch versions and our fp32
// kernel path that the results report (the first of each), and returns
// our int8 kernel path.
func (mi *machineInfo) noteVersions(results []result) (kernel8 string) {
	for _, r := range results {
		switch {
		case (r.Runtime == rtORT || r.Runtime == rtORT8) && mi.ortVersion == "":
			mi.ortVersion = r.Version
		case r.Runtime == rtTorch && mi.torchVersion == "":
			mi.torchVersion = r.Version
		case r.Runtime == rtEdge && mi.kernel == "":
			mi.kernel = r.Kernel
		case r.Runtime == rtEdge8 && kernel8 == "":
			kernel8 = r.Kernel
		}
	}
	return kernel8
}

// printTables prints the fp32 table (unless only our fp32 is timed beside
// int8: it is in the int8 table), the int8 table, how to read them and,
// over more than one round, the spread.
func printTables(stdout io.Writer, o options, agg map[cellKey]summary, kernel8 string) {
	fp32 := slices.DeleteFunc(slices.Clone(o.runtimes), isInt8)
	int8 := slices.ContainsFunc(o.runtimes, isInt8)
	if !int8 || len(fp32) > 1 || len(fp32) == 1 && fp32[0] != rtEdge { // our fp32 alone is in the int8 table
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, markdownTable(agg, o.models, o.threads, fp32))
	}
	if int8 {
		k := kernel8
		if k == "" {
			k = "–"
		}
		fmt.Fprintf(stdout, "\nint8 (edge-resnet quantize vs ONNX Runtime QDQ, both calibrated on the images of bench/.cache/calib; edge-resnet int8 kernel path %s):\n\n", k)
		fmt.Fprint(stdout, int8Table(agg, o.models, o.threads))
	}
	fmt.Fprintf(stdout, "\nms: median over %d round(s) of each round's median of %d runs (fastest single run in parentheses);\n"+
		"ratios: edge-resnet's time over the other runtime's, medians (mins). Lower is faster for edge-resnet.\n",
		o.rounds, o.runs)
	if o.rounds > 1 {
		fmt.Fprintln(stdout, "\nSpread: fastest–slowest round median, ms:")
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, spreadTable(agg, o.models, o.threads, o.runtimes))
	}
}

// printTargets prints the fp32 (issue 3) and int8 (issue 4) targets the
// results can be checked against, if any.
func printTargets(stdout io.Writer, o options, agg map[cellKey]summary, kernel8 string) {
	for _, t := range []struct {
		title string
		lines []string
	}{
		{"Targets (issue 3):", targetLines(agg, o.models, o.threads)},
		{"Targets (issue 4, int8):", int8TargetLines(agg, o.models, o.threads, kernel8)},
	} {
		if len(t.lines) == 0 {
			continue
		}
		fmt.Fprintln(stdout, "\n"+t.title)
		for _, l := range t.lines {
			fmt.Fprintf(stdout, "- %s\n", l)
		}
	}
}

// findRoot walks up from the working directory to this module's go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this inside the edge-resnet checkout (no go.mod of " + modulePath + " above the working directory)")
		}
		dir = parent
	}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.stderr, format+"\n", args...)
}

// command runs name args in dir and returns its stdout; on failure the
// error carries the end of its stderr.
func (e *env) command(dir string, extraEnv []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		if msg != "" {
			msg = "\n" + msg
		}
		return out.Bytes(), fmt.Errorf("%s %s: %v%s", filepath.Base(name), strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// newer reports whether a exists and is at least as new as b.
func newer(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && !sa.ModTime().Before(sb.ModTime())
}

// prepare checks the prerequisites and builds, exports, installs and
// converts whatever is missing.
func (e *env) prepare() error {
	o := e.o
	if err := e.buildCLI(); err != nil {
		return err
	}
	if err := e.exportModels(); err != nil {
		return err
	}
	int8 := slices.ContainsFunc(o.runtimes, isInt8)
	if slices.Contains(o.runtimes, rtORT) || int8 || !o.noCheck {
		if err := e.installORT(); err != nil {
			return err
		}
	}
	// After onnxruntime-node: export_qdq.py checks its models with it.
	if int8 {
		if err := e.exportQDQ(); err != nil {
			return err
		}
	}
	cliHash, err := fileHash(e.cli)
	if err != nil {
		return err
	}
	if err := e.convertModels(cliHash); err != nil {
		return err
	}
	if int8 && slices.Contains(o.runtimes, rtEdge8) {
		return e.quantize(cliHash)
	}
	return nil
}

// buildCLI finds the go command (on PATH, else in GOROOT) and builds the
// CLI into the cache.
func (e *env) buildCLI() error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if !exists(goBin) {
			return errors.New("the go command is not on PATH (Go 1.26 or newer is needed to build the CLI)")
		}
	}
	e.goBin = goBin
	e.logf("building %s", e.cli)
	if _, err := e.command(e.root, nil, goBin, "build", "-o", e.cli, "./cmd/edge-resnet"); err != nil {
		return fmt.Errorf("building the CLI: %w", err)
	}
	return nil
}

// exportModels exports the models to ONNX with bench/export_models.py
// when an export file is missing; Python is checked then, or when
// PyTorch is timed.
func (e *env) exportModels() error {
	o := e.o
	needExport := false
	for _, m := range o.models {
		for _, f := range []string{m + ".onnx", m + ".torch_logits.npy", "input.npy"} {
			if !exists(filepath.Join(e.cache, f)) {
				needExport = true
			}
		}
	}
	if needExport || slices.Contains(o.runtimes, rtTorch) {
		if err := e.checkPython(); err != nil {
			return err
		}
	}
	if !needExport {
		return nil
	}
	e.logf("exporting %s to ONNX (bench/export_models.py)", strings.Join(o.models, ", "))
	args := append([]string{filepath.Join(e.bench, "export_models.py"), "--cache", e.cache}, o.models...)
	out, err := e.command(e.bench, nil, o.python, args...)
	if err != nil {
		return fmt.Errorf("exporting the models: %w", err)
	}
	e.stderr.Write(out)
	return nil
}

// installORT checks Node.js and installs onnxruntime-node in bench/ with
// npm when it is missing.
func (e *env) installORT() error {
	if err := e.checkNode(); err != nil {
		return err
	}
	if exists(filepath.Join(e.bench, "node_modules", "onnxruntime-node", "package.json")) {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("onnxruntime-node is not installed and npm is not on PATH; install Node.js and npm (apt-get install nodejs npm), then run this again")
	}
	e.logf("installing onnxruntime-node (npm ci --ignore-scripts in bench/)")
	// --ignore-scripts: its postinstall only fetches optional CUDA
	// binaries from outside the npm registry; the CPU build is in
	// the package.
	if _, err := e.command(e.bench, nil, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"); err != nil {
		return fmt.Errorf("installing onnxruntime-node: %w", err)
	}
	return nil
}

// convertModels converts each MODEL.onnx to MODEL.ern, again when the
// ONNX file or the CLI changed (the sidecar file records the hash of the
// CLI that wrote the image).
func (e *env) convertModels(cliHash string) error {
	for _, m := range e.o.models {
		onnx, ern := filepath.Join(e.cache, m+".onnx"), filepath.Join(e.cache, m+".ern")
		stamp := ern + ".cli-sha256"
		if b, err := os.ReadFile(stamp); err == nil && string(b) == cliHash && newer(ern, onnx) {
			continue
		}
		e.logf("converting %s.onnx to %s.ern", m, m)
		if _, err := e.command(e.cache, nil, e.cli, "convert", onnx, "-o", ern, "--resize", "256", "--name", m); err != nil {
			return fmt.Errorf("converting %s: %w", m, err)
		}
		if err := os.WriteFile(stamp, []byte(cliHash), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// exportQDQ runs bench/export_qdq.py for the models whose QDQ export or
// check files are missing or older than their fp32 export.
func (e *env) exportQDQ() error {
	var need []string
	for _, m := range e.o.models {
		onnx := filepath.Join(e.cache, m+".onnx")
		for _, f := range []string{m + ".qdq.onnx", m + ".check_torch_logits.npy", "check.npy", filepath.Join("calib", "0000_astronaut.png")} {
			if !newer(filepath.Join(e.cache, f), onnx) {
				need = append(need, m)
				break
			}
		}
	}
	if len(need) == 0 {
		return nil
	}
	if err := e.checkPython(); err != nil {
		return err
	}
	e.logf("writing the QDQ int8 ONNX of %s and the calibration images (bench/export_qdq.py)", strings.Join(need, ", "))
	args := append([]string{filepath.Join(e.bench, "export_qdq.py"), "--cache", e.cache, "--node", e.o.node}, need...)
	out, err := e.command(e.bench, nil, e.o.python, args...)
	if err != nil {
		return fmt.Errorf("exporting the QDQ models: %w", err)
	}
	e.stderr.Write(out)
	return nil
}

// calibImages lists the calibration images export_qdq.py wrote, in order.
func (e *env) calibImages() ([]string, error) {
	dir := filepath.Join(e.cache, "calib")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range ents {
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".png") {
			out = append(out, filepath.Join(dir, d.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no calibration images; run bench/export_qdq.py", dir)
	}
	return out, nil
}

// int8File is the int8 image of a model: MODEL.int8.ern, or
// MODEL.int8w7.ern with 7-bit weights, so that the two do not overwrite
// each other.
func (e *env) int8File(model string) string {
	if e.o.wbits == 7 {
		return filepath.Join(e.cache, model+".int8w7.ern")
	}
	return filepath.Join(e.cache, model+".int8.ern")
}

// quantize makes the int8 image (int8File) from MODEL.ern with edge-resnet
// quantize on the calibration images, again whenever the CLI, the fp32
// image or the image count changed.
func (e *env) quantize(cliHash string) error {
	imgs, err := e.calibImages()
	if err != nil {
		return err
	}
	n := len(imgs)
	if e.o.calibN > 0 {
		n = min(n, e.o.calibN)
	}
	for _, m := range e.o.models {
		ern, q := filepath.Join(e.cache, m+".ern"), e.int8File(m)
		stamp := q + ".cli-sha256"
		want := fmt.Sprintf("%s n=%d", cliHash, n)
		if b, err := os.ReadFile(stamp); err == nil && string(b) == want && newer(q, ern) && newer(q, imgs[0]) {
			continue
		}
		e.logf("quantizing %s.ern to %s on %d calibration images, %d-bit weights", m, filepath.Base(q), n, e.o.wbits)
		if _, err := e.command(e.cache, nil, e.cli, quantizeArgs(ern, filepath.Join(e.cache, "calib"), n, e.o.wbits, q)...); err != nil {
			return fmt.Errorf("quantizing %s: %w", m, err)
		}
		if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// quantizeArgs is the edge-resnet command line that makes an int8 image.
func quantizeArgs(in, calib string, n, weightBits int, out string) []string {
	return []string{"quantize", "-m", in, "--calib", calib, "-n", strconv.Itoa(n), "--weight-bits", strconv.Itoa(weightBits), "-o", out}
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (e *env) checkPython() error {
	if _, err := exec.LookPath(e.o.python); err != nil {
		return fmt.Errorf("%s not found: PyTorch comes from Debian (apt-get install python3-torch python3-torchvision python3-onnx python3-numpy); pass --python to use another interpreter", e.o.python)
	}
	if _, err := e.command(e.bench, nil, e.o.python, "-c", "import numpy, torch, torchvision, onnx"); err != nil {
		return fmt.Errorf("%s cannot import numpy, torch, torchvision and onnx; install them with: apt-get install python3-torch python3-torchvision python3-onnx python3-numpy\n(%v)", e.o.python, err)
	}
	return nil
}

func (e *env) checkNode() error {
	out, err := e.command(e.bench, nil, e.o.node, "--version")
	if err != nil {
		return fmt.Errorf("Node.js not found (%v); install it with: apt-get install nodejs npm", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < 18 {
		return fmt.Errorf("Node.js %s is too old for onnxruntime-node; version 18 or newer is needed", v)
	}
	return nil
}

// runOnce runs one runtime's benchmark of model at threads and parses its
// JSON line.
func (e *env) runOnce(rt, model string, threads int) (result, error) {
	o := e.o
	runs, warmup, th := strconv.Itoa(o.runs), strconv.Itoa(o.warmup), strconv.Itoa(threads)
	var out []byte
	var err error
	switch rt {
	case rtEdge:
		out, err = e.command(e.cache, nil, e.cli, "bench", "-m", filepath.Join(e.cache, model+".ern"),
			"--threads", th, "--runs", runs, "--warmup", warmup, "--json")
	case rtORT:
		out, err = e.command(e.bench, nil, o.node, filepath.Join(e.bench, "ort_bench.mjs"),
			"--model", filepath.Join(e.cache, model+".onnx"), "--name", model,
			"--threads", th, "--runs", runs, "--warmup", warmup)
	case rtTorch:
		out, err = e.command(e.bench, nil, o.python, filepath.Join(e.bench, "torch_bench.py"),
			"--model", model, "--threads", th, "--runs", runs, "--warmup", warmup)
	case rtEdge8:
		out, err = e.command(e.cache, nil, e.cli, "bench", "-m", e.int8File(model), "--precision", "int8",
			"--threads", th, "--runs", runs, "--warmup", warmup, "--json")
	case rtORT8:
		out, err = e.command(e.bench, nil, o.node, filepath.Join(e.bench, "ort_bench.mjs"),
			"--model", filepath.Join(e.cache, model+".qdq.onnx"), "--name", model,
			"--threads", th, "--runs", runs, "--warmup", warmup)
	default:
		return result{}, fmt.Errorf("unknown runtime %q", rt)
	}
	if err != nil {
		return result{}, err
	}
	return parseResult(out, rt, model, threads)
}

// parseResult reads the last JSON object line of a benchmark's output.
func parseResult(out []byte, rt, model string, threads int) (result, error) {
	var line []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 && l[0] == '{' {
			line = slices.Clone(l)
		}
	}
	if line == nil {
		return result{}, fmt.Errorf("%s: no JSON result in its output %q", rt, truncate(string(out), 300))
	}
	var r result
	if err := json.Unmarshal(line, &r); err != nil {
		return result{}, fmt.Errorf("%s: bad JSON result %q: %v", rt, truncate(string(line), 300), err)
	}
	if r.Runs < 1 || !(r.MedianMs > 0) || !(r.MinMs > 0) {
		return result{}, fmt.Errorf("%s: implausible result %q", rt, truncate(string(line), 300))
	}
	if r.Threads != threads {
		return result{}, fmt.Errorf("%s ran %s with %d threads, asked for %d", rt, model, r.Threads, threads)
	}
	// edge-resnet reports what it ran; timing fp32 under the int8 name (or
	// the reverse) would make the table lie.
	if want := map[string]string{rtEdge: "fp32", rtEdge8: "int8"}[rt]; want != "" && r.Precision != "" && r.Precision != want ||
		rt == rtEdge8 && r.Precision == "" {
		return result{}, fmt.Errorf("%s ran %s in precision %q, want %s", rt, model, r.Precision, map[string]string{rtEdge: "fp32", rtEdge8: "int8"}[rt])
	}
	r.Runtime, r.Model = rt, model
	return r, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// rounds runs the interleaved benchmark and writes every result to o.raw.
func (e *env) rounds() ([]result, error) {
	o := e.o
	f, err := os.Create(o.raw)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	var results []result
	for r := 0; r < o.rounds; r++ {
		for _, m := range o.models {
			for _, t := range o.threads {
				for _, rt := range roundOrder(o.runtimes, r) {
					res, err := e.runOnce(rt, m, t)
					if err != nil {
						return nil, fmt.Errorf("round %d, %s, %d threads: %w", r+1, m, t, err)
					}
					res.Round = r + 1
					results = append(results, res)
					if err := enc.Encode(res); err != nil {
						return nil, err
					}
					e.logf("round %d/%d  %-9s %d thread(s)  %-12s median %8.2f ms  min %8.2f ms",
						r+1, o.rounds, m, t, rt, res.MedianMs, res.MinMs)
				}
			}
		}
	}
	return results, nil
}

// checkAgreement runs input.npy through edge-resnet and ONNX Runtime and
// compares their logits with each other and with PyTorch's (written by
// export_models.py), as max|Δlogit|/max|logit|.
func (e *env) checkAgreement(stdout io.Writer) error {
	input := filepath.Join(e.cache, "input.npy")
	var lines []string
	var bad []string
	for _, m := range e.o.models {
		_, torchLogits, err := preprocess.ReadNPYFile(filepath.Join(e.cache, m+".torch_logits.npy"))
		if err != nil {
			return err
		}
		out, err := e.command(e.cache, nil, e.cli, "classify", "-m", filepath.Join(e.cache, m+".ern"),
			"--json", "--logits", "-k", "1", input)
		if err != nil {
			return fmt.Errorf("agreement check: %w", err)
		}
		edge, err := logitsFromJSON(out)
		if err != nil {
			return fmt.Errorf("agreement check, edge-resnet classify: %w", err)
		}
		out, err = e.command(e.bench, nil, e.o.node, filepath.Join(e.bench, "ort_bench.mjs"),
			"--model", filepath.Join(e.cache, m+".onnx"), "--name", m, "--logits", input)
		if err != nil {
			return fmt.Errorf("agreement check: %w", err)
		}
		ort, err := logitsFromJSON(out)
		if err != nil {
			return fmt.Errorf("agreement check, ONNX Runtime: %w", err)
		}
		eo, err1 := relDiff(edge, ort)
		et, err2 := relDiff(edge, torchLogits)
		ot, err3 := relDiff(ort, torchLogits)
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("agreement check, %s: %w", m, err)
		}
		lines = append(lines, fmt.Sprintf("| %s | %.1e | %.1e | %.1e |", m, eo, et, ot))
		if !(eo <= e.o.tol) || !(et <= e.o.tol) {
			bad = append(bad, m)
		}
	}
	shown := input
	if rel, err := filepath.Rel(e.root, input); err == nil && !strings.HasPrefix(rel, "..") {
		shown = rel
	}
	fmt.Fprintf(stdout, "Agreement on %s (max|Δlogit| / max|logit|):\n", shown)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "| model | edge-resnet vs ORT | edge-resnet vs PyTorch | ORT vs PyTorch |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|")
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintln(stdout)
	if len(bad) > 0 {
		return fmt.Errorf("edge-resnet's logits disagree with the peers beyond %g for %s: not timing a wrong result", e.o.tol, strings.Join(bad, ", "))
	}
	if slices.ContainsFunc(e.o.runtimes, isInt8) {
		return e.checkInt8(stdout)
	}
	return nil
}

// checkInt8 compares each int8 runtime's logits on a held-out real image
// (check.npy from export_qdq.py) with PyTorch fp32's: cosine and top-1.
func (e *env) checkInt8(stdout io.Writer) error {
	input := filepath.Join(e.cache, "check.npy")
	var lines, bad []string
	for _, m := range e.o.models {
		_, ref, err := preprocess.ReadNPYFile(filepath.Join(e.cache, m+".check_torch_logits.npy"))
		if err != nil {
			return err
		}
		row := fmt.Sprintf("| %s |", m)
		for _, rt := range []string{rtEdge, rtEdge8, rtORT8} {
			if rt != rtEdge && !slices.Contains(e.o.runtimes, rt) {
				row += " – |"
				continue
			}
			var out []byte
			switch rt {
			case rtEdge, rtEdge8:
				args := []string{"classify", "-m", filepath.Join(e.cache, m+".ern")}
				if rt == rtEdge8 {
					args = []string{"classify", "-m", e.int8File(m), "--precision", "int8"}
				}
				out, err = e.command(e.cache, nil, e.cli, append(args, "--json", "--logits", "-k", "1", input)...)
			case rtORT8:
				out, err = e.command(e.bench, nil, e.o.node, filepath.Join(e.bench, "ort_bench.mjs"),
					"--model", filepath.Join(e.cache, m+".qdq.onnx"), "--name", m, "--logits", input)
			}
			if err != nil {
				return fmt.Errorf("int8 agreement check: %w", err)
			}
			logits, err := logitsFromJSON(out)
			if err != nil {
				return fmt.Errorf("int8 agreement check, %s: %w", rt, err)
			}
			c, top1, err := cosine(logits, ref)
			if err != nil {
				return fmt.Errorf("int8 agreement check, %s %s: %w", rt, m, err)
			}
			row += fmt.Sprintf(" %.4f, top-1 %s |", c, map[bool]string{true: "same", false: "differs"}[top1])
			if isInt8(rt) && !(c >= e.o.int8Cos) {
				bad = append(bad, fmt.Sprintf("%s %s (cosine %.4f)", rt, m, c))
			}
		}
		lines = append(lines, row)
	}
	fmt.Fprintf(stdout, "Agreement with PyTorch fp32 on a held-out CIFAR-10 test image, upscaled (bench/.cache/check.npy): cosine of the logits, top-1:\n\n")
	fmt.Fprintln(stdout, "| model | edge-resnet fp32 | edge-resnet int8 | ONNX Runtime int8 |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|")
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	fmt.Fprintln(stdout)
	if len(bad) > 0 {
		return fmt.Errorf("int8 logits too far from PyTorch fp32 (cosine < %g): %s: not timing a wrong result", e.o.int8Cos, strings.Join(bad, ", "))
	}
	return nil
}

// logitsFromJSON takes "logits" from the first JSON line that has them.
func logitsFromJSON(out []byte) ([]float32, error) {
	for _, l := range bytes.Split(out, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] != '{' {
			continue
		}
		var v struct {
			Logits []float32 `json:"logits"`
		}
		if err := json.Unmarshal(l, &v); err != nil {
			return nil, fmt.Errorf("bad JSON %q: %v", truncate(string(l), 200), err)
		}
		if len(v.Logits) > 0 {
			return v.Logits, nil
		}
	}
	return nil, fmt.Errorf("no logits in %q", truncate(string(out), 200))
}

type machineInfo struct {
	cpu, cores, date, goVersion, nodeVersion, commit, cpuReport string
	ortVersion, torchVersion, kernel, load                      string
	elapsed                                                     time.Duration
}

func (e *env) machineInfo() machineInfo {
	mi := machineInfo{
		date:  time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		cores: strconv.Itoa(runtime.NumCPU()),
		cpu:   cpuModel(),
	}
	if out, err := e.command(e.root, nil, e.goBin, "version"); err == nil {
		mi.goVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	if out, err := e.command(e.root, nil, e.o.node, "--version"); err == nil {
		mi.nodeVersion = strings.TrimSpace(string(out))
	}
	if out, err := e.command(e.root, nil, "git", "rev-parse", "--short=12", "HEAD"); err == nil {
		mi.commit = strings.TrimSpace(string(out))
		if st, err := e.command(e.root, nil, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && len(bytes.TrimSpace(st)) > 0 {
			mi.commit += " (with uncommitted changes)"
		}
	}
	if out, err := e.command(e.root, nil, e.cli, "cpu"); err == nil {
		mi.cpuReport = strings.TrimRight(string(out), "\n")
	}
	return mi
}

func (mi machineInfo) markdown(o options) string {
	var b strings.Builder
	dash := func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	}
	fmt.Fprintf(&b, "- machine: %s, %s cores (%s/%s)\n", dash(mi.cpu), mi.cores, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- date: %s; load average (1/5/15 min): %s\n", mi.date, dash(mi.load))
	fmt.Fprintf(&b, "- edge-resnet: commit %s, %s, kernel path %s", dash(mi.commit), dash(mi.goVersion), dash(mi.kernel))
	if k := os.Getenv("EDGE_RESNET_KERNELS"); k != "" {
		fmt.Fprintf(&b, " (EDGE_RESNET_KERNELS=%s)", k)
	}
	if w := os.Getenv("EDGE_RESNET_WINOGRAD"); w != "" {
		fmt.Fprintf(&b, " (EDGE_RESNET_WINOGRAD=%s)", w)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- ONNX Runtime %s (npm onnxruntime-node, CPU EP, Node.js %s); PyTorch %s (Debian python3-torch, eager)\n",
		dash(mi.ortVersion), dash(mi.nodeVersion), dash(mi.torchVersion))
	fmt.Fprintf(&b, "- %d round(s) x %d timed runs (+%d warm-up) per runtime, model and thread count; %s in all\n",
		o.rounds, o.runs, o.warmup, mi.elapsed)
	if mi.cpuReport != "" {
		b.WriteString("- `edge-resnet cpu`:\n\n```\n" + mi.cpuReport + "\n```\n")
	}
	return b.String()
}

// cpuModel is lscpu's "Model name", or /proc/cpuinfo's "model name".
func cpuModel() string {
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// loadAvg is the 1, 5 and 15 minute load averages (Linux), or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " / ")
}
