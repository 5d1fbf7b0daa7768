package onnx_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	edgeresnet "github.com/edge-resnet/edge-resnet"
	"github.com/edge-resnet/edge-resnet/firmware"
	"github.com/edge-resnet/edge-resnet/graph"
	"github.com/edge-resnet/edge-resnet/importer/onnx"
)

// TestONNXNodeTests runs the ONNX backend node tests of Debian's
// libonnx-testdata (ONNX 1.12: one directory per test with model.onnx and
// test_data_set_*/{input,output}_*.pb) through the importer.
//
// Selection: a test is selected when every node of its model has an op
// type in nodeTestOps, the operators this importer maps on activations or
// folds as constants. Tests of other operators would only measure that
// "operator X is not supported".
//
// Each selected test runs in two modes, each classified as pass, rejected
// (the import, or compiling what it imported, returns an error: allowed,
// the reasons are logged grouped),
// wrong (runs but disagrees with output_*.pb) or crash (a panic, also
// one the importer recovered into an error, or another "internal error").
// The test fails on any wrong or crash.
//
//   - run: the first graph input is the model input; every other input
//     (Clip's min and max, Reshape's shape, ...) becomes an initializer
//     holding its input_k.pb. The model is imported, then run by the
//     reference evaluator (Graph.Eval of onnx.Import's graph) and by the
//     compiled fp32 plan through the public API (ImportONNX, FromModel,
//     Session.RunNCHW); both must agree with the expected output.
//   - fold: every input becomes an initializer and all nodes are evaluated
//     by the constant evaluator (FoldForTest); every output is compared,
//     type and shape included. This is what checks the folders (Cast,
//     Reduce*, Gather, ...), which node tests rarely reach in run mode.
//
// Tolerance: float outputs agree when |got-want| <= 1e-4*|want| +
// 1e-5*max(1, max|want|) (NaN matches NaN, infinities must be equal).
// FLOAT16 and BFLOAT16 outputs must hold values of that type and be
// within one unit in its last place: ONNX 1.12 made its BFLOAT16
// references by truncating, where ONNX Runtime (and this importer) round
// to nearest even. Integer and bool outputs must be equal.
//
// Test data quirk: ONNX 1.12 stores BFLOAT16 tensors as UINT16 in the .pb
// files; where the model declares BFLOAT16 they are read as BFLOAT16.
//
// The data directory is /usr/share/libonnx-testdata/data/node (or
// $EDGE_RESNET_ONNX_NODE_TESTS). Without it the test skips, or fails when
// EDGE_RESNET_REQUIRE_TESTDATA=1 (CI sets it). With -short it runs every
// 8th selected test.
func TestONNXNodeTests(t *testing.T) {
	dir := nodeTestsDir(t)
	all, err := filepath.Glob(filepath.Join(dir, "test_*"))
	if err != nil {
		t.Fatal(err)
	}
	var selected []*nodeTest
	for _, d := range all {
		nt, err := loadNodeTest(d)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(d), err)
			continue
		}
		if nt.selected() {
			selected = append(selected, nt)
		}
	}
	if len(selected) == 0 {
		t.Fatalf("%s: no node test selected out of %d directories", dir, len(all))
	}
	total := len(selected)
	if testing.Short() {
		var sub []*nodeTest
		for k := 0; k < len(selected); k += 8 {
			sub = append(sub, selected[k])
		}
		selected = sub
		t.Logf("-short: running %d of the %d selected tests; the amd64 job runs all of them", len(selected), total)
	}
	modes := []struct {
		name string
		run  func(*nodeTest) result
	}{{"run", (*nodeTest).runMode}, {"fold", (*nodeTest).foldMode}}
	for _, m := range modes {
		var tally nodeTally
		for _, nt := range selected {
			r := nt.protect(m.run)
			tally.add(nt.name, r)
			switch r.kind {
			case kindWrong, kindCrash:
				t.Errorf("%s mode: %s: %s: %s", m.name, nt.name, r.kind, r.msg)
			}
		}
		tally.log(t, m.name, len(all), total)
	}
}

// nodeTestOps are the op types the importer handles: on activations
// (ops.go's activationOp) or folded as constants (fold.go's evalOp). Keep
// it in step with both.
var nodeTestOps = map[string]bool{}

