package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/abi"
)

// version is set at release time with -ldflags "-X main.version=…".
var version = "dev"

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the wasmhost, ABI, Go and wazero versions",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			wazero := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					if d.Path == "github.com/tetratelabs/wazero" {
						wazero = d.Version
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wasmhost %s\nABI      v%d\nGo       %s\nwazero   %s\n", version, abi.Version, runtime.Version(), wazero)
		},
	}
}
