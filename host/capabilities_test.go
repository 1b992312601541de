package host

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/grants"
)

// policy writes a grants file granting the capable test guest what plugin
// (a JSON object) says, and loads it.
func policy(t testing.TB, extra, plugin string) *grants.Policy {
	t.Helper()
	file := filepath.Join(t.TempDir(), "grants.json")
	body := `{` + extra + `"plugins": {"capable": ` + plugin + `}}`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := grants.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fetchOut struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Code   string `json:"code"`
	Err    string `json:"err"`
}

// call runs a tool of the capable guest and decodes its structured result.
func callCapable(t *testing.T, p *Plugin, tool string, args any, env Env, out any) {
	t.Helper()
	raw, _ := json.Marshal(args)
	res, err := p.Call(context.Background(), tool, raw, env)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %s", tool, res.Content[0].Text)
	}
	if err := json.Unmarshal(res.StructuredContent, out); err != nil {
		t.Fatalf("%s: %s: %v", tool, res.StructuredContent, err)
	}
}

func fetch(t *testing.T, p *Plugin, args map[string]any) fetchOut {
	t.Helper()
	var out fetchOut
	callCapable(t, p, "fetch", args, nil, &out)
	return out
}

func policyB(b *testing.B, plugin string) *grants.Policy { return policy(b, "", plugin) }

// loopbackForBench is loopback's URL and port.
func loopbackForBench(b *testing.B) (string, string) {
	srv, port := loopback(b)
	return srv.URL, port
}

// loopback is a test server on 127.0.0.1 with a few routes.
func loopback(t testing.TB) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s %s", r.Method, r.Header.Get("Authorization"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100)))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return srv, u.Port()
}

// TestHTTPGrants pairs each allowed request with the refused one next to it.
func TestHTTPGrants(t *testing.T) {
	srv, port := loopback(t)
	grant := fmt.Sprintf(`{"hosts": [
		{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true, "methods": ["GET", "POST"], "pathPrefix": "/", "maxResponseBytes": 50, "timeoutSeconds": 1},
		{"host": "localhost", "port": %s, "pathPrefix": "/hello"}
	]}`, port, port)
	r, _ := newRuntime(t, Options{Grants: policy(t, "", grant)})
	p := load(t, r, "capable")
	local := "https://localhost:" + port
	cases := []struct {
		name string
		args map[string]any
		// want is the body, or the code of the refusal
		want, code string
	}{
		{"granted GET", map[string]any{"url": srv.URL + "/hello", "header": map[string]string{"Authorization": "Bearer t"}}, "hello GET Bearer t", ""},
		{"granted POST", map[string]any{"method": "POST", "url": srv.URL + "/echo", "body": "posted"}, "posted", ""},
		{"method not granted", map[string]any{"method": "DELETE", "url": srv.URL + "/hello"}, "", abi.CapNotGranted},
		{"port not granted", map[string]any{"url": "http://127.0.0.1:1/hello"}, "", abi.CapNotGranted},
		{"undeclared host", map[string]any{"url": "http://127.0.0.3:" + port + "/hello"}, "", abi.CapNotDeclared},
		{"private address without private", map[string]any{"url": local + "/hello"}, "", abi.CapRefused},
		{"redirect to granted", map[string]any{"url": srv.URL + "/redirect?to=/hello"}, "hello GET ", ""},
		{"redirect to ungranted path", map[string]any{"url": srv.URL + "/redirect?to=" + url.QueryEscape(local+"/big")}, "", abi.CapNotGranted},
		{"redirect to undeclared host", map[string]any{"url": srv.URL + "/redirect?to=" + url.QueryEscape("http://127.0.0.3:"+port+"/hello")}, "", abi.CapNotDeclared},
		{"response over the limit", map[string]any{"url": srv.URL + "/big"}, "", abi.CapRefused},
		{"timeout", map[string]any{"url": srv.URL + "/hang"}, "", abi.CapRefused},
		{"https only by default", map[string]any{"url": "http://localhost:" + port + "/hello"}, "", abi.CapNotGranted},
		{"credentials in the URL", map[string]any{"url": "http://u:p@127.0.0.1:" + port + "/hello"}, "", abi.CapBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := fetch(t, p, c.args)
			if out.Code != c.code {
				t.Fatalf("code %q (%s), want %q", out.Code, out.Err, c.code)
			}
			if c.code == "" && (out.Status != 200 || out.Body != c.want) {
				t.Errorf("got %d %q, want 200 %q", out.Status, out.Body, c.want)
			}
			if c.code == abi.CapNotGranted && !strings.Contains(out.Err, "grants.json") {
				t.Errorf("the refusal does not say which file to edit: %s", out.Err)
			}
		})
	}
}