func init() {
	for _, op := range strings.Fields(`
		Conv BatchNormalization Relu Sigmoid HardSigmoid HardSwish Add Sub
		Mul Div MaxPool AveragePool
		GlobalAveragePool GlobalMaxPool ReduceMean Flatten Reshape Gemm
		MatMul Pad Slice Concat Split Identity Dropout Softmax Clip Cast
		Constant Shape Size Squeeze Unsqueeze Transpose Gather
		ConstantOfShape Range Expand Tile Where Equal Less Greater
		LessOrEqual GreaterOrEqual And Or Xor Min Max Sum Neg Abs Floor
		Ceil Sqrt Reciprocal Not Sign ReduceSum ReduceProd ReduceMax
		ReduceMin ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
		ReduceSumSquare`) {
		nodeTestOps[op] = true
	}
}

func nodeTestsDir(t *testing.T) string {
	dir := os.Getenv("EDGE_RESNET_ONNX_NODE_TESTS")
	if dir == "" {
		dir = "/usr/share/libonnx-testdata/data/node"
	}
	if _, err := os.Stat(filepath.Join(dir, "test_abs", "model.onnx")); err != nil {
		msg := fmt.Sprintf("the ONNX backend node tests are not installed (%v): apt-get install libonnx-testdata", err)
		if os.Getenv("EDGE_RESNET_REQUIRE_TESTDATA") == "1" {
			t.Fatal(msg + " (EDGE_RESNET_REQUIRE_TESTDATA=1)")
		}
		t.Skip(msg)
	}
	return dir
}

// Result kinds.
const (
	kindPass     = "pass"
	kindRejected = "rejected"
	kindWrong    = "wrong"
	kindCrash    = "crash"
)

type result struct {
	kind string
	msg  string // the error or the disagreement
}

func pass() result                     { return result{kind: kindPass} }
func wrongf(f string, a ...any) result { return result{kindWrong, fmt.Sprintf(f, a...)} }

// rejected classifies an import error: a panic the importer recovered, or
// an internal inconsistency it found, is a crash.
func rejected(err error) result {
	if strings.Contains(err.Error(), "internal error") {
		return result{kindCrash, err.Error()}
	}
	return result{kindRejected, err.Error()}
}

// protect runs one mode of a test, turning a panic into a crash.
func (nt *nodeTest) protect(run func(*nodeTest) result) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{kindCrash, fmt.Sprint("panic: ", p)}
		}
	}()
	return run(nt)
}

// nodeTest is one test directory.
type nodeTest struct {
	name, dir string
	model     []byte
	ops       []string
	inputs    []valueInfo
	outputs   []valueInfo
	sets      []string // test_data_set_* directories
}

type valueInfo struct {
	name     string
	kind     string // "tensor", "sequence", "map", "optional", "sparse_tensor", "" (no type)
	elemType int64
}

func (nt *nodeTest) selected() bool {
	if len(nt.ops) == 0 || len(nt.sets) == 0 {
		return false
	}
	for _, op := range nt.ops {
		if !nodeTestOps[op] {
			return false
		}
	}
	return true
}

func loadNodeTest(dir string) (*nodeTest, error) {
	nt := &nodeTest{name: filepath.Base(dir), dir: dir}
	var err error
	if nt.model, err = os.ReadFile(filepath.Join(dir, "model.onnx")); err != nil {
		return nil, err
	}
	if nt.sets, err = filepath.Glob(filepath.Join(dir, "test_data_set_*")); err != nil {
		return nil, err
	}
	ops := map[string]bool{}
	err = walk(nt.model, func(num protowire.Number, v []byte, _ uint64) error {
		if num != 7 { // ModelProto.graph
			return nil
		}
		return walk(v, func(num protowire.Number, v []byte, _ uint64) error {
			switch num {
			case 1: // GraphProto.node
				return walk(v, func(num protowire.Number, v []byte, _ uint64) error {
					if num == 4 { // NodeProto.op_type
						ops[string(v)] = true
					}
					return nil
				})
			case 11, 12: // input, output
				vi, err := parseValueInfo(v)
				if num == 11 {
					nt.inputs = append(nt.inputs, vi)
				} else {
					nt.outputs = append(nt.outputs, vi)
				}
				return err
			}
			return nil
		})
	})
	for op := range ops {
		nt.ops = append(nt.ops, op)
	}
	sort.Strings(nt.ops)
	return nt, err
}

