package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/host"
)

func callCommand() *cobra.Command {
	var (
		rf         runtimeFlags
		pluginsDir string
		args       string
	)
	cmd := &cobra.Command{
		Use:   "call TOOL",
		Short: "Run one tool locally, answering its questions at the terminal",
		Long: `Run one tool from the plugins directory without an MCP client. When the tool
asks a question (elicitation) you answer it here; its log and progress go to
stderr and its result, as JSON, to stdout.`,
		Example: `  wasmhost call greet --args '{"name":"Ada"}'
  wasmhost call confirm_delete --args '{"filename":"notes.txt"}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			logger := rf.logger()
			rt, builder, err := rf.runtime(ctx, logger)
			if err != nil {
				return err
			}
			defer rt.Close(ctx)
			catalog, err := host.OpenCatalog(ctx, rt, pluginsDir, host.CatalogOptions{Logger: logger.Named("plugins"), Builder: builder})
			if err != nil {
				return err
			}
			defer catalog.Close()
			entry, ok := catalog.Lookup(a[0])
			if !ok {
				return fmt.Errorf("no plugin in %s offers tool %q (see: wasmhost inspect)", pluginsDir, a[0])
			}
			if !json.Valid([]byte(args)) {
				return fmt.Errorf("--args is not valid JSON: %s", args)
			}
			cwd, _ := os.Getwd()
			env := &terminalEnv{in: bufio.NewReader(cmd.InOrStdin()), out: cmd.ErrOrStderr(), root: cwd}
			res, err := entry.Plugin.Call(ctx, a[0], json.RawMessage(args), env)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(res); err != nil {
				return err
			}
			if res.IsError {
				return fmt.Errorf("tool %s reported an error", a[0])
			}
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().StringVar(&pluginsDir, "plugins", "plugins", "directory of plugins")
	cmd.Flags().StringVar(&args, "args", "{}", "tool arguments as a JSON object")
	return cmd
}

// terminalRoot is the one root `call` offers: the working directory.
func terminalRoot(dir string) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{"roots": []map[string]string{{"uri": "file://" + filepath.ToSlash(dir), "name": filepath.Base(dir)}}})
	return raw
}