func TestHTTPNothingGrantedWithoutAFile(t *testing.T) {
	srv, _ := loopback(t)
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "capable")
	out := fetch(t, p, map[string]any{"url": srv.URL + "/hello"})
	if out.Code != abi.CapNotGranted || !strings.Contains(out.Err, "--grants FILE") {
		t.Fatalf("got %+v, want not_granted saying how to pass --grants", out)
	}
	// The description says what the plugin needs and that it is not granted.
	d := p.Tools()[0].Description
	if !strings.Contains(d, "HTTP to 127.0.0.1 (not granted)") || !strings.Contains(d, "secret token (not granted)") {
		t.Errorf("description %q does not show the needs", d)
	}
}

func TestHTTPSVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls ok") }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	pol := policy(t, "", fmt.Sprintf(`{"hosts": [{"host": "127.0.0.1", "port": %s, "private": true}]}`, u.Port()))
	// Unknown certificate authority: refused by verification.
	r, _ := newRuntime(t, Options{Grants: pol})
	if out := fetch(t, load(t, r, "capable"), map[string]any{"url": srv.URL}); out.Code != abi.CapFailed || !strings.Contains(out.Err, "certificate") {
		t.Errorf("untrusted certificate: %+v", out)
	}
	// Trusted: allowed.
	r2, _ := newRuntime(t, Options{Grants: pol, HTTPRootCAs: poolOf(srv)})
	if out := fetch(t, load(t, r2, "capable"), map[string]any{"url": srv.URL}); out.Code != "" || out.Body != "tls ok" {
		t.Errorf("trusted certificate: %+v", out)
	}
}

