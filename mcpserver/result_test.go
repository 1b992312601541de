package mcpserver

import (
	"encoding/json"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestTextResultMatchesGoSDK: a result built by textResult reaches the
// client as the one go-sdk decodes would, and every other result is left
// to go-sdk.
func TestTextResultMatchesGoSDK(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		fast bool
	}{
		{`{"content":[{"type":"text","text":"Hello, Ada!"}]}`, true},
		{`{"content":[]}`, true},
		{`{"content":[{"type":"text","text":"a"},{"type":"text","text":"b \u2028 \"q\""}],"isError":true}`, true},
		{`{"content":[{"type":"text","text":"{\"n\":1}"}],"structuredContent":{"n":1,"s":[true,null]}}`, true},
		{`{"content":[{"type":"image","data":"aGk=","mimeType":"image/png"}]}`, false},
		{`{"content":[{"type":"text","text":"x","mimeType":"text/plain"}]}`, false},
		{`{"content":[{"type":"resource","resource":{"uri":"file:///a","text":"x"}}]}`, false},
		{`{"error":{"code":-32021,"message":"no"}}`, false},
		{`not json`, false},
	} {
		got, ok := textResult(json.RawMessage(tc.raw))
		if ok != tc.fast {
			t.Errorf("%s: built directly = %v, want %v", tc.raw, ok, tc.fast)
			continue
		}
		if !ok {
			continue
		}
		var want mcp.CallToolResult
		if err := json.Unmarshal([]byte(tc.raw), &want); err != nil {
			t.Fatal(err)
		}
		g, err1 := json.Marshal(got)
		w, err2 := json.Marshal(&want)
		if err1 != nil || err2 != nil || string(g) != string(w) {
			t.Errorf("%s:\n built  %s (%v)\n go-sdk %s (%v)", tc.raw, g, err1, w, err2)
		}
	}
}
