// Command native is bench/'s baseline: a go-sdk MCP server over stdio with
// the same tool logic as the example plugins greet (plugins/greet) and
// confirm_delete (plugins/confirm, one form elicitation), and nothing else.
// bench/run.sh drives it and `wasmhost serve` with the same client in the
// same run, so the ratios say what hosting the logic in WebAssembly costs.
// It is a benchmark fixture, not part of wasmhost: it must not import any
// wasmhost package, so that the baseline stays a plain go-sdk server.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// GreetIn is greet's input, as in plugins/greet.
type GreetIn struct {
	Name string `json:"name" jsonschema:"Name of the person to greet."`
}

// ConfirmDeleteIn is confirm_delete's input, as in plugins/confirm.
type ConfirmDeleteIn struct {
	Filename string `json:"filename" jsonschema:"The file to delete."`
}

// confirmSchema is the form confirm_delete shows (plugins/confirm's
// Confirmation).
var confirmSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"confirm": map[string]any{"type": "boolean", "description": "Tick to delete the file."},
	},
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func main() {
	srv := mcp.NewServer(&mcp.Implementation{Name: "native-baseline", Version: "0.0.0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "greet", Title: "Greet", Description: "Say hello to someone by name."},
		func(_ context.Context, _ *mcp.CallToolRequest, in GreetIn) (*mcp.CallToolResult, any, error) {
			return text("Hello, " + in.Name + "!"), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "confirm_delete", Title: "Confirm delete",
		Description: "Delete a file from the granted directory, after the user confirms."},
		func(ctx context.Context, req *mcp.CallToolRequest, in ConfirmDeleteIn) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message:         fmt.Sprintf("Delete %s?", in.Filename),
				RequestedSchema: confirmSchema,
			})
			if err != nil {
				return text("Kept " + in.Filename), nil, nil
			}
			if ok, _ := res.Content["confirm"].(bool); res.Action == "accept" && ok {
				// As plugins/confirm answers with no directory granted,
				// which is how the benchmark runs it.
				return text("Not deleted " + in.Filename + ": no directory is granted"), nil, nil
			}
			return text("Kept " + in.Filename), nil, nil
		})
	if err := srv.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.SetOutput(os.Stderr)
		log.Fatal(err)
	}
}
