package mcpserver_test

import (
	"context"
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

	"github.com/hashicorp/go-hclog"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/grants"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/worker"
)

// TestEveryGrantAllowedAndRefused runs, through the real front end, each
// kind of grant (host, dir, config, secret) once granted and once not,
// over stdio and HTTP, with the embedded store and Redis: the example
// plugins tracker (HTTP to a loopback tracker, its base_url, its token)
// and notes (a directory). Each refusal is the only thing missing from
// its grants file, so it alone explains the outcome.
func TestEveryGrantAllowedAndRefused(t *testing.T) {
	const token = "tok-grant-matrix-5e1d"
	t.Setenv("WASMHOST_TEST_MATRIX_TOKEN", token)
	var reached sync.Map // paths the tracker saw, with a good token
	tracker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
			return
		}
		reached.Store(r.URL.Path, true)
		fmt.Fprint(w, `[{"number":7,"title":"granted","state":"open"}]`)
	}))
	defer tracker.Close()
	u, _ := url.Parse(tracker.URL)
	host127 := fmt.Sprintf(`{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true}`, u.Port())
	config := fmt.Sprintf(`"config": {"base_url": {"value": %q}}`, tracker.URL)
	secret := `"secrets": {"token": {"env": "WASMHOST_TEST_MATRIX_TOKEN"}}`
	notesDir := t.TempDir()
	dirs := fmt.Sprintf(`"dirs": [{"path": "/notes", "hostPath": %q, "write": true}]`, notesDir)

	policies := map[string]string{
		"all":       `{"tracker": {"hosts": [` + host127 + `], ` + config + `, ` + secret + `}, "notes": {` + dirs + `}}`,
		"no host":   `{"tracker": {` + config + `, ` + secret + `}}`,
		"no config": `{"tracker": {"hosts": [` + host127 + `], ` + secret + `}}`,
		"no secret": `{"tracker": {"hosts": [` + host127 + `], ` + config + `}}`,
	}
	list := func(repo string) map[string]any { return map[string]any{"repo": repo} }
	cases := []struct {
		kind, policy, tool string
		args               map[string]any
		isError            bool
		want               string // in the result's text
		check              func(t *testing.T)
	}{
		{"host", "all", "list_issues", list("acme/host"), false, `granted`, nil},
		{"host", "no host", "list_issues", list("acme/host"), true, `"hosts"`, nil},
		{"config", "all", "list_issues", list("acme/config"), false, `granted`, func(t *testing.T) {
			if _, ok := reached.Load("/repos/acme/config/issues"); !ok {
				t.Error("the granted base_url was not used")
			}
		}},
		{"config", "no config", "list_issues", list("acme/config"), true, `api.github.com`, nil}, // the default base, not granted
		{"secret", "all", "list_issues", list("acme/secret"), false, `granted`, nil},
		{"secret", "no secret", "list_issues", list("acme/secret"), true, `401 Bad credentials`, nil},
		{"dir", "all", "write_note", map[string]any{"name": "matrix", "text": "kept"}, false, `Saved matrix`, func(t *testing.T) {
			if b, err := os.ReadFile(filepath.Join(notesDir, "matrix.md")); err != nil || string(b) != "kept" {
				t.Errorf("the note on disk: %q, %v", b, err)
			}
		}},
		{"dir", "no host", "write_note", map[string]any{"name": "refused", "text": "x"}, true, `"dirs"`, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(notesDir, "refused.md")); !os.IsNotExist(err) {
				t.Errorf("a refused note reached the disk: %v", err)
			}
		}},
	}

	catalogs := map[string]*host.Catalog{}
	for name, plugins := range policies {
		catalogs[name] = grantedCatalog(t, `{"plugins": `+plugins+`}`)
	}
	pairs := map[string]int{}
	for _, store := range []string{"memory", "redis"} {
		for _, transport := range []string{"stdio", "http"} {
			for _, c := range cases {
				outcome := "allowed"
				if c.isError {
					outcome = "refused"
				}
				t.Run(strings.Join([]string{store, transport, c.kind, outcome}, "/"), func(t *testing.T) {
					call := frontEnd(t, catalogs[c.policy], store, transport)
					text, isError := call(c.tool, c.args)
					if isError != c.isError || !strings.Contains(text, c.want) {
						t.Fatalf("%s: isError %v, %q; want isError %v and %q", c.tool, isError, text, c.isError, c.want)
					}
					if strings.Contains(text, token) {
						t.Errorf("the secret reached the client: %q", text)
					}
					if c.check != nil {
						c.check(t)
					}
					if !t.Failed() {
						pairs[outcome]++
					}
				})
			}
		}
	}
	t.Logf("allowed/refused results passing: %d/%d", pairs["allowed"], pairs["refused"])
}

// grantedCatalog loads the example plugins tracker and notes under the
// grants file body.
func grantedCatalog(t *testing.T, body string) *host.Catalog {
	t.Helper()
	file := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := grants.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyPlugin(t, "tracker", dir)
	copyPlugin(t, "notes", dir)
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
	rt, err := host.New(context.Background(), host.Options{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-cache", "compile"), Logger: logger, Grants: pol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	cat, err := host.OpenCatalog(context.Background(), rt, dir, host.CatalogOptions{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// frontEnd serves cat with a worker over the store and transport named,
// and returns a function making one tools/call through it.
func frontEnd(t *testing.T, cat *host.Catalog, storeName, transport string) func(tool string, args map[string]any) (string, bool) {
	t.Helper()
	store := storeFor(t, storeName)
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn, Name: t.Name()})
	srv, err := mcpserver.New(mcpserver.Options{Catalog: cat, Store: store, Logger: logger, StateKey: testStateKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	w := worker.New(worker.Options{Store: store, Tools: cat, Logger: logger, Concurrency: 2})
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	if transport == "http" {
		hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{}))
		t.Cleanup(hs.Close)
		client, err := mcp.NewClient(&mcp.Implementation{Name: "matrix", Version: "0"}, nil).
			Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		return func(tool string, args map[string]any) (string, bool) {
			res, err := client.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
			if err != nil {
				t.Fatalf("%s: %v", tool, err)
			}
			var parts []string
			for _, c := range res.Content {
				if tc, ok := c.(*mcp.TextContent); ok {
					parts = append(parts, tc.Text)
				}
			}
			return strings.Join(parts, "\n"), res.IsError
		}
	}
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	wg.Go(func() {
		_ = srv.ServeStdio(ctx, serverR, serverW)
		serverW.Close()
	})
	t.Cleanup(func() { clientW.Close() })
	c := newWireClient(t, clientR, clientW)
	c.initialize("2025-11-25", nil)
	return func(tool string, args map[string]any) (string, bool) {
		var res toolResult
		c.result("tools/call", map[string]any{"name": tool, "arguments": args}, &res)
		return res.text(), res.IsError
	}
}
