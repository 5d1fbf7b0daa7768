package edgeresnet

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowedImports are the import arrows of docs/ARCHITECTURE.md: for each
// package (by directory), the packages of this module it may import. A new
// arrow is a design decision: make it in the document and here together.
var allowedImports = map[string][]string{
	".":                    {"arena", "dataset", "firmware", "graph", "importer/onnx", "importer/safetensors", "internal/engine", "internal/tunecache", "kernels", "preprocess", "quant", "resnet", "train"},
	"arena":                {},
	"kernels":              {},
	"preprocess":           {},
	"stream":               {},
	"graph":                {},
	"dataset":              {"preprocess"},
	"resnet":               {"graph"},
	"internal/engine":      {"arena", "graph", "kernels"},
	"internal/tunecache":   {"internal/engine"},
	"quant":                {"graph", "internal/engine"},
	"firmware":             {"arena", "graph", "preprocess"},
	"importer/onnx":        {"arena", "firmware", "graph"},
	"importer/safetensors": {"firmware", "graph", "resnet"},
	"cmd/edge-resnet":      {".", "dataset", "firmware", "graph", "preprocess", "resnet", "serve", "stream", "train"}, // public packages only: never internal/ or kernels
	"serve":                {".", "firmware", "preprocess", "serve/oipgrpc"},
	"serve/oipgrpc":        {}, // generated from the protocol's .proto
	"train":                {"dataset", "firmware", "graph", "internal/grad", "preprocess", "resnet"},
	"internal/grad":        {"kernels"},
}

// TestImportArrows parses every non-test Go file of the packages above and
// fails on an import of this module that the table does not allow.
func TestImportArrows(t *testing.T) {
	const module = "github.com/edge-resnet/edge-resnet"
	for dir, allowed := range allowedImports {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if path != module && !strings.HasPrefix(path, module+"/") {
					continue
				}
				rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
				if rel == "" {
					rel = "."
				}
				if !slices.Contains(allowed, rel) {
					t.Errorf("%s imports %s: not an arrow of docs/ARCHITECTURE.md (%s may import %v)", f, rel, dir, allowed)
				}
			}
		}
	}
}
