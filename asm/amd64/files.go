package main

import (
	"bytes"

	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/pass"
	"github.com/mmcloughlin/avo/printer"
)

// asmFile is one assembly file of kernels/ that this command writes.
type asmFile struct {
	name  string               // file name in kernels/
	flag  string               // the flag of this command that selects it; "" for the default file
	build string               // build constraint (avo's ConstraintExpr syntax); "" for "gc,!purego"
	body  func(*build.Context) // emits the file's functions and data
}

// asmFiles are all the files of this command, each written by one run:
//
//	go -C ../asm run ./amd64 [-<flag>] -out ../kernels/<name>
//
// the command that kernels/generate.go runs and that the file's header
// records (TestGenerated checks the three agree).
var asmFiles = []*asmFile{
	{name: "gemm_amd64.s", body: gemmFile},
	{name: "gemm8_amd64.s", flag: "int8", body: gemm8File},
	{name: "winograd_amd64.s", flag: "wino", body: winoFile},
	{name: "winograd8_amd64.s", flag: "wino8", body: wino8File},
	{name: "kernelbench_amd64.s", flag: "kernelbench", build: "gc,!purego,kernelbench", body: benchFile},
	{name: "depthwise_amd64.s", flag: "depthwise", body: depthwiseFile},
	{name: "groupconv_amd64.s", flag: "groupconv", body: groupconvFile},
	{name: "batchnorm_amd64.s", flag: "batchnorm", body: batchnormFile},
}

// argv is the command recorded in the file's header. It is fixed rather
// than taken from os.Args so that the regeneration test, which runs from
// another directory, produces the same bytes.
func (f *asmFile) argv() []string {
	a := []string{"go", "-C", "../asm", "run", "./amd64"}
	if f.flag != "" {
		a = append(a, "-"+f.flag)
	}
	return append(a, "-out", "../kernels/"+f.name)
}

// generate returns the whole file.
func (f *asmFile) generate() ([]byte, error) {
	c := build.NewContext()
	constraint := f.build
	if constraint == "" {
		constraint = "gc,!purego"
	}
	c.ConstraintExpr(constraint)
	f.body(c)
	r, err := c.Result()
	if err != nil {
		return nil, err
	}
	if err := pass.Compile.Execute(r); err != nil {
		return nil, err
	}
	p := printer.NewGoAsm(printer.Config{Argv: f.argv(), Pkg: "kernels"})
	src, err := p.Print(r)
	if err != nil {
		return nil, err
	}
	// Generated files end with exactly one newline, like gofmt'd Go.
	return append(bytes.TrimRight(src, "\n"), '\n'), nil
}

// benchFile: the kernels that only benchmarks and their tests call (the
// FMA, VPDPBUSD and TDPBUSD peaks, the two requantization epilogues compared in
// docs/INT8.md), built only with -tags kernelbench.
func benchFile(c *build.Context) {
	fmaPeak(c, "fmaPeakAVX2", false)
	fmaPeak(c, "fmaPeakAVX512", true)
	requantBench(c)
	vnniPeak(c, "vnniPeakAVX512", true)
	vnniPeak(c, "vnniPeakAVXVNNI", false)
	amxPeak(c)
}
