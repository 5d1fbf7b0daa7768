package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	edgeresnet "github.com/edge-resnet/edge-resnet"
)

func newCPUCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cpu [--json]",
		Short: "Show the CPU, its features and the kernels chosen for it",
		Long: `Show the CPU as detected, the SIMD features edge-resnet can use, and the kernel
path chosen. Set EDGE_RESNET_KERNELS to force a path (for tests and bug
reports), e.g. EDGE_RESNET_KERNELS=generic; a path this CPU or build lacks
is shown, then reported as an error (exit status 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			c := edgeresnet.CPU()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(c); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "cpu:        %s (%s/%s, %d logical cores, GOMAXPROCS %d)\n", c.Name, c.OS, c.Arch, c.Cores, c.GOMAXPROCS)
				fmt.Fprintf(w, "cores:      %v fastest first (speeds %v); sessions default to %d threads\n", c.CPUs, c.Speeds, c.Threads)
				fmt.Fprintf(w, "features:   %s\n", strings.Join(c.Features, " "))
				fmt.Fprintf(w, "available:  %s\n", strings.Join(c.Available, ", "))
				fmt.Fprintf(w, "path:       %s\n", c.Selection)
				for _, p := range c.Primitives {
					fmt.Fprintf(w, "  %-34s %s\n", p.Name, p.Impl)
				}
			}
			// Shown above for the report, but a bad setting still fails.
			return edgeresnet.CheckEnvironment()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
