package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func buildCommand() *cobra.Command {
	var rf runtimeFlags
	cmd := &cobra.Command{
		Use:   "build DIR...",
		Short: "Build Go plugin directories into .wasm plugins",
		Long: `Build each directory of Go plugin source (package main using the guest SDK)
with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, and check that the result
loads. Builds are cached by content; serve does the same on demand.`,
		Example: `  wasmhost build plugins/greet
  wasmhost build plugins/*`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, dirs []string) error {
			ctx := cmd.Context()
			logger := rf.logger()
			rt, builder, err := rf.runtime(ctx, logger)
			if err != nil {
				return err
			}
			defer rt.Close(ctx)
			for _, dir := range dirs {
				wasm, cached, err := builder.Build(ctx, dir)
				if err != nil {
					return fmt.Errorf("build %s: %w", dir, err)
				}
				p, err := rt.Load(ctx, wasm)
				if err != nil {
					return fmt.Errorf("built %s but it does not load: %w", dir, err)
				}
				note := "built"
				if cached {
					note = "cached"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (%s, %d tools)\n", dir, wasm, note, len(p.Tools()))
				_ = p.Close(ctx)
			}
			return nil
		},
	}
	rf.register(cmd)
	return cmd
}
