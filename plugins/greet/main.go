// Command greet is the smallest wasmhost plugin: one synchronous tool that
// says hello. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o greet.wasm .
package main

import "github.com/wasmhost/wasmhost/sdk/guest"

// GreetIn is the greet tool's input.
type GreetIn struct {
	// Name of the person to greet.
	Name string `json:"name"`
}

func init() {
	guest.Register(guest.Tool{
		Name:        "greet",
		Title:       "Greet",
		Description: "Say hello to someone by name.",
		TaskSupport: guest.TaskForbidden, // answers at once: never worth a task
	}, func(c *guest.Call, in GreetIn) (guest.Text, error) {
		return guest.Text("Hello, " + in.Name + "!"), nil
	})
}

// main is never called: the host runs init through _initialize, then calls
// the tools.
func main() {}
