package grants

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

// writeFile writes a grants file into a fresh directory and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

var trackerNeeds = abi.Needs{
	Hosts:   []abi.HostNeed{{Host: "api.example.com"}, {Host: "127.0.0.1"}},
	Dirs:    []abi.DirNeed{{Path: "/notes", Write: true}, {Path: "/ro"}},
	Config:  []abi.ConfigNeed{{Key: "base_url"}},
	Secrets: []abi.SecretNeed{{Name: "token"}},
}

func TestLoadErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, body string
		line       int
		key        string
	}{
		{"syntax", "{\n  \"plugins\": {\n    \"x\": [}\n}", 3, ""},
		{"unknown top key", "{\n  \"plugin\": {}\n}", 2, "plugin"},
		{"unknown plugin key", "{\"plugins\": {\n \"t\": {\n  \"host\": []\n }}}", 3, "plugins.t.host"},
		{"bad host", "{\"plugins\": {\"t\": {\"hosts\": [\n {\"host\": \"https://x.com\"}]}}}", 2, "plugins.t.hosts[0].host"},
		{"bad method", "{\"plugins\": {\"t\": {\"hosts\": [{\"host\": \"x.com\",\n \"methods\": [\n \"FETCH\"]}]}}}", 3, "plugins.t.hosts[0].methods[0]"},
		{"bad port", "{\"plugins\": {\"t\": {\"hosts\": [{\"host\": \"x.com\",\n\n \"port\": 70000}]}}}", 3, "plugins.t.hosts[0].port"},
		{"value and env", "{\"plugins\": {\"t\": {\"secrets\": {\n \"token\": {\"value\": \"a\", \"env\": \"B\"}}}}}", 2, "plugins.t.secrets.token"},
		{"missing dir", "{\"plugins\": {\"t\": {\"dirs\": [{\"path\": \"/n\",\n \"hostPath\": \"/does/not/exist\"}]}}}", 2, "plugins.t.dirs[0].hostPath"},
		{"relative guest path", "{\"plugins\": {\"t\": {\"dirs\": [{\n\"path\": \"notes\", \"hostPath\": \".\"}]}}}", 2, "plugins.t.dirs[0].path"},
		{"duplicate key", "{\"ask\": true,\n \"ask\": false}", 2, "ask"},
		{"wrong type", "{\n\"ask\": \"yes\"}", 2, "ask"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, c.body)
			_, err := Load(file)
			if err == nil {
				t.Fatal("loaded a bad file")
			}
			var fe *fileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a file error", err)
			}
			if fe.file != file || fe.line != c.line || fe.key != c.key {
				t.Errorf("error at %s:%d key %q, want %s:%d key %q (%v)", fe.file, fe.line, fe.key, file, c.line, c.key, err)
			}
		})
	}
}