func parseValueInfo(b []byte) (valueInfo, error) {
	var vi valueInfo
	err := walk(b, func(num protowire.Number, v []byte, _ uint64) error {
		switch num {
		case 1:
			vi.name = string(v)
		case 2: // TypeProto
			return walk(v, func(num protowire.Number, v []byte, _ uint64) error {
				switch num {
				case 1:
					vi.kind = "tensor"
					return walk(v, func(num protowire.Number, _ []byte, x uint64) error {
						if num == 1 {
							vi.elemType = int64(x)
						}
						return nil
					})
				case 4:
					vi.kind = "sequence"
				case 5:
					vi.kind = "map"
				case 8:
					vi.kind = "sparse_tensor"
				case 9:
					vi.kind = "optional"
				}
				return nil
			})
		}
		return nil
	})
	return vi, err
}

// walk calls fn for each field of a protobuf message: v for length-
// delimited fields, x for the others (fixed32/64 as their bits).
func walk(b []byte, fn func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}

// withInitializers returns the model with the inputs from..len-1 made
// initializers holding the tensors of set. A second graph field is merged
// into the first by protobuf's rules, so appending one that holds only the
// initializers is enough; a name field appended to a TensorProto replaces
// the one it had.
func (nt *nodeTest) withInitializers(set string, from int) ([]byte, error) {
	var graph []byte
	for k := from; k < len(nt.inputs); k++ {
		in := nt.inputs[k]
		if in.kind != "tensor" {
			return nil, fmt.Errorf("input %d %q is not a tensor (%s), so it cannot be an initializer", k, in.name, kindName(in.kind))
		}
		pb, err := os.ReadFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", k)))
		if err != nil {
			return nil, err
		}
		td, err := decodeTensor(pb, in.elemType)
		if err != nil {
			return nil, fmt.Errorf("input_%d.pb: %w", k, err)
		}
		pb = slices.Clip(pb)
		pb = protowire.AppendTag(pb, 8, protowire.BytesType) // TensorProto.name
		pb = protowire.AppendString(pb, in.name)
		if td.dtype != td.fileType { // the UINT16 that holds BFLOAT16
			pb = protowire.AppendTag(pb, 2, protowire.VarintType)
			pb = protowire.AppendVarint(pb, uint64(td.dtype))
		}
		graph = protowire.AppendTag(graph, 5, protowire.BytesType) // GraphProto.initializer
		graph = protowire.AppendBytes(graph, pb)
	}
	m := slices.Clip(nt.model)
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	return protowire.AppendBytes(m, graph), nil
}

func kindName(k string) string {
	if k == "" {
		return "no type"
	}
	return k
}

// expected reads the outputs of a data set.
func (nt *nodeTest) expected(set string) ([]tensorData, error) {
	var out []tensorData
	for k, o := range nt.outputs {
		if o.kind != "tensor" {
			return nil, fmt.Errorf("output %d %q is not a tensor (%s)", k, o.name, kindName(o.kind))
		}
		pb, err := os.ReadFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", k)))
		if err != nil {
			return nil, err
		}
		td, err := decodeTensor(pb, o.elemType)
		if err != nil {
			return nil, fmt.Errorf("output_%d.pb: %w", k, err)
		}
		out = append(out, td)
	}
	return out, nil
}

// runMode imports the model with input 0 as its input and runs it.
func (nt *nodeTest) runMode() result {
	for _, set := range nt.sets {
		if r := nt.runSet(set); r.kind != kindPass {
			return r
		}
	}
	return pass()
}

