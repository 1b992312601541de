package mcpserver

import (
	"encoding/json"
	"maps"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rawResult is a result whose JSON we build ourselves, for shapes go-sdk's
// types cannot express (CreateTaskResult, a tools/list entry with
// execution.taskSupport, the tasks capability). Meta set by go-sdk after
// the handler (serverInfo on 2026-07-28) is merged into _meta on encoding.
type rawResult struct {
	mcp.ResultBase
	body map[string]any
}

func newRawResult(v any) (*rawResult, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, err
	}
	r := &rawResult{body: body}
	if m, ok := body["_meta"].(map[string]any); ok {
		r.Meta = m
	}
	return r, nil
}

func (r *rawResult) MarshalJSON() ([]byte, error) {
	out := maps.Clone(r.body)
	if out == nil {
		out = map[string]any{}
	}
	delete(out, "_meta")
	if len(r.Meta) > 0 {
		out["_meta"] = map[string]any(r.Meta)
	}
	return json.Marshal(out)
}
