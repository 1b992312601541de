package guest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

func TestAddToolErrors(t *testing.T) {
	run := func(*Call, []byte) abi.CallResult { return abi.CallResult{} }
	if err := addTool(Tool{Name: "tool_test_taken"}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), run); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tool    Tool
		in, out reflect.Type
		want    string
	}{
		{"no name", Tool{}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), "tool has no name"},
		{"taken", Tool{Name: "tool_test_taken"}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), `tool "tool_test_taken" registered twice`},
		{"input not struct", Tool{Name: "x"}, reflect.TypeFor[string](), reflect.TypeFor[Text](), "input type string must be a struct"},
		{"input field", Tool{Name: "x"}, reflect.TypeFor[struct{ C chan int }](), reflect.TypeFor[Text](), "field C: type chan int has no JSON encoding"},
		{"output kind", Tool{Name: "x"}, reflect.TypeFor[struct{}](), reflect.TypeFor[[]int](), "output type []int must be guest.Text, guest.Result, a struct or a map"},
		{"output field", Tool{Name: "x"}, reflect.TypeFor[struct{}](), reflect.TypeFor[struct{ F func() }](), "output type struct { F func() }: field F"},
		{"raw schema not object", Tool{Name: "x", InputSchema: json.RawMessage(`[]`)}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), "InputSchema is not a JSON object"},
		{"raw schema not JSON", Tool{Name: "x", InputSchema: json.RawMessage(`{"type":`)}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), "InputSchema is not a JSON object"},
		{"raw schema not for objects", Tool{Name: "x", InputSchema: json.RawMessage(`{"type":"string"}`)}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), `InputSchema must have "type": "object" (has string)`},
		{"deferred without tasks", Tool{Name: "x", DeferTask: true}, reflect.TypeFor[struct{}](), reflect.TypeFor[Text](), "DeferTask needs TaskSupport optional or required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := addTool(tt.tool, tt.in, tt.out, run)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "guest: Register: ") {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

type outputStruct struct {
	N int `json:"n"`
}

func TestEncodeOutput(t *testing.T) {
	tests := []struct {
		name string
		out  any
		want string
	}{
		{"text", Text("hi"), `{"content":[{"type":"text","text":"hi"}]}`},
		{"string", "hi", `{"content":[{"type":"text","text":"hi"}]}`},
		{"struct", outputStruct{N: 1}, `{"content":[{"type":"text","text":"{\"n\":1}"}],"structuredContent":{"n":1}}`},
		{"pointer", &outputStruct{N: 2}, `{"content":[{"type":"text","text":"{\"n\":2}"}],"structuredContent":{"n":2}}`},
		{"nil pointer", (*outputStruct)(nil), `{"content":[{"type":"text","text":"the tool returned null, not a JSON object"}],"isError":true}`},
		{"map", map[string]int{"a": 1}, `{"content":[{"type":"text","text":"{\"a\":1}"}],"structuredContent":{"a":1}}`},
		{"result", Result{Content: []Content{TextContent("a"), ImageContent([]byte{1, 2}, "image/png")}},
			`{"content":[{"type":"text","text":"a"},{"type":"image","data":"AQI=","mimeType":"image/png"}]}`},
		{"result error", &Result{Content: []Content{TextContent("no")}, IsError: true}, `{"content":[{"type":"text","text":"no"}],"isError":true}`},
		{"result empty", Result{}, `{"content":[]}`},
		{"result structured", Result{Structured: outputStruct{N: 3}}, `{"content":[],"structuredContent":{"n":3}}`},
		{"result structured not object", Result{Structured: []int{1}}, `{"content":[{"type":"text","text":"the tool's structured result is [1], not a JSON object"}],"isError":true}`},
		{"nil result", (*Result)(nil), `{"content":[{"type":"text","text":"the tool returned a nil *guest.Result"}],"isError":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(encodeOutput(tt.out))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("result:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

type decodeIn struct {
	Name  string `json:"name"`
	Inner struct {
		Count int `json:"count"`
	} `json:"inner"`
	Opt *bool `json:"opt"`
}

func TestDecodeArgs(t *testing.T) {
	tests := []struct {
		args string
		want string // "" for success
	}{
		{`{"name":"a","inner":{"count":1}}`, ""},
		{`{"name":"a","inner":{},"extra":true}`, ""},
		{`{"name":1,"inner":{}}`, `invalid arguments: field "name": got a JSON number, want a string`},
		{`{"name":"a","inner":{"count":"x"}}`, `invalid arguments: field "inner.count": got a JSON string, want an integer`},
		{`{"name":"a","inner":{"count":1.5}}`, `invalid arguments: field "inner.count": got a JSON number 1.5, want an integer`},
		{`{"inner":{}}`, `invalid arguments: missing required field "name"`},
		{``, `invalid arguments: missing required field "name"`},
		{`[1]`, `invalid arguments: want a JSON object`},
		{`{"name":`, `invalid arguments: want a JSON object`},
	}
	s, err := newDeriver(nil).derive(reflect.TypeFor[decodeIn](), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		var in decodeIn
		err := decodeArgs([]byte(tt.args), &in, s.Required)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("decodeArgs(%s): %v", tt.args, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("decodeArgs(%s): err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestStatusError(t *testing.T) {
	if err := statusError(abi.StatusCancelled); !errors.Is(err, ErrCancelled) {
		t.Errorf("StatusCancelled: %v", err)
	}
	for _, s := range []abi.Status{abi.StatusBadMessage, abi.StatusNoResponse, abi.StatusBufferTooSmall, -99} {
		if err := statusError(s); err == nil || errors.Is(err, ErrCancelled) {
			t.Errorf("status %d: %v", s, err)
		}
	}
}