func (nt *nodeTest) runSet(set string) result {
	if len(nt.inputs) == 0 {
		return result{kindRejected, "the model has no inputs"}
	}
	model, err := nt.withInitializers(set, 1)
	if err != nil {
		return result{kindRejected, "harness: " + err.Error()}
	}
	g, info, err := onnx.Import(model, onnx.Options{})
	if err != nil {
		return rejected(err)
	}
	// Only single-input, single-output models of a 4-D input import.
	want, err := nt.expected(set)
	if err != nil {
		return wrongf("imported, but: %v", err)
	}
	pb, err := os.ReadFile(filepath.Join(set, "input_0.pb"))
	if err != nil {
		return wrongf("imported, but: %v", err)
	}
	in, err := decodeTensor(pb, nt.inputs[0].elemType)
	if err != nil || len(in.dims) != 4 {
		return wrongf("imported, but input_0.pb is %v %v (%v)", in.dtype, in.dims, err)
	}
	x := make([]float32, 0, len(in.f)+len(in.i)) // integer inputs are fed as float32
	for _, v := range in.f {
		x = append(x, float32(v))
	}
	for _, v := range in.i {
		x = append(x, float32(v))
	}
	// The graph takes NHWC samples: an NCHW input is transposed, an NHWC
	// one (info.InputLayout) is already.
	s, n := g.Input(), in.dims[0]
	nhwc := x
	if info.InputLayout != onnx.LayoutNHWC {
		nhwc = nchwToNHWC(x, n, s.C, s.H, s.W)
	}
	// The reference evaluator on the imported graph (NHWC in and out),
	// every output.
	refs, err := g.EvalOutputs(nhwc)
	if err != nil {
		return wrongf("Eval: %v", err)
	}
	if len(refs) != len(want) {
		return wrongf("%d outputs, want %d", len(refs), len(want))
	}
	shapes := make([]graph.Shape, len(refs))
	for k, node := range g.Outputs() {
		shapes[k] = g.Nodes[node].Shape
		if r := compareNHWC(fmt.Sprintf("Eval output %d", k), refs[k], n, shapes[k], want[k]); r.kind != kindPass {
			return r
		}
	}
	return runCompiled(model, in.dims, x, nhwc, info.InputLayout == onnx.LayoutNHWC, shapes, want, refs)
}

// runCompiled runs the compiled fp32 plan through the public API: an
// NCHW input with RunNCHW, an NHWC one with Run.
func runCompiled(model []byte, dims []int, x, nhwc []float32, isNHWC bool, shapes []graph.Shape, want []tensorData, refs [][]float32) result {
	fm, err := edgeresnet.ImportONNX(model, edgeresnet.ImportOptions{})
	if err != nil {
		return wrongf("onnx.Import succeeded, ImportONNX: %v", err)
	}
	n := dims[0]
	sess, done, err := openSession(fm, n)
	if err != nil {
		return result{kindRejected, err.Error()}
	}
	defer done()
	_, err = runInput(sess, isNHWC, dims, x, nhwc)
	if errors.Is(err, edgeresnet.ErrNonFinite) && !allFinite(want[0].f) {
		return compareNHWC("Eval", refs[0], n, shapes[0], want[0]) // Run refuses such outputs by design
	}
	if err != nil {
		return wrongf("compiled plan: %v", err)
	}
	outs := sess.Outputs()
	for k := range want {
		if r := compareNHWC(fmt.Sprintf("compiled plan output %d (%s)", k, outs[k].Name), outs[k].Values, n, shapes[k], want[k]); r.kind != kindPass {
			return r
		}
	}
	return result{kind: kindPass}
}

// openSession compiles a converted model into an fp32 session of batch n;
// done closes both.
func openSession(fm *firmware.Model, n int) (s *edgeresnet.Session, done func(), err error) {
	m, err := edgeresnet.FromModel(fm)
	if err != nil {
		return nil, nil, fmt.Errorf("compile: %w", err)
	}
	s, err = m.NewSession(edgeresnet.WithPrecision(edgeresnet.PrecisionFP32), edgeresnet.WithBatch(n))
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	return s, func() { s.Close(); m.Close() }, nil
}

// runInput runs an input through s: NHWC samples with Run, an NCHW tensor
// of dims with RunNCHW.
func runInput(s *edgeresnet.Session, isNHWC bool, dims []int, nchw, nhwc []float32) ([]float32, error) {
	if isNHWC {
		return s.Run(nhwc)
	}
	return s.RunNCHW(dims, nchw)
}

func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// nchwToNHWC transposes n samples of c×h×w.
func nchwToNHWC(x []float32, n, c, h, w int) []float32 {
	out := make([]float32, len(x))
	size := c * h * w
	for b := range n {
		for cc := range c {
			for y := range h {
				for z := range w {
					out[b*size+(y*w+z)*c+cc] = x[b*size+(cc*h+y)*w+z]
				}
			}
		}
	}
	return out
}

