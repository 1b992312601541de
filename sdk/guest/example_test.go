package guest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
)

// Forecast is the input of the forecast example.
type Forecast struct {
	City  string `json:"city" description:"City to forecast."`
	Days  int    `json:"days,omitempty" jsonschema:"minimum=1,maximum=7"`
	Units string `json:"units" jsonschema:"enum=metric|imperial"`
	// Pointers are optional too.
	Hourly *bool `json:"hourly"`
}

func ExampleSchemaFor() {
	schema, err := guest.SchemaFor[Forecast]()
	if err != nil {
		panic(err)
	}
	printJSON(schema)
	// Output:
	// {
	//   "type": "object",
	//   "properties": {
	//     "city": {
	//       "type": "string",
	//       "description": "City to forecast."
	//     },
	//     "days": {
	//       "type": "integer",
	//       "minimum": 1,
	//       "maximum": 7
	//     },
	//     "units": {
	//       "type": "string",
	//       "enum": [
	//         "metric",
	//         "imperial"
	//       ]
	//     },
	//     "hourly": {
	//       "type": "boolean"
	//     }
	//   },
	//   "required": [
	//     "city",
	//     "units"
	//   ]
	// }
}

// Comments are invisible to reflection; wasmhost's builder generates this
// call from the source (package fielddocs), so plugins never write it.
func ExampleRegisterFieldDocs() {
	guest.RegisterFieldDocs(map[string]string{
		"github.com/wasmhost/wasmhost/sdk/guest_test.Board.Notes": "The notes, oldest first.",
		"github.com/wasmhost/wasmhost/sdk/guest_test.Note":        "A sticky note.",
		"github.com/wasmhost/wasmhost/sdk/guest_test.Note.Text":   "What the note says.",
	})
	schema, _ := guest.SchemaFor[Board]()
	printJSON(schema)
	// Output:
	// {
	//   "type": "object",
	//   "properties": {
	//     "notes": {
	//       "type": "array",
	//       "description": "The notes, oldest first.",
	//       "items": {
	//         "type": "object",
	//         "description": "A sticky note.",
	//         "properties": {
	//           "text": {
	//             "type": "string",
	//             "description": "What the note says."
	//           }
	//         },
	//         "required": [
	//           "text"
	//         ]
	//       }
	//     }
	//   },
	//   "required": [
	//     "notes"
	//   ]
	// }
}

type Board struct {
	Notes []Note `json:"notes"`
}

type Note struct {
	Text string `json:"text"`
}

type SumIn struct {
	Numbers []float64 `json:"numbers"`
}

type SumOut struct {
	Sum   float64 `json:"sum"`
	Count int     `json:"count"`
}

func ExampleRegister() {
	// A plugin does this in init; a struct output becomes structured
	// content with an output schema.
	guest.Register(guest.Tool{Name: "example_sum", Description: "Add numbers up."},
		func(c *guest.Call, in SumIn) (SumOut, error) {
			out := SumOut{Count: len(in.Numbers)}
			for _, n := range in.Numbers {
				out.Sum += n
			}
			return out, nil
		})

	// On the build machine, a Bridge stands in for wasmhost.
	var b guest.Bridge
	desc, _ := b.Describe()
	for _, t := range desc.Tools {
		if t.Name == "example_sum" {
			fmt.Printf("inputSchema:  %s\noutputSchema: %s\n", t.InputSchema, t.OutputSchema)
		}
	}
	res, _ := b.Call("example_sum", `{"numbers":[1,2,3.5]}`)
	fmt.Printf("structuredContent: %s\n", res.StructuredContent)

	res, _ = b.Call("example_sum", `{"numbers":"1,2"}`)
	fmt.Printf("isError: %v: %s\n", res.IsError, res.Content[0].Text)
	// Output:
	// inputSchema:  {"type":"object","properties":{"numbers":{"type":"array","items":{"type":"number"}}},"required":["numbers"]}
	// outputSchema: {"type":"object","properties":{"sum":{"type":"number"},"count":{"type":"integer"}},"required":["sum","count"]}
	// structuredContent: {"sum":6.5,"count":3}
	// isError: true: invalid arguments: field "numbers": got a JSON string, want an array
}

type Overwrite struct {
	Overwrite bool `json:"overwrite" description:"Replace the existing file."`
}