func TestGrantNeverExceedsDeclaration(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, plugin string
		line         int
		key          string
	}{
		{"undeclared host", `{"hosts": [{"host": "evil.example.com"}]}`, 1, "plugins.tracker.hosts[0].host"},
		{"undeclared dir", `{"dirs": [{"path": "/etc", "hostPath": "` + dir + `"}]}`, 1, "plugins.tracker.dirs[0].path"},
		{"write on a read-only dir", `{"dirs": [{"path": "/ro", "hostPath": "` + dir + `", "write": true}]}`, 1, "plugins.tracker.dirs[0].write"},
		{"undeclared config", `{"config": {"other": {"value": "x"}}}`, 1, "plugins.tracker.config.other"},
		{"undeclared secret", `{"secrets": {"password": {"value": "x"}}}`, 1, "plugins.tracker.secrets.password"},
		{"unset env", `{"secrets": {"token": {"env": "WASMHOST_TEST_UNSET_VARIABLE"}}}`, 1, "plugins.tracker.secrets.token.env"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Load(writeFile(t, `{"plugins": {"tracker": `+c.plugin+`}}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.For("tracker", trackerNeeds)
			var fe *fileError
			if !errors.As(err, &fe) || fe.line != c.line || fe.key != c.key {
				t.Fatalf("For: %v, want an error at line %d key %s", err, c.line, c.key)
			}
			// The same grant for a plugin that declares everything is fine.
			if _, err := p.For("other", trackerNeeds); err != nil {
				t.Errorf("a plugin the file does not name: %v", err)
			}
		})
	}
}

func TestCheckHTTP(t *testing.T) {
	p, err := Load(writeFile(t, `{"plugins": {"tracker": {"hosts": [
		{"host": "api.example.com", "pathPrefix": "/repos/", "methods": ["GET", "POST"]},
		{"host": "127.0.0.1", "port": 8080, "plainHTTP": true, "private": true}
	]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.For("tracker", trackerNeeds)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, url string
		code        string // "" for allowed
	}{
		{"GET", "https://api.example.com/repos/a/issues", ""},
		{"POST", "https://API.example.com/repos/a/issues", ""},
		{"GET", "https://api.example.com:443/repos/a", ""},
		{"DELETE", "https://api.example.com/repos/a", abi.CapNotGranted},
		{"GET", "https://api.example.com/admin", abi.CapNotGranted},
		{"GET", "https://api.example.com/repos/../admin", abi.CapNotGranted},
		{"GET", "https://api.example.com/repos/%2e%2e/admin", abi.CapNotGranted},
		{"GET", "http://api.example.com/repos/a", abi.CapNotGranted},
		{"GET", "https://api.example.com:8443/repos/a", abi.CapNotGranted},
		{"GET", "http://127.0.0.1:8080/x", ""},
		{"GET", "http://127.0.0.1:8081/x", abi.CapNotGranted},
		{"GET", "https://evil.example.com/", abi.CapNotDeclared},
	}
	for _, c := range cases {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.CheckHTTP(c.method, u)
		var ge *Error
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s %s refused: %v", c.method, c.url, err)
		case c.code != "" && (!errors.As(err, &ge) || ge.Code != c.code):
			t.Errorf("%s %s: %v, want code %s", c.method, c.url, err, c.code)
		case c.code == abi.CapNotGranted && !strings.Contains(ge.Message, p.File()):
			t.Errorf("%s %s: the error does not say which file to edit: %v", c.method, c.url, err)
		}
	}
}

func TestMissingGrantSaysHowToAddIt(t *testing.T) {
	g, err := (*Policy)(nil).For("tracker", trackerNeeds)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://api.example.com/x")
	_, err = g.CheckHTTP("GET", u)
	var ge *Error
	if !errors.As(err, &ge) || ge.Code != abi.CapNotGranted {
		t.Fatalf("no grants file: %v", err)
	}
	// The message holds a grants file that allows the request: use it.
	i := strings.Index(ge.Message, "{")
	if i < 0 {
		t.Fatalf("no JSON in %q", ge.Message)
	}
	p, err := Load(writeFile(t, ge.Message[i:]))
	if err != nil {
		t.Fatalf("the suggested grants file does not load: %v", err)
	}
	g, err = p.For("tracker", trackerNeeds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.CheckHTTP("GET", u); err != nil {
		t.Errorf("the suggested grant does not allow the request: %v", err)
	}
}

func TestConfigAndSecrets(t *testing.T) {
	t.Setenv("WASMHOST_TEST_TOKEN", "s3cr3t-value")
	p, err := Load(writeFile(t, `{"plugins": {"tracker": {
		"config": {"base_url": {"value": "https://api.example.com"}},
		"secrets": {"token": {"env": "WASMHOST_TEST_TOKEN"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.For("tracker", trackerNeeds)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := g.Config("base_url"); err != nil || v != "https://api.example.com" {
		t.Errorf("Config = %q, %v", v, err)
	}
	if v, err := g.Secret("token"); err != nil || v != "s3cr3t-value" {
		t.Errorf("Secret = %q, %v", v, err)
	}
	// The same plugin under another name gets nothing.
	other, err := p.For("other", trackerNeeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []error{second(other.Secret("token")), second(other.Config("base_url"))} {
		var ge *Error
		if !errors.As(e, &ge) || ge.Code != abi.CapNotGranted {
			t.Errorf("ungranted: %v", e)
		}
		if strings.Contains(e.Error(), "s3cr3t-value") {
			t.Errorf("the error holds the secret: %v", e)
		}
	}
	var ge *Error
	if !errors.As(second(g.Secret("password")), &ge) || ge.Code != abi.CapNotDeclared {
		t.Errorf("undeclared secret: %v", ge)
	}
}

func second(_ string, err error) error { return err }

func TestRememberedAnswers(t *testing.T) {
	file := writeFile(t, `{"ask": true}`)
	p, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://api.example.com/x")
	g, _ := p.For("tracker", trackerNeeds)
	if _, err := g.CheckHTTP("GET", u); err == nil || !g.CanAsk("api.example.com") || g.CanAsk("evil.example.com") {
		t.Fatalf("before: %v, can ask %v", err, g.CanAsk("api.example.com"))
	}
	if err := p.Remember("tracker", "api.example.com", "GET"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CheckHTTP("GET", u); err != nil {
		t.Errorf("after always: %v", err)
	}
	if _, err := g.CheckHTTP("POST", u); err == nil {
		t.Error("always for GET allowed POST")
	}
	// A fresh start reads the remembered file back.
	p2, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := p2.For("tracker", trackerNeeds)
	if _, err := g2.CheckHTTP("GET", u); err != nil {
		t.Errorf("after a restart: %v", err)
	}
	// An edited remembered file with a private grant is refused.
	if err := os.WriteFile(p.RememberFile(), []byte(`{"plugins": {"tracker": {"hosts": [{"host": "api.example.com", "private": true}]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file); err == nil {
		t.Error("a remembered private grant loaded")
	}
}

func TestCheckNeeds(t *testing.T) {
	for _, n := range []abi.Needs{
		{Hosts: []abi.HostNeed{{Host: "API.example.com"}}},
		{Hosts: []abi.HostNeed{{Host: "a.com"}, {Host: "a.com"}}},
		{Dirs: []abi.DirNeed{{Path: "notes"}}},
		{Dirs: []abi.DirNeed{{Path: "/a/../b"}}},
		{Secrets: []abi.SecretNeed{{Name: ""}}},
	} {
		if CheckNeeds(n) == nil {
			t.Errorf("accepted %+v", n)
		}
	}
	if err := CheckNeeds(trackerNeeds); err != nil {
		t.Error(err)
	}
}

// TestRememberedDirectories: a person's "always" for a directory is the
// plugin's own under askDirsRoot, granted from then on and after a
// restart, never wider than declared, and only for a declared path.
func TestRememberedDirectories(t *testing.T) {
	file := writeFile(t, `{"ask": true, "askDirsRoot": "data"}`)
	p, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := p.For("tracker", trackerNeeds)
	if !g.CanAskDir("/notes") || g.CanAskDir("/elsewhere") {
		t.Fatalf("can ask: /notes %v, /elsewhere %v", g.CanAskDir("/notes"), g.CanAskDir("/elsewhere"))
	}
	d := g.AskedDir("/notes")
	if want := filepath.Join(filepath.Dir(file), "data", "tracker", "notes"); d.HostPath != want || !d.Write || d.Path != "/notes" {
		t.Fatalf("asked dir %+v, want %s read-write", d, want)
	}
	if ro := g.AskedDir("/ro"); ro.Write {
		t.Errorf("/ro is declared read-only, asked for %+v", ro)
	}
	if err := os.MkdirAll(d.HostPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := g.RememberDir(d); err != nil {
		t.Fatal(err)
	}
	if got, err := g.Dir("/notes"); err != nil || got.HostPath != d.HostPath || g.CanAskDir("/notes") {
		t.Errorf("after always: %+v, %v, can ask %v", got, err, g.CanAskDir("/notes"))
	}
	// A restart reads it back; an edit cannot widen it: read-write on a
	// read-only declaration stays read-only, an undeclared path is ignored.
	if err := os.WriteFile(p.RememberFile(), []byte(`{"plugins": {"tracker": {"dirs": [
		{"path": "/notes", "hostPath": "data/tracker/notes", "write": true},
		{"path": "/ro", "hostPath": "data/tracker/notes", "write": true},
		{"path": "/undeclared", "hostPath": "data/tracker/notes"}]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p2, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := p2.For("tracker", trackerNeeds)
	byPath := map[string]DirGrant{}
	for _, d := range g2.Dirs() {
		byPath[d.Path] = d
	}
	if len(byPath) != 2 || !byPath["/notes"].Write || byPath["/ro"].Write || byPath["/ro"].Path == "" {
		t.Errorf("after a restart: %+v", g2.Dirs())
	}
}
