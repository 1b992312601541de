//go:build wasip1

// Command abiv2 claims to speak ABI v2, which the host must refuse.
package main

import (
	"encoding/json"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host/testdata/guests/internal/gt"
)

func init() {
	gt.Version = 2
	gt.Tools = []abi.Tool{{Name: "greet", InputSchema: json.RawMessage(`{"type":"object"}`)}}
	gt.Handle = func(string, []byte) uint64 { return gt.Text("hi") }
}

func main() {}
