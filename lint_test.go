package edgeresnet

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is issue 9's rule: no hand-written function over about 80
// lines, counted from the func keyword to the closing brace.
const maxFuncLines = 80

// TestFunctionLength parses every hand-written, non-test Go file of the
// module, including the asm generators (their own module, but code people
// edit), and fails listing each function that is over maxFuncLines.
func TestFunctionLength(t *testing.T) {
	files, err := lintedGoFiles(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
	for _, path := range files {
		for _, long := range longFuncs(t, path) {
			t.Errorf("%s (at most %d): split it into named steps", long, maxFuncLines)
		}
	}
}

// lintedGoFiles lists the non-test .go files below root, skipping test
// data, node_modules, vendor and hidden directories, which hold no code
// written here.
func lintedGoFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "node_modules" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

// longFuncs describes the functions of one file that break the rule
// ("file:line: name: n lines"); a generated file is its generator's
// business: one whose first line says "Code generated", or that has Go's
// "// Code generated ... DO NOT EDIT." line before its package clause
// (ast.IsGenerated; protoc's plugins put it after the .proto's license).
func longFuncs(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(src, []byte("\n"))
	if bytes.Contains(first, []byte("Code generated")) {
		return nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution|parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if ast.IsGenerated(f) {
		return nil
	}
	var out []string
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
		if n := end.Line - start.Line + 1; n > maxFuncLines {
			out = append(out, fmt.Sprintf("%s:%d: %s: %d lines", path, start.Line, funcName(fd), n))
		}
	}
	return out
}

// funcName is fd's name, with its receiver's type for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	return "(" + types.ExprString(fd.Recv.List[0].Type) + ")." + fd.Name.Name
}
