package conformancefix_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
)

// TestPromptsAndResourcesListed checks what prompts_resources describes:
// every prompt has a description, every resource and template a name.
func TestPromptsAndResourcesListed(t *testing.T) {
	p := load(t, "prompts_resources")
	var names []string
	for _, pr := range p.Prompts() {
		names = append(names, pr.Name)
		if strings.TrimSpace(pr.Description) == "" {
			t.Errorf("prompt %s has no description", pr.Name)
		}
	}
	want := "test_simple_prompt test_prompt_with_arguments test_prompt_with_embedded_resource test_prompt_with_image test_input_required_result_prompt"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("prompts %s, want %s", got, want)
	}
	var uris []string
	for _, r := range p.Resources() {
		uris = append(uris, r.URI+" "+r.MimeType)
		if r.Name == "" || r.Description == "" {
			t.Errorf("resource %s needs a name and a description", r.URI)
		}
	}
	if got := strings.Join(uris, ", "); got != "test://static-text text/plain, test://static-binary image/png, test://watched-resource text/plain" {
		t.Errorf("resources %s", got)
	}
	tmpls := p.ResourceTemplates()
	if len(tmpls) != 1 || tmpls[0].URITemplate != "test://template/{id}/data" || tmpls[0].MimeType != "application/json" || tmpls[0].Name == "" {
		t.Errorf("templates %+v", tmpls)
	}
}

func TestReadResources(t *testing.T) {
	p := load(t, "prompts_resources")
	tests := []struct {
		uri  string
		want abi.EmbeddedResource
	}{
		{"test://static-text", abi.EmbeddedResource{URI: "test://static-text", MimeType: "text/plain", Text: "This is the content of the static text resource."}},
		{"test://static-binary", abi.EmbeddedResource{URI: "test://static-binary", MimeType: "image/png", Blob: png}},
		{"test://template/123/data", abi.EmbeddedResource{URI: "test://template/123/data", MimeType: "application/json",
			Text: `{"id":"123","templateTest":true,"data":"Data for ID: 123"}`}},
	}
	for _, tt := range tests {
		res, err := p.ReadResource(context.Background(), tt.uri, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.uri, err)
		}
		if res.Error != nil || len(res.Contents) != 1 || res.Contents[0] != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.uri, res, tt.want)
		}
	}
	res, err := p.ReadResource(context.Background(), "test://watched-resource", nil)
	if err != nil || len(res.Contents) != 1 || res.Contents[0].Text == "" || res.Contents[0].MimeType != "text/plain" {
		t.Errorf("watched resource: %+v, %v", res, err)
	}
	// The host refuses a URI the plugin does not serve before starting it.
	_, err = p.ReadResource(context.Background(), "test://nonexistent-resource-for-conformance-testing", nil)
	if !errors.Is(err, host.ErrUnknownResource) {
		t.Errorf("unknown uri: err = %v, want ErrUnknownResource", err)
	}
}

func TestGetPrompts(t *testing.T) {
	p := load(t, "prompts_resources")
	tests := []struct {
		name, args, want string
	}{
		{"test_simple_prompt", ``, `[{"role":"user","content":{"type":"text","text":"This is a simple prompt for testing."}}]`},
		{"test_prompt_with_arguments", `{"arg1":"testValue1","arg2":"testValue2"}`,
			`[{"role":"user","content":{"type":"text","text":"Prompt with arguments: arg1='testValue1', arg2='testValue2'"}}]`},
		{"test_prompt_with_embedded_resource", `{"resourceUri":"test://example-resource"}`,
			`[{"role":"user","content":{"type":"resource","resource":{"uri":"test://example-resource","mimeType":"text/plain","text":"Embedded resource content for testing."}}},` +
				`{"role":"user","content":{"type":"text","text":"Please process the embedded resource above."}}]`},
		{"test_prompt_with_image", `{}`,
			`[{"role":"user","content":{"type":"image","data":"` + png + `","mimeType":"image/png"}},` +
				`{"role":"user","content":{"type":"text","text":"Please analyze the image above."}}]`},
	}
	for _, tt := range tests {
		res, err := p.GetPrompt(context.Background(), tt.name, json.RawMessage(tt.args), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, _ := json.Marshal(res.Messages)
		if res.Error != nil || string(got) != tt.want {
			t.Errorf("%s: error %+v, messages\n%s\nwant\n%s", tt.name, res.Error, got, tt.want)
		}
	}
	res, err := p.GetPrompt(context.Background(), "test_prompt_with_arguments", json.RawMessage(`{"arg1":"x"}`), nil)
	if err != nil || res.Error == nil || res.Error.Code != -32602 {
		t.Errorf("missing argument: %+v, %v; want -32602", res, err)
	}
}

// TestInputRequiredPrompt: the MRTR prompt asks under user_context until
// it gets an accepted answer with context, then renders it.
func TestInputRequiredPrompt(t *testing.T) {
	p := load(t, "prompts_resources")
	e := &env{script: map[string][]string{"user_context": {
		`42`, `null`, `{"action":"decline"}`, `{"action":"accept","content":{}}`,
		`{"action":"accept","content":{"context":"testing MRTR"}}`,
	}}}
	res, err := p.GetPrompt(context.Background(), "test_input_required_result_prompt", nil, e)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(res.Messages)
	if want := `[{"role":"user","content":{"type":"text","text":"Context: testing MRTR"}}]`; string(got) != want {
		t.Errorf("messages %s, want %s", got, want)
	}
	if k := e.keys(); k != "user_context|user_context|user_context|user_context|user_context" {
		t.Errorf("asked %s", k)
	}
	want := `{"message":"What context should the prompt use?","requestedSchema":{"type":"object","properties":{"context":{"type":"string"}},"required":["context"]}}`
	if got := compact(t, string(e.params("user_context"))); got != want {
		t.Errorf("params %s, want %s", got, want)
	}

	// A client that cannot elicit fails the request.
	res, err = p.GetPrompt(context.Background(), "test_input_required_result_prompt", nil, nil)
	if err != nil || res.Error == nil || res.Error.Code != -32603 {
		t.Errorf("without elicitation: %+v, %v; want a -32603 error", res, err)
	}
}
