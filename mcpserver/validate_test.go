package mcpserver

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
)

// TestValidationUnderCallContext: arguments and answers are validated
// under the call's context, so a call the client cancelled (or whose
// budget is spent) does not keep validating on the host.
func TestValidationUnderCallContext(t *testing.T) {
	st, err := newServedTool(host.ToolEntry{Tool: abi.Tool{Name: "greet",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}}}`)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := json.RawMessage(`{"name":"Ada"}`)
	if res := st.checkArgs(context.Background(), 0, args); res != nil {
		t.Fatalf("valid arguments refused: %+v", res)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	res := st.checkArgs(cancelled, 0, args)
	if res == nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "not checked") {
		t.Fatalf("cancelled call validated: %+v", res)
	}
	q := abi.InputRequest{Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"?","requestedSchema":{"type":"object","properties":{"ok":{"type":"boolean"}}}}`)}
	answer := json.RawMessage(`{"action":"accept","content":{"ok":true}}`)
	if err := validAnswer(context.Background(), 0, q, answer); err != nil {
		t.Fatalf("valid answer refused: %v", err)
	}
	if err := validAnswer(cancelled, 0, q, answer); err == nil {
		t.Fatal("answer validated under a cancelled context")
	}
}

// TestLinearSchemaValidatedInline: arguments of a tool whose schema is
// linear (host.LinearSchema) are checked on the call's own goroutine, so
// they are checked even while every validation place is held by slow
// validations; other schemas wait for a place within the run budget.
func TestLinearSchemaValidatedInline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	for range runtime.GOMAXPROCS(0) {
		_ = host.Validate(context.Background(), time.Millisecond, func() error { <-release; return nil })
	}
	linear, err := newServedTool(host.ToolEntry{Tool: abi.Tool{Name: "greet",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	patterned, err := newServedTool(host.ToolEntry{Tool: abi.Tool{Name: "greet2",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string","pattern":"^A"}},"required":["name"]}`)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := linear.checkArgs(context.Background(), 20*time.Millisecond, json.RawMessage(`{"name":"Ada"}`)); res != nil {
		t.Fatalf("valid arguments of a linear schema, every place held: %+v", res)
	}
	res := linear.checkArgs(context.Background(), 20*time.Millisecond, json.RawMessage(`{"name":7}`))
	if res == nil || !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "invalid arguments") {
		t.Fatalf("invalid arguments of a linear schema: %+v", res)
	}
	res = patterned.checkArgs(context.Background(), 20*time.Millisecond, json.RawMessage(`{"name":"Ada"}`))
	if res == nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "not checked") {
		t.Fatalf("a patterned schema, every place held: %+v", res)
	}
}
