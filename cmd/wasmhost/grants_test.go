package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/logsink"
)

// runAll is run that also returns everything written to stderr, the log
// included (the logger writes through stderrSink, swapped for a pipe meanwhile;
// these tests do not run in parallel).
func runAll(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	r, w, perr := os.Pipe()
	if perr != nil {
		t.Fatal(perr)
	}
	saved, savedSink := os.Stderr, stderrSink
	os.Stderr = w
	sink := logsink.New(w, 0) // the logger writes through the sink, not os.Stderr
	stderrSink = func() *logsink.Writer { return sink }
	logs := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		logs <- string(b)
	}()
	cmd := rootCommand()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	args = append(args, "--cache-dir", filepath.Join(os.TempDir(), "wasmhost-test-cache"), "--log-level", "debug")
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	sink.Close(5 * time.Second)
	os.Stderr, stderrSink = saved, savedSink
	w.Close()
	log := <-logs
	r.Close()
	if !strings.Contains(log, "wasmhost") && err == nil {
		t.Fatalf("the log was not captured: %q", log)
	}
	return out.String(), errOut.String() + log, err
}

func writeGrants(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// fakeTracker is a loopback issue tracker that wants a Bearer token.
func fakeTracker(t *testing.T, token string) (*httptest.Server, *[]string) {
	var (
		mu     sync.Mutex
		titles []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/repos/acme/rockets/issues":
			fmt.Fprint(w, `[{"number":7,"title":"Fins fall off","state":"open","html_url":"http://t/7"}]`)
		case r.Method == "POST" && r.URL.Path == "/repos/acme/rockets/issues":
			var in struct{ Title string }
			json.NewDecoder(r.Body).Decode(&in)
			mu.Lock()
			titles = append(titles, in.Title)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"number":8,"title":%q,"state":"open"}`, in.Title)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &titles
}

func TestTrackerPluginOverGrantedLoopback(t *testing.T) {
	const token = "ghp-test-7d1e0c5a9b"
	t.Setenv("WASMHOST_TEST_TRACKER_TOKEN", token)
	srv, titles := fakeTracker(t, token)
	u, _ := url.Parse(srv.URL)
	grant := func(methods string) string {
		return writeGrants(t, fmt.Sprintf(`{"plugins": {"tracker": {
  "hosts": [{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true, "methods": %s, "pathPrefix": "/repos/"}],
  "config": {"base_url": {"value": %q}},
  "secrets": {"token": {"env": "WASMHOST_TEST_TRACKER_TOKEN"}}
}}}`, u.Port(), methods, srv.URL))
	}
	full := grant(`["GET", "POST"]`)

	out, logs, err := runAll(t, "", "call", "list_issues", "--plugins", "../../plugins", "--grants", full, "--args", `{"repo":"acme/rockets"}`)
	if err != nil || !strings.Contains(out, "Fins fall off") {
		t.Fatalf("list_issues: %v\n%s", err, out)
	}
	out2, logs2, err := runAll(t, "", "call", "create_issue", "--plugins", "../../plugins", "--grants", full, "--args", `{"repo":"acme/rockets","title":"Countdown skips 3"}`)
	if err != nil || !strings.Contains(out2, `"number": 8`) || len(*titles) != 1 {
		t.Fatalf("create_issue: %v\n%s", err, out2)
	}
	if all := out + logs + out2 + logs2; strings.Contains(all, token) {
		t.Errorf("the token appears in the output or the log")
	}

	// Refused: POST not granted, and nothing granted at all.
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"method not granted", []string{"--grants", grant(`["GET"]`)}, `"methods":["POST"]`},
		{"no grants file", nil, "--grants FILE"},
	} {
		args := append([]string{"call", "create_issue", "--plugins", "../../plugins", "--args", `{"repo":"acme/rockets","title":"x"}`}, c.args...)
		out, logs, err := runAll(t, "", args...)
		var res abi.CallResult
		json.Unmarshal([]byte(out), &res)
		if err == nil || !res.IsError || len(res.Content) == 0 || !strings.Contains(res.Content[0].Text, c.want) {
			t.Errorf("%s: %v: %s", c.name, err, out)
		}
		if strings.Contains(out+logs, token) {
			t.Errorf("%s: the token appears in the output or the log", c.name)
		}
	}
	if len(*titles) != 1 {
		t.Errorf("a refused request reached the tracker: %v", *titles)
	}
}

func TestNotesPluginDeletesAfterConfirmation(t *testing.T) {
	dir := t.TempDir()
	grants := writeGrants(t, fmt.Sprintf(`{"plugins": {"notes": {"dirs": [{"path": "/notes", "hostPath": %q, "write": true}]}}}`, dir))
	call := func(stdin, tool, args string, extra ...string) abi.CallResult {
		t.Helper()
		out, _, _ := runAll(t, stdin, append([]string{"call", tool, "--plugins", "../../plugins", "--args", args}, extra...)...)
		var res abi.CallResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Content) == 0 {
			t.Fatalf("%s: %q", tool, out)
		}
		return res
	}
	note := filepath.Join(dir, "shopping.md")
	if res := call("", "write_note", `{"name":"shopping","text":"milk"}`, "--grants", grants); res.IsError {
		t.Fatalf("write_note: %s", res.Content[0].Text)
	}
	if b, err := os.ReadFile(note); err != nil || string(b) != "milk" {
		t.Fatalf("the note on disk: %q %v", b, err)
	}
	// The user says no: kept.
	if res := call("a\nn\n", "delete_note", `{"name":"shopping"}`, "--grants", grants); res.Content[0].Text != "Kept shopping" {
		t.Errorf("declined: %+v", res.Content)
	}
	if _, err := os.Stat(note); err != nil {
		t.Fatalf("deleted without a yes: %v", err)
	}
	// No grant: refused with how to grant it, nothing deleted.
	if res := call("a\ny\n", "delete_note", `{"name":"shopping"}`); !res.IsError || !strings.Contains(res.Content[0].Text, `"dirs"`) {
		t.Errorf("without the grant: %+v", res.Content)
	}
	if _, err := os.Stat(note); err != nil {
		t.Fatalf("deleted without a grant: %v", err)
	}
	// The user says yes: gone for real.
	if res := call("a\ny\n", "delete_note", `{"name":"shopping"}`, "--grants", grants); res.Content[0].Text != "Deleted shopping" {
		t.Errorf("confirmed: %+v", res.Content)
	}
	if _, err := os.Stat(note); !os.IsNotExist(err) {
		t.Errorf("the note is still there: %v", err)
	}
}

// TestGrantedDeletion: confirm_delete deletes in the granted /files after
// a yes, keeps the file after a no, and without the grant says that it
// deleted nothing and how to grant the directory.
func TestGrantedDeletion(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	grants := writeGrants(t, fmt.Sprintf(`{"plugins": {"confirm": {"dirs": [{"path": "/files", "hostPath": %q, "write": true}]}}}`, dir))
	call := func(stdin string, extra ...string) string {
		t.Helper()
		out, _, _ := runAll(t, stdin, append([]string{"call", "confirm_delete", "--plugins", "../../plugins", "--args", `{"filename":"a.txt"}`}, extra...)...)
		var res abi.CallResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Content) != 1 || res.IsError {
			t.Fatalf("confirm_delete: %q", out)
		}
		return res.Content[0].Text
	}
	if got := call("a\nn\n", "--grants", grants); got != "Kept a.txt" {
		t.Errorf("declined: %q", got)
	}
	if got := call("a\ny\n"); !strings.HasPrefix(got, "Not deleted a.txt: ") || !strings.Contains(got, `"dirs"`) {
		t.Errorf("without the grant: %q", got)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("deleted without a yes and a grant: %v", err)
	}
	if got := call("a\ny\n", "--grants", grants); got != "Deleted a.txt" {
		t.Errorf("confirmed: %q", got)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the file is still there: %v", err)
	}
	if got := call("a\ny\n", "--grants", grants); got != "Not deleted a.txt: there is no such file in /files" {
		t.Errorf("again: %q", got)
	}
}

func TestInspectShowsDeclaredAndGranted(t *testing.T) {
	t.Setenv("WASMHOST_TEST_TRACKER_TOKEN", "tok-never-shown-0a9c")
	grants := writeGrants(t, `{"plugins": {"tracker": {
  "hosts": [{"host": "api.github.com", "methods": ["GET"]}],
  "secrets": {"token": {"env": "WASMHOST_TEST_TRACKER_TOKEN"}}}}}`)
	out, _, err := runAll(t, "", "inspect", "--json", "--grants", grants, "../../plugins/tracker")
	if err != nil {
		t.Fatal(err)
	}
	var desc struct {
		Needs []needView `json:"needs"`
	}
	if err := json.Unmarshal([]byte(out), &desc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range desc.Needs {
		got[n.Kind+" "+n.Name] = n.Granted
	}
	want := map[string]string{"host api.github.com": "GET https", "host 127.0.0.1": "no", "config base_url": "no", "secret token": "yes"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: granted %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	text, _, err := runAll(t, "", "inspect", "--grants", grants, "../../plugins/tracker")
	if err != nil || strings.Contains(out+text, "tok-never-shown") || !strings.Contains(text, "granted by "+grants) {
		t.Errorf("inspect: %v\n%s", err, text)
	}
}

func TestBadGrantsFileStopsServe(t *testing.T) {
	bad := writeGrants(t, "{\n  \"plugins\": {\n    \"tracker\": {\"hosts\": [{\"host\": \"API.github.com\"}]}}}")
	_, _, err := runAll(t, "", "serve", "--plugins", "../../plugins", "--grants", bad)
	if err == nil || !strings.Contains(err.Error(), bad+":3: plugins.tracker.hosts[0].host") {
		t.Fatalf("serve with a bad grants file: %v", err)
	}
	_, _, err = runAll(t, "", "worker", "--plugins", "../../plugins", "--grants", bad, "--redis", "redis://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), bad+":3") {
		t.Fatalf("worker with a bad grants file: %v", err)
	}
}

// TestNewHTTPTemplate: the http template builds, declares its host, is
// refused without a grant and granted by the example file it comes with.
// (Nothing here reaches the network: only loopback is allowed in tests.)
func TestNewHTTPTemplate(t *testing.T) {
	dir := filepath.Join("..", "..", "plugins", "_test_http_template_"+fmt.Sprint(os.Getpid()))
	// Inside the module, under an ignored name, so no go mod tidy is needed.
	t.Cleanup(func() { os.RemoveAll(dir) })
	if _, err := run(t, "", "new", "repo_info", "--dir", dir, "--template", "http"); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "repo_info")
	example := filepath.Join(plugin, "grants.example.json")
	out, _, err := runAll(t, "", "inspect", "--json", "--grants", example, plugin)
	if err != nil || !strings.Contains(out, `"granted": "GET https under /repos/"`) {
		t.Fatalf("inspect with the example grants: %v\n%s", err, out)
	}
	out, _, err = runAll(t, "", "call", "repo_info", "--plugins", dir, "--args", `{"repo":"golang/go"}`)
	if err == nil || !strings.Contains(out, "not granted") || !strings.Contains(out, "--grants FILE") {
		t.Fatalf("call without grants: %v\n%s", err, out)
	}
}
