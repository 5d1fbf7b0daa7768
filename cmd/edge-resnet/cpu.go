package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/klauspost/cpuid/v2"
	"github.com/spf13/cobra"

	"github.com/edge-resnet/edge-resnet/kernels"
)

func newCPUCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cpu",
		Short: "Show the CPU, its features and the kernels chosen for it",
		Long: `Show the CPU as detected, the SIMD features edge-resnet can use, and the kernel
path chosen. Set EDGE_RESNET_KERNELS to force a path (for tests and bug
reports), e.g. EDGE_RESNET_KERNELS=generic.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			c := cpuid.CPU
			fmt.Fprintf(w, "cpu:        %s (%s/%s, %d logical cores, GOMAXPROCS %d)\n",
				strings.TrimSpace(c.BrandName), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
			var feats []string
			for _, f := range []cpuid.FeatureID{cpuid.SSE2, cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F,
				cpuid.AVX512BW, cpuid.AVX512VL, cpuid.AVX512VNNI, cpuid.AVXVNNI, cpuid.ASIMD, cpuid.ASIMDDP} {
				if c.Supports(f) {
					feats = append(feats, f.String())
				}
			}
			fmt.Fprintf(w, "features:   %s\n", strings.Join(feats, " "))
			fmt.Fprintf(w, "available:  %s\n", strings.Join(kernels.Available(), ", "))
			fmt.Fprintf(w, "path:       %s\n", kernels.Selection())
			for _, p := range kernels.Primitives() {
				fmt.Fprintf(w, "  %-34s %s\n", p.Name, p.Impl)
			}
			// Shown above for the report, but a bad setting still fails.
			return kernels.EnvError()
		},
	}
}
