package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