func ExampleElicit() {
	guest.Register(guest.Tool{Name: "example_save", TaskSupport: guest.TaskOptional},
		func(c *guest.Call, _ struct{}) (guest.Text, error) {
			answer, err := guest.Elicit[Overwrite](c, "report.txt exists. Overwrite it?")
			if err != nil {
				return "", err
			}
			if answer.Accepted() && answer.Content.Overwrite {
				return "overwritten", nil
			}
			return "left alone", nil
		})

	b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		fmt.Printf("%s %s\n", batch[0].Method, batch[0].Params)
		return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"overwrite":true}}`)}}, 0
	}}
	res, _ := b.Call("example_save", `{}`)
	fmt.Println(res.Content[0].Text)
	// Output:
	// elicitation/create {"message":"report.txt exists. Overwrite it?","requestedSchema":{"type":"object","properties":{"overwrite":{"type":"boolean","description":"Replace the existing file."}},"required":["overwrite"]}}
	// overwritten
}

type Size struct {
	Size string `json:"size" jsonschema:"enum=S|M|L"`
}

type Topping struct {
	Topping string `json:"topping"`
}

func ExampleCall_AskAll() {
	guest.Register(guest.Tool{Name: "example_order"},
		func(c *guest.Call, _ struct{}) (guest.Text, error) {
			size := guest.NewElicitation[Size]("Which size?")
			topping := guest.NewElicitation[Topping]("Which topping?")
			if err := c.AskAll(size, topping); err != nil {
				return "", err // the batch could not be asked: cancelled
			}
			s, err := size.Result()
			if err != nil {
				return "", err
			}
			tp, err := topping.Result()
			if err != nil {
				return "", err
			}
			return guest.Text(s.Content.Size + " with " + tp.Content.Topping), nil
		})

	b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		fmt.Println("questions in one batch:", len(batch))
		return []abi.InputResponse{
			{Result: json.RawMessage(`{"action":"accept","content":{"size":"L"}}`)},
			{Result: json.RawMessage(`{"action":"accept","content":{"topping":"olives"}}`)},
		}, 0
	}}
	res, _ := b.Call("example_order", `{}`)
	fmt.Println(res.Content[0].Text)
	// Output:
	// questions in one batch: 2
	// L with olives
}

type UserName struct {
	Name string `json:"name"`
}

func ExampleElicitation_WithKey() {
	guest.Register(guest.Tool{Name: "example_hello"},
		func(c *guest.Call, _ struct{}) (guest.Text, error) {
			// Clients of the 2026-07-28 protocol see the question under
			// the key user_name (inputRequests.user_name).
			q := guest.NewElicitation[UserName]("What is your name?").WithKey("user_name")
			if err := c.AskAll(q); err != nil {
				return "", err
			}
			a, err := q.Result()
			if err != nil {
				return "", err
			}
			return guest.Text("Hello, " + a.Content.Name + "!"), nil
		})

	b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		fmt.Println(batch[0].Key, batch[0].Method)
		return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"name":"Alice"}}`)}}, 0
	}}
	res, _ := b.Call("example_hello", `{}`)
	fmt.Println(res.Content[0].Text)
	// Output:
	// user_name elicitation/create
	// Hello, Alice!
}