func poolOf(srv *httptest.Server) *x509.CertPool {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

func TestGrantBeyondDeclarationRefusesLoad(t *testing.T) {
	r, _ := newRuntime(t, Options{Grants: policy(t, "", `{"hosts": [{"host": "api.github.com"}]}`)})
	_, err := r.Load(context.Background(), guest(t, "capable"))
	if !errors.Is(err, ErrInvalidPlugin) || !strings.Contains(err.Error(), "grants.json:1") || !strings.Contains(err.Error(), "plugins.capable.hosts[0].host") {
		t.Fatalf("Load: %v, want a refusal naming file, line and key", err)
	}
}

func TestConfigAndSecretGrants(t *testing.T) {
	t.Setenv("WASMHOST_TEST_CAPABLE_TOKEN", "tok-3f9a1c77e2")
	r, logs := newRuntime(t, Options{Grants: policy(t, "", `{
		"config": {"greeting": {"value": "ahoy"}},
		"secrets": {"token": {"env": "WASMHOST_TEST_CAPABLE_TOKEN"}}}`)})
	p := load(t, r, "capable")
	var v struct{ Value, Code, Err string }
	callCapable(t, p, "config", map[string]string{"key": "greeting"}, nil, &v)
	if v.Value != "ahoy" {
		t.Errorf("config: %+v", v)
	}
	callCapable(t, p, "config", map[string]string{"key": "colour"}, nil, &v)
	if v.Code != abi.CapNotDeclared {
		t.Errorf("undeclared config: %+v", v)
	}
	callCapable(t, p, "secret_len", map[string]string{"key": "token"}, nil, &v)
	if v.Value != "14" {
		t.Errorf("secret: %+v", v)
	}

	// A plugin that leaks its secret everywhere it can: the host scrubs it.
	env := &testEnv{}
	res, err := p.Call(context.Background(), "leak", json.RawMessage(`{"key":"token"}`), env)
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := json.Marshal(res)
	env.mu.Lock()
	everything := logs.String() + string(seen) + strings.Join(env.logs, "\n") + fmt.Sprint(env.progress)
	env.mu.Unlock()
	if strings.Contains(everything, "tok-3f9a1c77e2") {
		t.Errorf("the secret leaked:\n%s", everything)
	}
	if !strings.Contains(string(seen), "[secret redacted]") || !strings.Contains(logs.String(), "stderr [secret redacted]") {
		t.Errorf("the leak did not reach the result and the log (redacted), so this test proves nothing:\n%s", everything)
	}

	// A guest that traps with the secret in its panic: the error (which
	// becomes a task's failure message) is scrubbed too.
	_, err = p.Call(context.Background(), "leak_panic", json.RawMessage(`{"key":"token"}`), nil)
	if err == nil || strings.Contains(err.Error()+logs.String(), "tok-3f9a1c77e2") || !strings.Contains(err.Error(), "[secret redacted]") {
		t.Errorf("trap: %v", err)
	}

	// Not granted: the refusal names the secret, and how to grant it.
	r2, _ := newRuntime(t, Options{})
	callCapable(t, load(t, r2, "capable"), "secret_len", map[string]string{"key": "token"}, nil, &v)
	if v.Code != abi.CapNotGranted || !strings.Contains(v.Err, `"secrets"`) {
		t.Errorf("ungranted secret: %+v", v)
	}
}

func TestDirGrants(t *testing.T) {
	root := t.TempDir()
	data, ro, outside := filepath.Join(root, "data"), filepath.Join(root, "ro"), filepath.Join(root, "outside")
	for _, d := range []string{data, ro, outside, filepath.Join(data, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(data, "a.txt"), "note a")
	write(filepath.Join(ro, "ref.txt"), "reference")
	write(filepath.Join(outside, "secret.txt"), "outside the grant")
	write(filepath.Join(data, "sub", "in.txt"), "inside")
	// Symlinks already on the host: one that leads out, one that stays in.
	if err := os.Symlink(outside, filepath.Join(data, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(data, "out.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(data, "in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "new.txt"), filepath.Join(data, "dangling")); err != nil {
		t.Fatal(err)
	}
	pol := policy(t, "", fmt.Sprintf(`{"dirs": [
		{"path": "/data", "hostPath": %q, "write": true},
		{"path": "/ro", "hostPath": %q}]}`, data, ro))
	r, _ := newRuntime(t, Options{Grants: pol})
	p := load(t, r, "capable")
	type out struct{ Value, Code, Err string }
	cases := []struct {
		name string
		args map[string]string
		want string // the value, or "error"
	}{
		{"read granted", map[string]string{"op": "read", "path": "/data/a.txt"}, "note a"},
		{"read read-only", map[string]string{"op": "read", "path": "/ro/ref.txt"}, "reference"},
		{"write read-write", map[string]string{"op": "write", "path": "/data/b.txt", "data": "new"}, ""},
		{"write read-only", map[string]string{"op": "write", "path": "/ro/b.txt", "data": "new"}, "error"},
		{"delete read-only", map[string]string{"op": "delete", "path": "/ro/ref.txt"}, "error"},
		{"dot-dot out", map[string]string{"op": "read", "path": "/data/../outside/secret.txt"}, "error"},
		{"symlinked dir out", map[string]string{"op": "read", "path": "/data/out/secret.txt"}, "error"},
		{"symlinked file out", map[string]string{"op": "read", "path": "/data/out.txt"}, "error"},
		{"write through a dangling symlink", map[string]string{"op": "write", "path": "/data/dangling", "data": "x"}, "error"},
		{"list through a symlink out", map[string]string{"op": "list", "path": "/data/out"}, "error"},
		{"symlink inside", map[string]string{"op": "read", "path": "/data/in/in.txt"}, "inside"},
		{"guest makes a symlink", map[string]string{"op": "symlink", "path": "/data/mine", "data": "../outside"}, "error"},
		{"ungranted path", map[string]string{"op": "read", "path": "/etc/passwd"}, "error"},
		{"delete granted", map[string]string{"op": "delete", "path": "/data/a.txt"}, ""},
		{"dir granted", map[string]string{"op": "dir", "path": "/data"}, "true"},
		{"dir read-only", map[string]string{"op": "dir", "path": "/ro"}, "false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var o out
			callCapable(t, p, "files", c.args, nil, &o)
			if c.want == "error" {
				if o.Err == "" {
					t.Fatalf("allowed: %+v", o)
				}
				return
			}
			if o.Err != "" || o.Value != c.want {
				t.Fatalf("got %+v, want %q", o, c.want)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(data, "b.txt")); err != nil || string(b) != "new" {
		t.Errorf("the write did not reach the host: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(data, "a.txt")); !os.IsNotExist(err) {
		t.Errorf("the delete did not reach the host: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("a write through a dangling symlink escaped: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret.txt")); string(b) != "outside the grant" {
		t.Errorf("the file outside changed: %q", b)
	}

	// Without the grant the directory is not there, and Dir says how to
	// grant it.
	r2, _ := newRuntime(t, Options{})
	var o out
	callCapable(t, load(t, r2, "capable"), "files", map[string]string{"op": "dir", "path": "/data"}, nil, &o)
	if o.Code != abi.CapNotGranted || !strings.Contains(o.Err, `"dirs"`) {
		t.Errorf("ungranted dir: %+v", o)
	}
	callCapable(t, load(t, r2, "capable"), "files", map[string]string{"op": "read", "path": "/data/b.txt"}, nil, &o)
	if o.Err == "" {
		t.Errorf("read an ungranted dir: %+v", o)
	}
}

// TestAskThePerson: a declared, ungranted host, with asking on, is asked
// of the person through the Env; their answer decides.
func TestAskThePerson(t *testing.T) {
	const target = "https://localhost/hello" // declared, not granted
	cases := []struct {
		name   string
		answer *abi.InputResponse
		code   string // of the request's outcome
		asked  int
	}{
		// "once" passes the grant; the dial then refuses loopback, which
		// proves the grant step let it through.
		{"once", &abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"decision":"once"}}`)}, abi.CapRefused, 1},
		{"deny", &abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"decision":"deny"}}`)}, abi.CapNotGranted, 1},
		{"decline", &abi.InputResponse{Result: json.RawMessage(`{"action":"decline"}`)}, abi.CapNotGranted, 1},
		{"client cannot elicit", &abi.InputResponse{Error: &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "no"}}, abi.CapNotGranted, 1},
		{"always", &abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"decision":"always"}}`)}, abi.CapRefused, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := policy(t, `"ask": true, `, `{}`)
			r, _ := newRuntime(t, Options{Grants: pol})
			p := load(t, r, "capable")
			var questions []string
			env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
				questions = append(questions, string(reqs[0].Params))
				return []abi.InputResponse{*c.answer}, nil
			}}
			var out fetchOut
			callCapable(t, p, "fetch", map[string]any{"url": target}, env, &out)
			if out.Code != c.code || len(questions) != c.asked {
				t.Fatalf("code %q (%s) after %d questions, want %q after %d", out.Code, out.Err, len(questions), c.code, c.asked)
			}
			if !strings.Contains(questions[0], "capable") || !strings.Contains(questions[0], "localhost") {
				t.Errorf("the question does not name plugin and host: %s", questions[0])
			}
			// A second call: only "always" is not asked again.
			questions = nil
			callCapable(t, p, "fetch", map[string]any{"url": target}, env, &out)
			if again := len(questions); (c.name == "always") != (again == 0) {
				t.Errorf("asked %d times on the second call", again)
			}
			b, err := os.ReadFile(pol.RememberFile())
			if c.name == "always" != (err == nil && strings.Contains(string(b), `"localhost"`)) {
				t.Errorf("remembered file: %q, %v", b, err)
			}
		})
	}
	// Undeclared hosts are never asked about; nor are hosts without ask on.
	for _, extra := range []string{`"ask": true, `, ``} {
		r, _ := newRuntime(t, Options{Grants: policy(t, extra, `{}`)})
		env := &testEnv{input: func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error) {
			t.Error("asked")
			return nil, errors.New("asked")
		}}
		var out fetchOut
		callCapable(t, load(t, r, "capable"), "fetch", map[string]any{"url": "https://example.com/"}, env, &out)
		if out.Code != abi.CapNotDeclared {
			t.Errorf("undeclared host: %+v", out)
		}
		if extra == "" {
			callCapable(t, load(t, r, "capable"), "fetch", map[string]any{"url": target}, env, &out)
			if out.Code != abi.CapNotGranted {
				t.Errorf("ask off: %+v", out)
			}
		}
	}
}

// TestAskThePersonForADirectory: a declared, ungranted directory, with
// asking on, is asked of the person when the plugin reaches for it
// (Call.Dir); a yes mounts the plugin's own directory under askDirsRoot,
// for the call ("once") or from then on ("always", remembered in the file
// the operator edits); anything else leaves nothing mounted.
func TestAskThePersonForADirectory(t *testing.T) {
	accept := func(decision string) *abi.InputResponse {
		return &abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"decision":"` + decision + `"}}`)}
	}
	cases := []struct {
		name    string
		extra   string // grants file keys before "plugins"
		answer  *abi.InputResponse
		code    string // of the dir request
		asked   int
		mounted bool // the file was written, under askDirsRoot
	}{
		{"once", `"ask": true, `, accept("once"), "", 1, true},
		{"always", `"ask": true, `, accept("always"), "", 1, true},
		{"deny", `"ask": true, `, accept("deny"), abi.CapNotGranted, 1, false},
		{"decline", `"ask": true, `, &abi.InputResponse{Result: json.RawMessage(`{"action":"decline"}`)}, abi.CapNotGranted, 1, false},
		{"client cannot elicit", `"ask": true, `, &abi.InputResponse{Error: &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "no"}}, abi.CapNotGranted, 1, false},
		{"ask off", ``, accept("always"), abi.CapNotGranted, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			rootJSON, _ := json.Marshal(root)
			pol := policy(t, c.extra+`"askDirsRoot": `+string(rootJSON)+`, `, `{}`)
			r, _ := newRuntime(t, Options{Grants: pol})
			p := load(t, r, "capable")
			var questions []string
			env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
				questions = append(questions, string(reqs[0].Params))
				return []abi.InputResponse{*c.answer}, nil
			}}
			var out struct{ Value, Code, Err string }
			callCapable(t, p, "files", map[string]any{"op": "dirwrite", "path": "/data", "data": "hello"}, env, &out)
			if out.Code != c.code || len(questions) != c.asked {
				t.Fatalf("code %q (%s) after %d questions, want %q after %d", out.Code, out.Err, len(questions), c.code, c.asked)
			}
			hostDir := filepath.Join(root, "capable", "data")
			b, err := os.ReadFile(filepath.Join(hostDir, "asked.txt"))
			if c.mounted != (err == nil && string(b) == "hello") {
				t.Fatalf("asked.txt: %q, %v (the call said %+v)", b, err, out)
			}
			if c.asked > 0 && (!strings.Contains(questions[0], "capable") || !strings.Contains(questions[0], "/data read-write") ||
				!strings.Contains(questions[0], hostDir)) {
				t.Errorf("the question does not name plugin, directory, mode and place: %s", questions[0])
			}
			// The next call writes without asking first: only after
			// "always" is the directory mounted for it.
			questions = nil
			callCapable(t, p, "files", map[string]any{"op": "write", "path": "/data/next.txt", "data": "x"}, env, &out)
			_, err = os.Stat(filepath.Join(hostDir, "next.txt"))
			if (c.name == "always") != (err == nil && out.Err == "") || len(questions) != 0 {
				t.Errorf("second call: %+v, %v, asked %d", out, err, len(questions))
			}
			// The remembered answer survives a restart: the operator's file.
			again, err := grants.Load(pol.File())
			if err != nil {
				t.Fatal(err)
			}
			g, err := again.For("capable", p.Needs())
			if err != nil {
				t.Fatal(err)
			}
			if remembered := len(g.Dirs()) == 1 && g.Dirs()[0].HostPath == hostDir && g.Dirs()[0].Write; remembered != (c.name == "always") {
				t.Errorf("after a restart the grant holds %+v", g.Dirs())
			}
		})
	}
}