// compareNHWC compares n NHWC activations of shape o with an expected
// [N,C,H,W] or [N,K] FLOAT tensor.
func compareNHWC(what string, got []float32, n int, o graph.Shape, want tensorData) result {
	if want.dtype != dtFloat {
		return wrongf("%s: the expected output is of type %d, the graph's FLOAT", what, want.dtype)
	}
	h, w, c := o.H, o.W, o.C
	if !slices.Equal(want.dims, []int{n, c, h, w}) && !(slices.Equal(want.dims, []int{n, c}) && h == 1 && w == 1) {
		return wrongf("%s: %d outputs of %dx%dx%d (HWC), want %v", what, n, h, w, c, want.dims)
	}
	if len(got) != n*o.Size() {
		return wrongf("%s: %d values for %d outputs of %v", what, len(got), n, o)
	}
	g := make([]float64, len(got))
	size := o.Size()
	for b := range n {
		for cc := range c {
			for y := range h {
				for z := range w {
					g[b*size+(cc*h+y)*w+z] = float64(got[b*size+(y*w+z)*c+cc])
				}
			}
		}
	}
	if msg := compareFloats(g, want.f, dtFloat); msg != "" {
		return wrongf("%s: %s", what, msg)
	}
	return pass()
}

// foldMode folds the whole model with every input an initializer.
func (nt *nodeTest) foldMode() result {
	for _, set := range nt.sets {
		if r := nt.foldSet(set); r.kind != kindPass {
			return r
		}
	}
	return pass()
}

func (nt *nodeTest) foldSet(set string) result {
	model, err := nt.withInitializers(set, 0)
	if err != nil {
		return result{kindRejected, "harness: " + err.Error()}
	}
	got, err := onnx.FoldForTest(model)
	if err != nil {
		return rejected(err)
	}
	want, err := nt.expected(set)
	if err != nil {
		return wrongf("folded, but: %v", err)
	}
	if len(got) != len(want) {
		return wrongf("%d outputs, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g.DType != w.dtype || !slices.Equal(g.Dims, w.dims) {
			return wrongf("output %d is type %d %v, want type %d %v", k, g.DType, g.Dims, w.dtype, w.dims)
		}
		var msg string
		if isFloatType(w.dtype) {
			f := make([]float64, len(g.F))
			for j, v := range g.F {
				f[j] = float64(v)
			}
			msg = compareFloats(f, w.f, w.dtype)
		} else if !slices.Equal(g.I, w.i) {
			msg = fmt.Sprintf("values %v, want %v", clip(g.I), clip(w.i))
		}
		if msg != "" {
			return wrongf("output %d: %s", k, msg)
		}
	}
	return pass()
}

func clip[T any](v []T) []T { return v[:min(len(v), 8)] }

// compareFloats applies the tolerance of TestONNXNodeTests and describes
// the first disagreement ("" if none).
func compareFloats(got, want []float64, dtype int64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d values, want %d", len(got), len(want))
	}
	scale := 1.0
	for _, w := range want {
		if !math.IsInf(w, 0) && !math.IsNaN(w) {
			scale = max(scale, math.Abs(w))
		}
	}
	for k := range want {
		g, w := got[k], want[k]
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if math.IsNaN(w) == math.IsNaN(g) {
				continue
			}
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if g == w {
				continue
			}
		case dtype == dtFloat16 || dtype == dtBfloat16:
			if !representable(g, dtype) {
				return fmt.Sprintf("value %d is %v, which is not a %s value (want %v)", k, g, typeName(dtype), w)
			}
			if math.Abs(g-w) <= ulp(w, dtype) {
				continue
			}
		default:
			if math.Abs(g-w) <= 1e-4*math.Abs(w)+1e-5*scale {
				continue
			}
		}
		return fmt.Sprintf("value %d of %d is %v, want %v", k, len(want), g, w)
	}
	return ""
}

// The 16-bit float formats: fraction bits and the exponent of the smallest
// normal number.
func format16(dtype int64) (mant, minExp int) {
	if dtype == dtFloat16 {
		return 10, -14
	}
	return 7, -126
}

// ulp is the spacing of the 16-bit format's values at v.
func ulp(v float64, dtype int64) float64 {
	mant, minExp := format16(dtype)
	_, e := math.Frexp(v)
	return math.Ldexp(1, max(e-1, minExp)-mant)
}

