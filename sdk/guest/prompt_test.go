package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

// withEmptyRegistries runs the test with no prompts or resources
// registered, restoring the package's own afterwards.
func withEmptyRegistries(t *testing.T) {
	savedP, savedR := prompts, resources
	prompts.list, prompts.byName = nil, nil
	resources.list, resources.byURI, resources.templates, resources.tmplRun = nil, nil, nil, nil
	t.Cleanup(func() { prompts, resources = savedP, savedR })
}

func TestNothingRegistered(t *testing.T) {
	withEmptyRegistries(t)
	var b Bridge
	p, err := b.GetPrompt("anything", `{}`)
	if err != nil || p.Error == nil || p.Error.Code != -32601 || p.Error.Message != "no prompts" {
		t.Errorf("GetPrompt = %+v, %v; want -32601 no prompts", p, err)
	}
	r, err := b.ReadResource("test://x")
	if err != nil || r.Error == nil || r.Error.Code != -32602 || string(r.Error.Data) != `{"uri":"test://x"}` {
		t.Errorf("ReadResource = %+v, %v; want -32602 with the uri", r, err)
	}
	if r.Contents == nil {
		t.Error("contents is null; MCP wants an array")
	}
}

func TestPrompts(t *testing.T) {
	withEmptyRegistries(t)
	RegisterPrompt(Prompt{Name: "greet", Description: "Greets.", Arguments: []PromptArgument{{Name: "who", Required: true}, {Name: "how"}}},
		func(c *Call, args map[string]string) (PromptResult, error) {
			return PromptResult{Messages: []PromptMessage{UserMessage(TextContent(fmt.Sprintf("%s, %s!", args["how"], args["who"])))}}, nil
		})
	RegisterPrompt(Prompt{Name: "fails"}, func(*Call, map[string]string) (PromptResult, error) {
		return PromptResult{}, errors.New("out of ideas")
	})
	RegisterPrompt(Prompt{Name: "refuses"}, func(*Call, map[string]string) (PromptResult, error) {
		return PromptResult{}, fmt.Errorf("wrapped: %w", ProtocolError{Code: -32021, Message: "needs elicitation", Data: map[string]int{"x": 1}})
	})
	RegisterPrompt(Prompt{Name: "panics"}, func(*Call, map[string]string) (PromptResult, error) { panic("boom") })
	RegisterPrompt(Prompt{Name: "asks"}, func(c *Call, _ map[string]string) (PromptResult, error) {
		var f struct {
			Topic string `json:"topic"`
		}
		q := NewElicitation[struct {
			Topic string `json:"topic"`
		}]("Topic?").WithKey("topic")
		if err := c.AskAll(q); err != nil {
			return PromptResult{}, err
		}
		a, err := q.Result()
		if err != nil {
			return PromptResult{}, err
		}
		f.Topic = a.Content.Topic
		return PromptResult{Description: "about " + f.Topic, Messages: []PromptMessage{AssistantMessage(TextContent(f.Topic))}}, nil
	})

	b := Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		if batch[0].Key != "topic" {
			t.Errorf("asked under %q", batch[0].Key)
		}
		return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"topic":"wasm"}}`)}}, 0
	}}
	desc, err := b.Describe()
	if err != nil || len(desc.Prompts) != 5 || desc.Prompts[0].Name != "greet" || len(desc.Prompts[0].Arguments) != 2 {
		t.Fatalf("Describe = %+v, %v", desc.Prompts, err)
	}

	check := func(name, args, want string) {
		t.Helper()
		res, err := b.GetPrompt(name, args)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := json.Marshal(res)
		if string(got) != want {
			t.Errorf("%s %s:\n got %s\nwant %s", name, args, got, want)
		}
	}
	check("greet", `{"who":"Ann","how":"Hi"}`, `{"messages":[{"role":"user","content":{"type":"text","text":"Hi, Ann!"}}]}`)
	check("greet", `{"how":"Hi"}`, `{"messages":[],"error":{"code":-32602,"message":"prompt \"greet\": missing required argument \"who\""}}`)
	check("greet", `{"who":1}`, `{"messages":[],"error":{"code":-32602,"message":"prompt \"greet\": arguments must be a JSON object of strings: json: cannot unmarshal number into Go value of type string"}}`)
	check("nope", ``, `{"messages":[],"error":{"code":-32602,"message":"unknown prompt \"nope\""}}`)
	check("fails", ``, `{"messages":[],"error":{"code":-32603,"message":"out of ideas"}}`)
	check("refuses", `null`, `{"messages":[],"error":{"code":-32021,"message":"needs elicitation","data":{"x":1}}}`)
	check("asks", `{}`, `{"description":"about wasm","messages":[{"role":"assistant","content":{"type":"text","text":"wasm"}}]}`)

	if _, err := b.GetPrompt("panics", `{}`); !errors.Is(err, ErrTrap) {
		t.Errorf("panicking prompt: err = %v, want ErrTrap", err)
	}
}

func TestResources(t *testing.T) {
	withEmptyRegistries(t)
	RegisterResource(Resource{URI: "test://a", Name: "a"}, func(_ *Call, uri string) ([]EmbeddedResource, error) {
		return []EmbeddedResource{{MimeType: "text/plain", Text: "A"}}, nil // URI filled in
	})
	RegisterResource(Resource{URI: "test://items/special", Name: "special"}, func(_ *Call, uri string) ([]EmbeddedResource, error) {
		return []EmbeddedResource{BlobResource(uri, "application/octet-stream", []byte{1, 2})}, nil
	})
	RegisterResourceTemplate(ResourceTemplate{URITemplate: "test://items/{id}", Name: "item"},
		func(c *Call, uri string, vars map[string]string) ([]EmbeddedResource, error) {
			if vars["id"] == "bad" {
				return nil, errors.New("bad item")
			}
			return []EmbeddedResource{TextResource(uri, "text/plain", "item "+vars["id"])}, nil
		})
	RegisterResourceTemplate(ResourceTemplate{URITemplate: "test://items/{id}/{part}", Name: "part"},
		func(c *Call, uri string, vars map[string]string) ([]EmbeddedResource, error) {
			return []EmbeddedResource{TextResource(uri, "text/plain", vars["id"]+"/"+vars["part"])}, nil
		})

	var b Bridge
	desc, _ := b.Describe()
	if len(desc.Resources) != 2 || len(desc.ResourceTemplates) != 2 {
		t.Fatalf("Describe = %+v", desc)
	}
	for uri, want := range map[string]string{
		"test://a":             `{"contents":[{"uri":"test://a","mimeType":"text/plain","text":"A"}]}`,
		"test://items/special": `{"contents":[{"uri":"test://items/special","mimeType":"application/octet-stream","blob":"AQI="}]}`,
		"test://items/42":      `{"contents":[{"uri":"test://items/42","mimeType":"text/plain","text":"item 42"}]}`,
		"test://items/42/x":    `{"contents":[{"uri":"test://items/42/x","mimeType":"text/plain","text":"42/x"}]}`,
		"test://items/bad":     `{"contents":[],"error":{"code":-32603,"message":"bad item"}}`,
		"test://items/":        `{"contents":[],"error":{"code":-32602,"message":"Resource not found","data":{"uri":"test://items/"}}}`,
		"test://items/1/2/3":   `{"contents":[],"error":{"code":-32602,"message":"Resource not found","data":{"uri":"test://items/1/2/3"}}}`,
	} {
		res, err := b.ReadResource(uri)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(res); string(got) != want {
			t.Errorf("%s:\n got %s\nwant %s", uri, got, want)
		}
	}
}

func TestRegisterPanics(t *testing.T) {
	withEmptyRegistries(t)
	RegisterPrompt(Prompt{Name: "p"}, nil)
	RegisterResource(Resource{URI: "u://x", Name: "x"}, nil)
	RegisterResourceTemplate(ResourceTemplate{URITemplate: "u://{x}", Name: "x"}, nil)
	for name, f := range map[string]func(){
		"prompt without name":  func() { RegisterPrompt(Prompt{}, nil) },
		"prompt twice":         func() { RegisterPrompt(Prompt{Name: "p"}, nil) },
		"resource without uri": func() { RegisterResource(Resource{Name: "x"}, nil) },
		"resource twice":       func() { RegisterResource(Resource{URI: "u://x", Name: "y"}, nil) },
		"template without var": func() { RegisterResourceTemplate(ResourceTemplate{URITemplate: "u://y", Name: "y"}, nil) },
		"template twice":       func() { RegisterResourceTemplate(ResourceTemplate{URITemplate: "u://{x}", Name: "y"}, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