func ExampleNewRawElicitation() {
	// SEP-1330's titled enums have no Go struct form; send the schema as is.
	schema := json.RawMessage(`{"type":"object","properties":{"size":{"type":"string",` +
		`"oneOf":[{"const":"s","title":"Small"},{"const":"l","title":"Large"}],"default":"s"}},"required":["size"]}`)
	guest.Register(guest.Tool{Name: "example_size"},
		func(c *guest.Call, _ struct{}) (guest.Text, error) {
			q := guest.NewRawElicitation("Which size?", schema)
			if err := c.AskAll(q); err != nil {
				return "", err
			}
			a, err := q.Result()
			if err != nil {
				return "", err
			}
			return guest.Text(fmt.Sprintf("%s: %v", a.Action, a.Content["size"])), nil
		})

	b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		fmt.Printf("%s\n", batch[0].Params)
		return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"size":"l"}}`)}}, 0
	}}
	res, _ := b.Call("example_size", `{}`)
	fmt.Println(res.Content[0].Text)
	// Output:
	// {"message":"Which size?","requestedSchema":{"type":"object","properties":{"size":{"type":"string","oneOf":[{"const":"s","title":"Small"},{"const":"l","title":"Large"}],"default":"s"}},"required":["size"]}}
	// accept: l
}

func ExampleResourceContent() {
	guest.Register(guest.Tool{Name: "example_report"},
		func(c *guest.Call, _ struct{}) (guest.Result, error) {
			return guest.Result{Content: []guest.Content{
				guest.TextContent("The report:"),
				guest.ResourceContent("file:///reports/today.md", "text/markdown", "# Today\nAll green."),
			}}, nil
		})

	res, _ := (&guest.Bridge{}).Call("example_report", `{}`)
	out, _ := json.Marshal(res.Content[1])
	fmt.Println(string(out))
	// Output:
	// {"type":"resource","resource":{"uri":"file:///reports/today.md","mimeType":"text/markdown","text":"# Today\nAll green."}}
}

func ExampleProtocolError() {
	guest.Register(guest.Tool{Name: "example_summarise"},
		func(c *guest.Call, _ struct{}) (guest.Text, error) {
			reply, err := guest.Sample(c, guest.SampleParams{Messages: []guest.SamplingMessage{
				{Role: "user", Content: guest.TextContent("Summarise the day.")}}})
			if errors.Is(err, guest.ErrUnsupported) {
				// Without sampling this tool cannot work at all: say so as
				// MCP's "missing required client capability" error.
				return "", guest.ProtocolError{Code: -32021, Message: "this tool needs the sampling capability",
					Data: map[string]any{"requiredCapabilities": map[string]any{"sampling": map[string]any{}}}}
			}
			if err != nil {
				return "", err
			}
			return guest.Text(reply.Content.Text), nil
		})

	// The zero Bridge answers every question "unsupported".
	res, _ := (&guest.Bridge{}).Call("example_summarise", `{}`)
	out, _ := json.Marshal(res.Error)
	fmt.Println(string(out))
	// Output:
	// {"code":-32021,"message":"this tool needs the sampling capability","data":{"requiredCapabilities":{"sampling":{}}}}
}

func ExampleCall_Detach() {
	guest.Register(guest.Tool{Name: "example_import", TaskSupport: guest.TaskRequired, DeferTask: true},
		func(c *guest.Call, _ struct{}) (guest.Text, error) {
			// Ask while the client waits...
			q := guest.NewElicitation[UserName]("Import for whom?").WithKey("user_name")
			if err := c.AskAll(q); err != nil {
				return "", err
			}
			a, err := q.Result()
			if err != nil || !a.Accepted() {
				return "", errors.New("no name, no import")
			}
			// ...then let the long part run as a task.
			if c.Detach() {
				c.Log(guest.LogInfo, "running in the background")
			}
			return guest.Text("Imported for " + a.Content.Name), nil
		})

	b := guest.Bridge{
		Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
			return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"name":"Alice"}}`)}}, 0
		},
		Detach: func() bool { fmt.Println("detached"); return true },
		Log:    func(_ guest.LogLevel, msg string) { fmt.Println("log:", msg) },
	}
	res, _ := b.Call("example_import", `{}`)
	fmt.Println(res.Content[0].Text)
	// Output:
	// detached
	// log: running in the background
	// Imported for Alice
}

// printJSON prints raw indented, keeping the SDK's key order.
func printJSON(raw []byte) {
	var b bytes.Buffer
	json.Indent(&b, raw, "", "  ")
	fmt.Println(b.String())
}

func ExampleRegisterPrompt() {
	// A plugin does this in init. Handlers get a *guest.Call, so they may
	// log, report progress and ask the client as tools do.
	guest.RegisterPrompt(guest.Prompt{
		Name:        "example_review",
		Description: "Review a file.",
		Arguments:   []guest.PromptArgument{{Name: "path", Required: true}},
	}, func(c *guest.Call, args map[string]string) (guest.PromptResult, error) {
		return guest.PromptResult{Messages: []guest.PromptMessage{
			guest.UserMessage(guest.TextContent("Please review " + args["path"] + ".")),
		}}, nil
	})
	guest.RegisterResourceTemplate(guest.ResourceTemplate{
		URITemplate: "example://files/{name}", Name: "file", MimeType: "text/plain",
	}, func(c *guest.Call, uri string, vars map[string]string) ([]guest.EmbeddedResource, error) {
		return []guest.EmbeddedResource{guest.TextResource(uri, "text/plain", "contents of "+vars["name"])}, nil
	})

	var b guest.Bridge
	p, _ := b.GetPrompt("example_review", `{"path":"main.go"}`)
	fmt.Println(p.Messages[0].Role, p.Messages[0].Content.Text)
	p, _ = b.GetPrompt("example_review", `{}`)
	fmt.Println(p.Error.Code, p.Error.Message)
	r, _ := b.ReadResource("example://files/notes.txt")
	fmt.Println(r.Contents[0].URI, r.Contents[0].Text)
	r, _ = b.ReadResource("example://elsewhere")
	fmt.Println(r.Error.Code, r.Error.Message, string(r.Error.Data))
	// Output:
	// user Please review main.go.
	// -32602 prompt "example_review": missing required argument "path"
	// example://files/notes.txt contents of notes.txt
	// -32602 Resource not found {"uri":"example://elsewhere"}
}
