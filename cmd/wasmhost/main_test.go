package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

// run executes the CLI in-process with its own cache and returns stdout.
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := rootCommand()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cache := filepath.Join(os.TempDir(), "wasmhost-test-cache")
	if args[0] != "new" && args[0] != "version" {
		args = append(args, "--cache-dir", cache, "--log-level", "error")
	}
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := run(t, "", "version")
	if err != nil || !strings.Contains(out, "ABI      v1") {
		t.Fatalf("version: %q, %v", out, err)
	}
}

func TestCallAnswersElicitationAtTheTerminal(t *testing.T) {
	for _, tc := range []struct{ stdin, want string }{
		{"a\ny\n", "Not deleted notes.txt: plugin confirm may not use directory /files: not granted"}, // see TestGrantedDeletion
		{"a\nn\n", "Kept notes.txt"},
		{"d\n", "Kept notes.txt"},
	} {
		out, err := run(t, tc.stdin, "call", "confirm_delete", "--plugins", "../../plugins", "--args", `{"filename":"notes.txt"}`)
		if err != nil {
			t.Fatal(err)
		}
		var res abi.CallResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("stdout is not a result: %q", out)
		}
		if len(res.Content) != 1 || !strings.HasPrefix(res.Content[0].Text, tc.want) {
			t.Errorf("answers %q: got %+v, want %q", tc.stdin, res.Content, tc.want)
		}
	}
}

func TestCallErrors(t *testing.T) {
	if _, err := run(t, "", "call", "no_such_tool", "--plugins", "../../plugins"); err == nil || !strings.Contains(err.Error(), "no_such_tool") {
		t.Errorf("unknown tool: %v", err)
	}
	if _, err := run(t, "", "call", "greet", "--plugins", "../../plugins", "--args", "{"); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad --args: %v", err)
	}
	if _, err := run(t, "", "serve", "--plugins", filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--plugins") {
		t.Errorf("missing plugins dir: %v", err)
	}
}

func TestInspect(t *testing.T) {
	out, err := run(t, "", "inspect", "--json", "../../plugins/greet")
	if err != nil {
		t.Fatal(err)
	}
	var desc struct {
		ABIVersion int        `json:"abiVersion"`
		Tools      []abi.Tool `json:"tools"`
	}
	if err := json.Unmarshal([]byte(out), &desc); err != nil {
		t.Fatalf("inspect --json: %v: %q", err, out)
	}
	if desc.ABIVersion != abi.Version || len(desc.Tools) != 1 || desc.Tools[0].Name != "greet" {
		t.Errorf("inspect: %+v", desc)
	}
}

// TestNewScaffoldBuildsAndRuns walks "write your first plugin" outside the
// repository: new, then call.
func TestNewScaffoldBuildsAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin module with go mod tidy")
	}
	dir := t.TempDir()
	repo, _ := filepath.Abs("../..")
	if _, err := run(t, "", "new", "word_count", "--dir", dir, "--sdk", repo); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "new", "word_count", "--dir", dir, "--sdk", repo); err == nil {
		t.Error("new over an existing plugin must fail")
	}
	if _, err := run(t, "", "new", "Bad-Name", "--dir", dir, "--sdk", repo); err == nil {
		t.Error("new with an invalid name must fail")
	}
	out, err := run(t, "", "call", "word_count", "--plugins", dir, "--args", `{"text":"to be or not to be"}`)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		StructuredContent struct{ Words int } `json:"structuredContent"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.StructuredContent.Words != 6 {
		t.Errorf("word_count: %q (%v)", out, err)
	}
}
