package guest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
)

// Tools for the tests below, named call_* to keep clear of the others.
func init() {
	guest.Register(guest.Tool{Name: "call_keys"}, func(c *guest.Call, in struct {
		Keys []string `json:"keys"`
	}) (guest.Text, error) {
		name := guest.NewElicitation[bridgeName]("Name?").WithKey(in.Keys[0])
		sample := guest.NewSampling(guest.SampleParams{Messages: []guest.SamplingMessage{{Role: "user", Content: guest.TextContent("Hi")}}}).WithKey(in.Keys[1])
		roots := guest.NewRootsRequest().WithKey(in.Keys[2])
		if err := c.AskAll(name, sample, roots); err != nil {
			return "", err
		}
		_, nErr := name.Result()
		_, sErr := sample.Result()
		_, rErr := roots.Result()
		return guest.Text(fmt.Sprintf("%v | %v | %v", nErr, sErr, rErr)), nil
	})
	guest.Register(guest.Tool{Name: "call_raw_elicitation"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		q := guest.NewRawElicitation("Pick", json.RawMessage(`{"type":"object","properties":{"c":{"type":"string","oneOf":[{"const":"a","title":"A"}]}}}`)).WithKey("pick")
		if err := c.AskAll(q); err != nil {
			return "", err
		}
		a, err := q.Result()
		if err != nil {
			return "", err
		}
		return guest.Text(fmt.Sprintf("%s %v", a.Action, a.Content)), nil
	})
	guest.Register(guest.Tool{Name: "call_bad_raw_elicitation"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		return "", c.AskAll(guest.NewRawElicitation("Pick", json.RawMessage(`["not","an","object"]`)))
	})
	guest.Register(guest.Tool{Name: "call_detach", TaskSupport: guest.TaskOptional, DeferTask: true}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		return guest.Text(fmt.Sprint(c.Detach())), nil
	})
	guest.Register(guest.Tool{Name: "call_detach_plain", TaskSupport: guest.TaskOptional}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		return guest.Text(fmt.Sprint(c.Detach())), nil
	})
	guest.Register(guest.Tool{Name: "call_protocol_error"}, func(c *guest.Call, in struct {
		Kind string `json:"kind"`
	}) (guest.Text, error) {
		switch in.Kind {
		case "value":
			return "", guest.ProtocolError{Code: -32021, Message: "needs sampling", Data: map[string]any{"requiredCapabilities": map[string]any{"sampling": map[string]any{}}}}
		case "pointer":
			return "", fmt.Errorf("wrapped: %w", &guest.ProtocolError{Code: -32602, Message: "bad"})
		case "no code":
			return "", guest.ProtocolError{Message: "no code"}
		case "bad data":
			return "", guest.ProtocolError{Code: -1, Message: "m", Data: func() {}}
		}
		return "", errors.New("plain")
	})
	guest.Register(guest.Tool{Name: "call_raw_schema", InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer","x-extra":true}},"additionalProperties":false}`)},
		func(c *guest.Call, in struct {
			N int `json:"n"` // required by the struct, optional in the published schema
		}) (guest.Text, error) {
			return guest.Text(fmt.Sprint(in.N)), nil
		})
	guest.Register(guest.Tool{Name: "call_resources"}, func(c *guest.Call, _ struct{}) (guest.Result, error) {
		return guest.Result{Content: []guest.Content{
			guest.ResourceContent("test://t", "text/plain", "hi"),
			guest.ResourceBlobContent("test://b", "application/octet-stream", []byte{0, 1}),
		}}, nil
	})
}

func TestQuestionKeys(t *testing.T) {
	var seen []abi.InputRequest
	answer := func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		seen = batch
		return answerWith(`{"action":"accept","content":{"name":"Ada"}}`,
			`{"role":"assistant","content":{"type":"text","text":"Hi"},"model":"m"}`,
			`{"roots":[]}`)(batch)
	}
	tests := []struct {
		name     string
		keys     []string
		want     string // the errors the three questions hold
		wantKeys string // keys the host saw; "" if it was not asked
		wantErr  bool
	}{
		{"named", []string{"user_name", "greeting", "client_roots"}, "<nil> | <nil> | <nil>", "user_name,greeting,client_roots", false},
		{"some unnamed", []string{"a.b-c_9", "", ""}, "<nil> | <nil> | <nil>", "a.b-c_9,,", false},
		{"64 characters", []string{strings.Repeat("k", 64), "", ""}, "<nil> | <nil> | <nil>", strings.Repeat("k", 64) + ",,", false},
		{"65 characters", []string{strings.Repeat("k", 65), "", ""}, "is longer than 64 characters", "", true},
		{"bad character", []string{"user name", "", ""}, `question key "user name" contains ' '`, "", true},
		{"duplicate", []string{"k", "", "k"}, `question key "k" is used twice in one batch`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = nil
			args, _ := json.Marshal(map[string]any{"keys": tt.keys})
			res, err := (&guest.Bridge{Answer: answer}).Call("call_keys", string(args))
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError != tt.wantErr || !strings.Contains(res.Content[0].Text, tt.want) {
				t.Errorf("result = %+v, want isError %v and %q", res, tt.wantErr, tt.want)
			}
			var keys []string
			for _, req := range seen {
				keys = append(keys, req.Key)
			}
			if got := strings.Join(keys, ","); got != tt.wantKeys || (seen == nil) != (tt.wantKeys == "") {
				t.Errorf("host saw keys %q, want %q", got, tt.wantKeys)
			}
		})
	}
}