// representable reports whether v is a finite value of the 16-bit format.
func representable(v float64, dtype int64) bool {
	if dtype == dtFloat16 && math.Abs(v) > 65504 {
		return false
	}
	if dtype == dtBfloat16 {
		return math.Float32bits(float32(v))&0xffff == 0 && float64(float32(v)) == v
	}
	q := v / ulp(v, dtype)
	return q == math.Trunc(q)
}

func typeName(dtype int64) string {
	return map[int64]string{dtFloat16: "FLOAT16", dtBfloat16: "BFLOAT16"}[dtype]
}

// TensorProto data types.
const (
	dtFloat    = 1
	dtUint8    = 2
	dtInt8     = 3
	dtUint16   = 4
	dtInt16    = 5
	dtInt32    = 6
	dtInt64    = 7
	dtBool     = 9
	dtFloat16  = 10
	dtDouble   = 11
	dtUint32   = 12
	dtUint64   = 13
	dtBfloat16 = 16
)

func isFloatType(dt int64) bool {
	return dt == dtFloat || dt == dtDouble || dt == dtFloat16 || dt == dtBfloat16
}

// tensorData is a decoded TensorProto: float types in f, the others in i.
type tensorData struct {
	dtype, fileType int64 // fileType: as the file says; dtype after the UINT16→BFLOAT16 fix
	dims            []int
	f               []float64
	i               []int64
}

// decodeTensor decodes a TensorProto independently of the importer's
// decoder. declared is the element type the model declares for it.
func decodeTensor(b []byte, declared int64) (tensorData, error) {
	var t tensorData
	var raw []byte
	hasRaw := false
	var typed []uint64 // float_data/double_data bits, int32/int64/uint64_data values
	err := walk(b, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case 1:
			if v == nil {
				t.dims = append(t.dims, int(x))
				return nil
			}
			return varints(v, func(x uint64) { t.dims = append(t.dims, int(x)) })
		case 2:
			t.fileType = int64(x)
		case 4, 10: // float_data (fixed32), double_data (fixed64), packed
			if v == nil { // not packed
				typed = append(typed, x)
				return nil
			}
			w := 4
			if num == 10 {
				w = 8
			}
			for len(v) >= w {
				if w == 4 {
					typed = append(typed, le(v[:4]))
				} else {
					typed = append(typed, le(v[:8]))
				}
				v = v[w:]
			}
		case 5, 7, 11: // int32_data, int64_data, uint64_data
			if v == nil {
				typed = append(typed, x)
				return nil
			}
			return varints(v, func(x uint64) { typed = append(typed, x) })
		case 6:
			return fmt.Errorf("string tensors are not supported")
		case 9:
			raw, hasRaw = v, true
		case 13, 14:
			return fmt.Errorf("external data is not supported")
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	t.dtype = t.fileType
	if t.fileType == dtUint16 && declared == dtBfloat16 {
		t.dtype = dtBfloat16
	}
	n := 1
	for _, d := range t.dims {
		n *= d
	}
	width := map[int64]int{dtFloat: 4, dtUint8: 1, dtInt8: 1, dtUint16: 2, dtInt16: 2, dtInt32: 4, dtInt64: 8,
		dtBool: 1, dtFloat16: 2, dtDouble: 8, dtUint32: 4, dtUint64: 8, dtBfloat16: 2}[t.dtype]
	if width == 0 {
		return t, fmt.Errorf("data type %d is not supported", t.dtype)
	}
	bits := typed
	if hasRaw {
		if len(raw) != n*width {
			return t, fmt.Errorf("raw_data has %d bytes for %d values of %d bytes", len(raw), n, width)
		}
		bits = make([]uint64, n)
		for k := range bits {
			bits[k] = le(raw[k*width : (k+1)*width])
		}
	}
	if len(bits) != n {
		return t, fmt.Errorf("%d values for dims %v", len(bits), t.dims)
	}
	for _, u := range bits {
		switch t.dtype {
		case dtFloat:
			t.f = append(t.f, float64(math.Float32frombits(uint32(u))))
		case dtDouble:
			t.f = append(t.f, math.Float64frombits(u))
		case dtFloat16:
			t.f = append(t.f, half(uint16(u)))
		case dtBfloat16:
			t.f = append(t.f, float64(math.Float32frombits(uint32(uint16(u))<<16)))
		case dtInt8:
			t.i = append(t.i, int64(int8(u)))
		case dtInt16:
			t.i = append(t.i, int64(int16(u)))
		case dtInt32:
			t.i = append(t.i, int64(int32(u)))
		case dtUint8:
			t.i = append(t.i, int64(uint8(u)))
		case dtUint16:
			t.i = append(t.i, int64(uint16(u)))
		case dtUint32:
			t.i = append(t.i, int64(uint32(u)))
		case dtBool:
			t.i = append(t.i, int64(min(u, 1)))
		default: // INT64, UINT64
			t.i = append(t.i, int64(u))
		}
	}
	return t, nil
}

func varints(v []byte, fn func(uint64)) error {
	for len(v) > 0 {
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return protowire.ParseError(n)
		}
		fn(x)
		v = v[n:]
	}
	return nil
}

