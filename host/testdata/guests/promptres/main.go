//go:build wasip1

// Command promptres serves prompts and resources and no tools: prompts that
// render, ask, sleep, trap or break the ABI, a resource and a template.
package main

import (
	"encoding/json"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host/testdata/guests/internal/gt"
)

func init() {
	gt.Extras = abi.Description{
		Prompts: []abi.Prompt{
			{Name: "hello", Arguments: []abi.PromptArgument{{Name: "name", Required: true}}},
			{Name: "ask"}, {Name: "sleep"}, {Name: "trap"}, {Name: "badrole"}, {Name: "refuse"},
		},
		Resources:         []abi.Resource{{URI: "mem://a", Name: "a", MimeType: "text/plain"}},
		ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "mem://items/{id}", Name: "item"}},
	}
}

func text(role, s string) uint64 {
	return gt.Result(abi.PromptResult{Messages: []abi.PromptMessage{{Role: role, Content: abi.Content{Type: "text", Text: s}}}})
}

//go:wasmexport wasmhost_get_prompt
func getPrompt(namePtr, nameLen, argsPtr, argsLen uint32) uint64 {
	name := string(gt.Bytes(namePtr, nameLen))
	var args map[string]string
	json.Unmarshal(gt.Bytes(argsPtr, argsLen), &args)
	switch name {
	case "hello":
		gt.Log(abi.LogInfo, "rendering hello")
		return text("user", "Hello, "+args["name"]+"!")
	case "ask":
		r, st := gt.Elicit(map[string]any{"message": "Topic?", "requestedSchema": map[string]any{"type": "object"}})
		if st < 0 {
			return gt.Result(abi.PromptResult{Error: &abi.CallError{Code: -32603, Message: "no answer"}})
		}
		return text("assistant", string(r.Result))
	case "sleep":
		time.Sleep(time.Hour)
	case "trap":
		panic("prompt trapped")
	case "badrole":
		return text("system", "not allowed")
	case "refuse":
		return gt.Result(abi.PromptResult{Error: &abi.CallError{Code: -32021, Message: "needs elicitation"}})
	}
	return gt.Result(abi.PromptResult{Error: &abi.CallError{Code: -32602, Message: "unknown prompt"}})
}

//go:wasmexport wasmhost_read_resource
func readResource(uriPtr, uriLen uint32) uint64 {
	uri := string(gt.Bytes(uriPtr, uriLen))
	if uri == "mem://items/gone" {
		data, _ := json.Marshal(map[string]string{"uri": uri})
		return gt.Result(abi.ResourceResult{Error: &abi.CallError{Code: -32602, Message: "Resource not found", Data: data}})
	}
	return gt.Result(abi.ResourceResult{Contents: []abi.EmbeddedResource{{URI: uri, MimeType: "text/plain", Text: "contents of " + uri}}})
}

func main() {}
