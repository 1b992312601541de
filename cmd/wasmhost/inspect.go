package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/safetext"
)

func inspectCommand() *cobra.Command {
	var (
		rf     runtimeFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "inspect FILE|DIR",
		Short: "Show a plugin's ABI version, tools, schemas, and what it needs against what is granted",
		Example: `  wasmhost inspect plugins/confirm
  wasmhost inspect --grants grants.json plugins/tracker
  wasmhost inspect --json my_tool.wasm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, builder, err := rf.runtime(ctx, rf.logger())
			if err != nil {
				return err
			}
			defer rt.Close(ctx)
			p, err := loadPlugin(ctx, rt, builder, args[0])
			if err != nil {
				return err
			}
			defer p.Close(ctx)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					ABIVersion int        `json:"abiVersion"`
					Tools      []abi.Tool `json:"tools"`
					Needs      []needView `json:"needs"`
				}{abi.Version, p.Tools(), needsView(p.Grant())})
			}
			fmt.Fprintf(out, "plugin:      %s\nABI version: %d\n\n", p.Path(), abi.Version)
			printNeeds(out, p.Grant(), rf.grantsFile)
			for _, t := range p.Tools() {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "tool:\t%s\n", t.Name)
				// The plugin's words, escaped: a title must not drive the
				// terminal.
				if t.Title != "" {
					fmt.Fprintf(tw, "title:\t%s\n", safetext.Line(t.Title))
				}
				fmt.Fprintf(tw, "description:\t%s\n", safetext.Line(t.Description))
				fmt.Fprintf(tw, "task support:\t%s\n", orDefault(string(t.TaskSupport), string(abi.TaskForbidden)))
				fmt.Fprintf(tw, "input schema:\t%s\n", compact(t.InputSchema))
				if len(t.OutputSchema) > 0 {
					fmt.Fprintf(tw, "output schema:\t%s\n", compact(t.OutputSchema))
				}
				tw.Flush()
				fmt.Fprintln(out)
			}
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the description as JSON")
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func compact(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
