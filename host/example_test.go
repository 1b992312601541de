package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
)

// answerYes is an Env that accepts every question at once. A real one
// relays the questions to the MCP client and waits for the person.
type answerYes struct{}

func (answerYes) Input(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
	out := make([]abi.InputResponse, len(reqs))
	for i := range out {
		out[i].Result = json.RawMessage(`{"action":"accept","content":{"sure":true}}`)
	}
	return out, nil
}
func (answerYes) Log(level abi.LogLevel, msg string) {}
func (answerYes) Progress(p abi.Progress)            {}

// The test guest's elicit tool asks one question and returns the answer it
// got. The guest is suspended inside its elicit call until Env.Input
// returns.
func ExamplePlugin_Call() {
	ctx := context.Background()
	b := &gobuild.Builder{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-guests")}
	wasm, _, err := b.Build(ctx, "testdata/guests/echo")
	if err != nil {
		log.Fatal(err)
	}
	rt, err := host.New(ctx, host.Options{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-compile")})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	p, err := rt.Load(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	res, err := p.Call(ctx, "elicit", json.RawMessage(`{"message":"Really?"}`), answerYes{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].Text)
	// Output: {"result":{"action":"accept","content":{"sure":true}}}
}
