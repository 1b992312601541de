package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

func TestPromptsAndResources(t *testing.T) {
	r, _ := newRuntime(t, Options{CallTimeout: 5 * time.Second})
	p := load(t, r, "promptres")
	ctx := context.Background()

	if len(p.Tools()) != 0 || len(p.Prompts()) != 6 || p.Prompts()[0].Name != "hello" ||
		len(p.Resources()) != 1 || len(p.ResourceTemplates()) != 1 {
		t.Fatalf("described %v %v %v %v", p.Tools(), p.Prompts(), p.Resources(), p.ResourceTemplates())
	}

	env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"topic":"wasm"}}`)}}, nil
	}}
	res, err := p.GetPrompt(ctx, "hello", json.RawMessage(`{"name":"Ann"}`), env)
	if err != nil || len(res.Messages) != 1 || res.Messages[0].Content.Text != "Hello, Ann!" {
		t.Errorf("hello: %+v, %v", res, err)
	}
	if len(env.logs) != 1 || env.logs[0] != "rendering hello" {
		t.Errorf("logs %q", env.logs)
	}
	res, err = p.GetPrompt(ctx, "ask", nil, env)
	if err != nil || res.Messages[0].Role != "assistant" || !strings.Contains(res.Messages[0].Content.Text, "wasm") {
		t.Errorf("ask: %+v, %v", res, err)
	}
	res, err = p.GetPrompt(ctx, "refuse", nil, nil)
	if err != nil || res.Error == nil || res.Error.Code != -32021 || res.Messages == nil {
		t.Errorf("refuse: %+v, %v", res, err)
	}

	for _, tc := range []struct {
		name, args string
		kind       error
		want       string
	}{
		{"nope", "", ErrUnknownPrompt, `plugin promptres.wasm: unknown prompt "nope"`},
		{"hello", `[]`, ErrBadArguments, "plugin promptres.wasm: prompt hello: bad arguments: not a JSON object"},
		{"hello", `{"name":1}`, ErrBadArguments, "prompt arguments must be strings"},
		{"trap", "", ErrGuestTrapped, "plugin promptres.wasm: prompt trap: guest trapped: wasm error: unreachable: panic: prompt trapped"},
		{"badrole", "", ErrBadGuestMessage, `prompt badrole: bad message from guest: prompt result messages[0] has role "system"`},
	} {
		_, err := p.GetPrompt(ctx, tc.name, json.RawMessage(tc.args), nil)
		if !errors.Is(err, tc.kind) || !strings.Contains(fmtErr(err), tc.want) {
			t.Errorf("%s %s: err = %v, want %v containing %q", tc.name, tc.args, err, tc.kind, tc.want)
		}
	}

	rr, err := p.ReadResource(ctx, "mem://a", nil)
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "contents of mem://a" {
		t.Errorf("mem://a: %+v, %v", rr, err)
	}
	rr, err = p.ReadResource(ctx, "mem://items/7", nil)
	if err != nil || rr.Contents[0].URI != "mem://items/7" {
		t.Errorf("mem://items/7: %+v, %v", rr, err)
	}
	rr, err = p.ReadResource(ctx, "mem://items/gone", nil)
	if err != nil || rr.Error == nil || rr.Error.Code != -32602 || string(rr.Error.Data) != `{"uri":"mem://items/gone"}` || rr.Contents == nil {
		t.Errorf("gone: %+v, %v", rr, err)
	}
	for _, uri := range []string{"mem://b", "mem://items/", "mem://items/1/2", ""} {
		if _, err := p.ReadResource(ctx, uri, nil); !errors.Is(err, ErrUnknownResource) {
			t.Errorf("%q: err = %v, want ErrUnknownResource", uri, err)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPromptCancel(t *testing.T) {
	r, _ := newRuntime(t, Options{CallTimeout: 300 * time.Millisecond})
	p := load(t, r, "promptres")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := p.GetPrompt(ctx, "sleep", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if _, err := p.GetPrompt(context.Background(), "sleep", nil, nil); !errors.Is(err, ErrCallTimeout) {
		t.Errorf("timeout: err = %v", err)
	}
	p.Close(context.Background())
	if _, err := p.ReadResource(context.Background(), "mem://a", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: err = %v", err)
	}
}

func TestLoadMissingOptionalExport(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	_, err := r.Load(context.Background(), guest(t, "noexport"))
	want := "plugin noexport.wasm: describes prompts but does not export wasmhost_get_prompt"
	if !errors.Is(err, ErrInvalidPlugin) || !strings.Contains(fmtErr(err), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
	d := &abi.Description{ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "x://{a}", Name: "a"}}}
	if err := checkOptionalExports(d, nil); err == nil || !strings.Contains(err.Error(), "does not export wasmhost_read_resource") {
		t.Errorf("read_resource: %v", err)
	}
}

func TestValidateExtras(t *testing.T) {
	tests := []struct {
		name string
		d    abi.Description
		want string
	}{
		{"nothing", abi.Description{}, "describes no tools, prompts or resources"},
		{"prompts only", abi.Description{Prompts: []abi.Prompt{{Name: "p"}}}, ""},
		{"bad prompt name", abi.Description{Prompts: []abi.Prompt{{Name: "a b"}}}, "prompt 0: prompt name \"a b\" contains ' '"},
		{"prompt twice", abi.Description{Prompts: []abi.Prompt{{Name: "p"}, {Name: "p"}}}, `prompt "p" is described twice`},
		{"argument twice", abi.Description{Prompts: []abi.Prompt{{Name: "p", Arguments: []abi.PromptArgument{{Name: "a"}, {Name: "a"}}}}}, `argument "a" is described twice`},
		{"unnamed argument", abi.Description{Prompts: []abi.Prompt{{Name: "p", Arguments: []abi.PromptArgument{{}}}}}, "argument 0 has no name"},
		{"empty uri", abi.Description{Resources: []abi.Resource{{Name: "r"}}}, "resource 0 (\"r\") has no uri"},
		{"uri twice", abi.Description{Resources: []abi.Resource{{URI: "x://a", Name: "a"}, {URI: "x://a", Name: "b"}}}, `resource "x://a" is described twice`},
		{"unnamed resource", abi.Description{Resources: []abi.Resource{{URI: "x://a"}}}, `resource "x://a" has no name`},
		{"template without var", abi.Description{ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "x://a", Name: "a"}}}, "has no {variable}"},
		{"unclosed", abi.Description{ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "x://{a", Name: "a"}}}, "unclosed {"},
		{"level 2", abi.Description{ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "x://{+a}", Name: "a"}}}, "only level-1"},
		{"template twice", abi.Description{ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "x://{a}", Name: "a"}, {URITemplate: "x://{a}", Name: "b"}}}, "described twice"},
		{"ok", abi.Description{Resources: []abi.Resource{{URI: "x://a", Name: "a"}}, ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "x://{a}/{b}", Name: "a"}}}, ""},
	}
	for _, tc := range tests {
		err := validateDescription(&tc.d)
		if tc.want == "" && err != nil || tc.want != "" && !strings.Contains(fmtErr(err), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCatalogPromptsAndResources(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, guest(t, "promptres"), filepath.Join(dir, "a.wasm"))
	f := openCatalog(t, dir, false)
	c := f.cat
	if ps := c.Prompts(); len(ps) != 6 || ps[0].Prompt.Name != "ask" || ps[5].Prompt.Name != "trap" {
		t.Errorf("prompts %+v", ps)
	}
	if e, ok := c.LookupPrompt("hello"); !ok || filepath.Base(e.Plugin.Path()) != "a.wasm" {
		t.Errorf("LookupPrompt(hello) = %+v, %v", e, ok)
	}
	if _, ok := c.LookupPrompt("nope"); ok {
		t.Error("LookupPrompt(nope) found")
	}
	if rs := c.Resources(); len(rs) != 1 || rs[0].Resource.URI != "mem://a" {
		t.Errorf("resources %+v", rs)
	}
	if ts := c.ResourceTemplates(); len(ts) != 1 || ts[0].Template.URITemplate != "mem://items/{id}" {
		t.Errorf("templates %+v", ts)
	}
	for uri, want := range map[string]bool{"mem://a": true, "mem://items/3": true, "mem://b": false, "mem://items/3/4": false} {
		if p, ok := c.LookupResource(uri); ok != want || ok && p == nil {
			t.Errorf("LookupResource(%s) = %v, %v", uri, p, ok)
		}
	}
	p, _ := c.LookupResource("mem://items/3")
	if res, err := p.ReadResource(context.Background(), "mem://items/3", nil); err != nil || res.Contents[0].Text != "contents of mem://items/3" {
		t.Errorf("read through the catalog: %+v, %v", res, err)
	}

	// A second plugin with the same prompts and resources is shadowed.
	copyFile(t, guest(t, "promptres"), filepath.Join(dir, "b.wasm"))
	f.waitFor("b.wasm shadowed", func() bool {
		return f.problem("b.wasm", `prompt "hello" is shadowed by the one in a.wasm`) &&
			f.problem("b.wasm", `resource "mem://a" is shadowed`) &&
			f.problem("b.wasm", `resource template "mem://items/{id}" is shadowed`)
	})
	if e, _ := c.LookupPrompt("hello"); filepath.Base(e.Plugin.Path()) != "a.wasm" {
		t.Errorf("hello served by %s", e.Plugin.Path())
	}

	// Removing a.wasm hands everything to b.wasm, and OnChange fires.
	os.Remove(filepath.Join(dir, "a.wasm"))
	f.waitFor("b.wasm serving", func() bool {
		e, ok := c.LookupPrompt("hello")
		p, rok := c.LookupResource("mem://items/9")
		return ok && rok && filepath.Base(e.Plugin.Path()) == "b.wasm" && filepath.Base(p.Path()) == "b.wasm" && len(c.Problems()) == 0
	})
}

func TestSameServed(t *testing.T) {
	p := &Plugin{}
	a := served{prompts: []PromptEntry{{Prompt: abi.Prompt{Name: "x"}, Plugin: p}}}
	b := served{prompts: []PromptEntry{{Prompt: abi.Prompt{Name: "x"}, Plugin: &Plugin{}}}}
	if !sameServed(a, a) || sameServed(a, b) || sameServed(a, served{}) {
		t.Error("sameServed")
	}
}
