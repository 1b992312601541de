package main

// Plugin tests run on the build machine (go test .), with guest.Bridge
// standing in for wasmhost: it answers the questions the tool asks and
// collects what it logs.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
)

// answer returns a Bridge.Answer that accepts every elicitation with content.
func answer(content string) func([]abi.InputRequest) ([]abi.InputResponse, abi.Status) {
	return func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		out := make([]abi.InputResponse, len(batch))
		for i := range out {
			out[i].Result = json.RawMessage(`{"action":"accept","content":` + content + `}`)
		}
		return out, 0
	}
}

func TestReleaseNotes(t *testing.T) {
	commits := `["feat(api): add tasks","fix: crash on empty input","chore: bump deps","tidy up"]`
	tests := []struct {
		name     string
		args     string
		bridge   guest.Bridge
		want     ReleaseNotes
		wantText string // for tool errors
	}{
		{
			name: "audience given",
			args: `{"version":"v1.2.0","audience":"developers","commits":` + commits + `}`,
			want: ReleaseNotes{Version: "v1.2.0", Audience: "developers", Sections: []Section{
				{"New features", []string{"add tasks (api)"}},
				{"Bug fixes", []string{"crash on empty input"}},
				{"Other changes", []string{"bump deps", "tidy up"}},
			}},
		},
		{
			name:   "user asked",
			args:   `{"version":"v1.2.0","commits":` + commits + `}`,
			bridge: guest.Bridge{Answer: answer(`{"audience":"users"}`)},
			want: ReleaseNotes{Version: "v1.2.0", Audience: "users", Skipped: 2, Sections: []Section{
				{"New features", []string{"add tasks (api)"}},
				{"Bug fixes", []string{"crash on empty input"}},
			}},
		},
		{
			name: "client cannot ask", // the zero Bridge answers "unsupported"
			args: `{"version":"v1.2.0","commits":["docs: typo"]}`,
			want: ReleaseNotes{Version: "v1.2.0", Audience: "users", Skipped: 1, Sections: []Section{}},
		},
		{name: "no commits", args: `{"version":"v1","commits":[]}`, wantText: "commits must list at least one commit subject"},
		{name: "bad audience", args: `{"version":"v1","commits":["x"],"audience":"cats"}`, wantText: `audience "cats": want users or developers`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.bridge.Call("release_notes", tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantText != "" {
				if !res.IsError || res.Content[0].Text != tt.wantText {
					t.Errorf("result = %+v, want tool error %q", res, tt.wantText)
				}
				return
			}
			var got ReleaseNotes
			if err := json.Unmarshal(res.StructuredContent, &got); err != nil {
				t.Fatalf("structuredContent %s: %v", res.StructuredContent, err)
			}
			if !strings.HasPrefix(got.Markdown, "# "+tt.want.Version+"\n") {
				t.Errorf("markdown = %q", got.Markdown)
			}
			got.Markdown = ""
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("notes = %s\nwant    %s", gotJSON, wantJSON)
			}
		})
	}
}
