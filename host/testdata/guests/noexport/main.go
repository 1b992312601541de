//go:build wasip1

// Command noexport describes a prompt and a resource template but exports
// neither wasmhost_get_prompt nor wasmhost_read_resource.
package main

import (
	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host/testdata/guests/internal/gt"
)

func init() {
	gt.Extras = abi.Description{
		Prompts:           []abi.Prompt{{Name: "p"}},
		ResourceTemplates: []abi.ResourceTemplate{{URITemplate: "mem://{x}", Name: "x"}},
	}
}

func main() {}