// TestAskAllUnsupported checks that a client without some capabilities
// fails exactly those questions, each with ErrUnsupported, and answers the
// rest: how a guest learns what a client can do.
func TestAskAllUnsupported(t *testing.T) {
	const ok, no = "<nil>", "the client does not support this request"
	answers := map[string]string{
		abi.MethodElicit:    `{"action":"accept","content":{"name":"Ada"}}`,
		abi.MethodSample:    `{"role":"assistant","content":{"type":"text","text":"Hi"},"model":"m"}`,
		abi.MethodListRoots: `{"roots":[]}`,
	}
	for _, tt := range []struct {
		supported []string
		want      [3]string
	}{
		{[]string{abi.MethodSample}, [3]string{no, ok, no}},
		{[]string{abi.MethodElicit, abi.MethodListRoots}, [3]string{ok, no, ok}},
		{nil, [3]string{no, no, no}},
	} {
		b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
			out := make([]abi.InputResponse, len(batch))
			for i, req := range batch {
				if strings.Contains(strings.Join(tt.supported, " "), req.Method) {
					out[i].Result = json.RawMessage(answers[req.Method])
				} else {
					out[i].Error = &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "undeclared"}
				}
			}
			return out, 0
		}}
		res, err := b.Call("call_keys", `{"keys":["user_name","greeting","client_roots"]}`)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(res.Content[0].Text, " | ")
		for i, w := range tt.want {
			if len(got) != 3 || !strings.Contains(got[i], w) {
				t.Errorf("supported %v: question %d holds %q, want %q", tt.supported, i, got, w)
			}
		}
	}
}

func TestRawElicitation(t *testing.T) {
	var seen abi.InputRequest
	b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		seen = batch[0]
		return answerWith(`{"action":"accept","content":{"c":"a"}}`)(batch)
	}}
	res, err := b.Call("call_raw_elicitation", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || res.Content[0].Text != "accept map[c:a]" {
		t.Errorf("result = %+v", res)
	}
	want := `{"message":"Pick","requestedSchema":{"type":"object","properties":{"c":{"type":"string","oneOf":[{"const":"a","title":"A"}]}}}}`
	if seen.Key != "pick" || seen.Method != abi.MethodElicit || string(seen.Params) != want {
		t.Errorf("host saw %s %s %s\nwant pick elicitation/create %s", seen.Key, seen.Method, seen.Params, want)
	}
	res, err = b.Call("call_bad_raw_elicitation", `{}`)
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].Text, `elicitation "Pick": the requested schema is not a JSON object`) {
		t.Errorf("bad schema: %+v, %v", res, err)
	}
}

func TestDetach(t *testing.T) {
	tests := []struct {
		tool   string
		detach func() bool
		want   string
	}{
		{"call_detach", func() bool { return true }, "true"},
		{"call_detach", func() bool { return false }, "false"},
		{"call_detach", nil, "false"},
		{"call_detach_plain", func() bool { panic("asked the host for a tool without DeferTask") }, "false"},
	}
	for _, tt := range tests {
		res, err := (&guest.Bridge{Detach: tt.detach}).Call(tt.tool, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if res.Content[0].Text != tt.want {
			t.Errorf("%s: Detach() = %s, want %s", tt.tool, res.Content[0].Text, tt.want)
		}
	}
	desc, _ := (&guest.Bridge{}).Describe()
	for _, tool := range desc.Tools {
		if tool.DeferTask != (tool.Name == "call_detach") {
			t.Errorf("tool %s: deferTask %v", tool.Name, tool.DeferTask)
		}
	}
}

func TestProtocolError(t *testing.T) {
	tests := []struct {
		kind, want string // want is the result as JSON
	}{
		{"value", `{"content":[],"error":{"code":-32021,"message":"needs sampling","data":{"requiredCapabilities":{"sampling":{}}}}}`},
		{"pointer", `{"content":[],"error":{"code":-32602,"message":"bad"}}`},
		{"no code", `{"content":[{"type":"text","text":"the tool failed with a protocol error without a code or a message: protocol error 0: no code"}],"isError":true}`},
		{"bad data", `{"content":[{"type":"text","text":"encoding the data of protocol error -1 (m): json: unsupported type: func()"}],"isError":true}`},
		{"plain", `{"content":[{"type":"text","text":"plain"}],"isError":true}`},
	}
	for _, tt := range tests {
		res, err := (&guest.Bridge{}).Call("call_protocol_error", `{"kind":"`+tt.kind+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(res); string(got) != tt.want {
			t.Errorf("%s: result = %s\nwant %s", tt.kind, got, tt.want)
		}
	}
}

func TestRawInputSchema(t *testing.T) {
	var b guest.Bridge
	desc, err := b.Describe()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range desc.Tools {
		if tool.Name == "call_raw_schema" && string(tool.InputSchema) != `{"type":"object","properties":{"n":{"type":"integer","x-extra":true}},"additionalProperties":false}` {
			t.Errorf("inputSchema = %s, want the raw schema verbatim", tool.InputSchema)
		}
	}
	// The published schema is the contract: the struct's required fields
	// are not checked, its types still are.
	for args, want := range map[string]string{`{}`: "0", `{"n":3}`: "3", `{"n":"x"}`: `field "n": got a JSON string, want an integer`} {
		res, err := b.Call("call_raw_schema", args)
		if err != nil || !strings.Contains(res.Content[0].Text, want) {
			t.Errorf("call %s = %+v, %v; want %q", args, res, err, want)
		}
	}
}

func TestResourceContent(t *testing.T) {
	res, err := (&guest.Bridge{}).Call("call_resources", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(res.Content)
	want := `[{"type":"resource","resource":{"uri":"test://t","mimeType":"text/plain","text":"hi"}},` +
		`{"type":"resource","resource":{"uri":"test://b","mimeType":"application/octet-stream","blob":"AAE="}}]`
	if string(got) != want {
		t.Errorf("content = %s\nwant %s", got, want)
	}
}