// le reads a little-endian unsigned integer of len(b) bytes.
func le(b []byte) uint64 {
	var u uint64
	for k := len(b) - 1; k >= 0; k-- {
		u = u<<8 | uint64(b[k])
	}
	return u
}

// half decodes IEEE 754 binary16 bits.
func half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	switch exp {
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	case 0:
		return sign * math.Ldexp(frac, -24)
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// nodeTally counts the results of one mode and groups the rejections.
type nodeTally struct {
	counts  map[string]int
	reasons map[string][]string // normalized reason -> tests
	passed  []string
}

func (ta *nodeTally) add(test string, r result) {
	if ta.counts == nil {
		ta.counts, ta.reasons = map[string]int{}, map[string][]string{}
	}
	ta.counts[r.kind]++
	if r.kind == kindPass {
		ta.passed = append(ta.passed, test)
	}
	if r.kind == kindRejected {
		key := reasonKey(r.msg)
		ta.reasons[key] = append(ta.reasons[key], test)
	}
}

var (
	reNodePrefix = regexp.MustCompile(`node \d+ "[^"]*" \((\w+)\): `)
	reQuoted     = regexp.MustCompile(`"[^"]*"`)
	reList       = regexp.MustCompile(`\[[^\]]*\]`)
	reNumber     = regexp.MustCompile(`-?\b\d+(\.\d+)?(e-?\d+)?\b`)
	reType       = regexp.MustCompile(`has type [A-Z0-9]+`)
)

// reasonKey turns an import error into its kind: the failing node's op
// in front, and names, lists, numbers and data types replaced.
func reasonKey(msg string) string {
	msg = strings.TrimPrefix(msg, "onnx: ")
	op := ""
	if m := reNodePrefix.FindStringSubmatchIndex(msg); m != nil && m[0] == 0 {
		op = msg[m[2]:m[3]] + ": "
		msg = msg[m[1]:]
	}
	msg = reQuoted.ReplaceAllString(msg, `"…"`)
	msg = reList.ReplaceAllString(msg, "[…]")
	msg = reNumber.ReplaceAllString(msg, "N")
	msg = reType.ReplaceAllString(msg, "has type T")
	return op + msg
}

func (ta *nodeTally) log(t *testing.T, mode string, dirs, selected int) {
	c := ta.counts
	t.Logf("%s mode: %d node tests, %d selected, %d run: %d pass, %d rejected, %d wrong, %d crash",
		mode, dirs, selected, c[kindPass]+c[kindRejected]+c[kindWrong]+c[kindCrash],
		c[kindPass], c[kindRejected], c[kindWrong], c[kindCrash])
	if len(ta.passed) <= 40 {
		t.Logf("%s mode: passed: %s", mode, strings.Join(ta.passed, " "))
	}
	keys := make([]string, 0, len(ta.reasons))
	for k := range ta.reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		na, nb := len(ta.reasons[keys[a]]), len(ta.reasons[keys[b]])
		return na > nb || na == nb && keys[a] < keys[b]
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s mode: rejections by reason (count, reason, examples):\n", mode)
	for _, k := range keys {
		tests := ta.reasons[k]
		fmt.Fprintf(&sb, "%5d  %s  (%s)\n", len(tests), k, strings.Join(tests[:min(len(tests), 3)], ", "))
	}
	t.Log(sb.String())
}
