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

type bridgeConfirm struct {
	OK bool `json:"ok"`
}

type bridgeName struct {
	Name string `json:"name"`
}

// Tools for the tests below, named bridge_* to keep clear of the examples.
func init() {
	guest.Register(guest.Tool{Name: "bridge_elicit"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		a, err := guest.Elicit[bridgeConfirm](c, "Sure?")
		if err != nil {
			return "", err
		}
		return guest.Text(fmt.Sprintf("%s %v", a.Action, a.Content.OK)), nil
	})
	guest.Register(guest.Tool{Name: "bridge_ask_all"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		name := guest.NewElicitation[bridgeName]("Name?")
		sample := guest.NewSampling(guest.SampleParams{Messages: []guest.SamplingMessage{{Role: "user", Content: guest.TextContent("Hi")}}})
		roots := guest.NewRootsRequest()
		if err := c.AskAll(name, sample, roots); err != nil {
			return "", err
		}
		n, nErr := name.Result()
		s, sErr := sample.Result()
		r, rErr := roots.Result()
		return guest.Text(fmt.Sprintf("%s %q %v | %q %q %v | %v %v", n.Action, n.Content.Name, nErr, s.Content.Text, s.Model, sErr, r, rErr)), nil
	})
	guest.Register(guest.Tool{Name: "bridge_too_many"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		qs := make([]guest.Question, abi.MaxInputBatch+1)
		for i := range qs {
			qs[i] = guest.NewRootsRequest()
		}
		err := c.AskAll(qs...)
		_, qErr := qs[0].(*guest.RootsRequest).Result()
		return "", fmt.Errorf("%v; first question: %v", err, qErr)
	})
	guest.Register(guest.Tool{Name: "bridge_bad_form"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		_, err := guest.Elicit[struct{ Tags []string }](c, "Tags?")
		return "", err
	})
	guest.Register(guest.Tool{Name: "bridge_notify"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		c.Logf(guest.LogWarning, "tool %s", c.Tool())
		c.Log(guest.LogDebug, strings.Repeat("x", abi.MaxLogSize+10))
		c.Progress(1, 2, "half")
		return guest.Text(fmt.Sprint(c.Cancelled())), nil
	})
	guest.Register(guest.Tool{Name: "bridge_panic"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		panic("boom")
	})
}

func answerWith(results ...string) func([]abi.InputRequest) ([]abi.InputResponse, abi.Status) {
	return func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		out := make([]abi.InputResponse, len(batch))
		for i := range batch {
			if strings.HasPrefix(results[i], "error:") {
				code, msg, _ := strings.Cut(strings.TrimPrefix(results[i], "error:"), ":")
				out[i].Error = &abi.InputError{Code: code, Message: msg}
			} else {
				out[i].Result = json.RawMessage(results[i])
			}
		}
		return out, 0
	}
}

func TestBridgeQuestions(t *testing.T) {
	tests := []struct {
		name, tool string
		answer     func([]abi.InputRequest) ([]abi.InputResponse, abi.Status)
		want       string
		wantError  bool
	}{
		{"accept", "bridge_elicit", answerWith(`{"action":"accept","content":{"ok":true}}`), "accept true", false},
		{"decline", "bridge_elicit", answerWith(`{"action":"decline"}`), "decline false", false},
		{"cancel", "bridge_elicit", answerWith(`{"action":"cancel"}`), "cancel false", false},
		{"unsupported", "bridge_elicit", nil, "elicitation/create: the client does not support this request: the test bridge answers nothing", true},
		{"failed", "bridge_elicit", answerWith(`error:failed:client said no`), "elicitation/create failed (failed): client said no", true},
		{"bad action", "bridge_elicit", answerWith(`{"action":"maybe"}`), `unknown action "maybe"`, true},
		{"bad content", "bridge_elicit", answerWith(`{"action":"accept","content":{"ok":"yes"}}`), "reading the elicitation answer", true},
		{"cancelled", "bridge_elicit", func([]abi.InputRequest) ([]abi.InputResponse, abi.Status) { return nil, abi.StatusCancelled },
			"the call was cancelled", true},
		{"batch", "bridge_ask_all", answerWith(
			`{"action":"accept","content":{"name":"Ada"}}`,
			`{"role":"assistant","content":{"type":"text","text":"Hello"},"model":"m1"}`,
			`{"roots":[{"uri":"file:///src","name":"src"}]}`),
			`accept "Ada" <nil> | "Hello" "m1" <nil> | [{file:///src src}] <nil>`, false},
		{"batch sampling array", "bridge_ask_all", answerWith(
			`{"action":"decline"}`,
			`{"role":"assistant","content":[{"type":"text","text":"Hi"}],"model":"m2"}`,
			`error:unsupported:no roots`),
			`decline "" <nil> | "Hi" "m2" <nil> | [] roots/list: the client does not support this request: no roots`, false},
		{"batch cancelled", "bridge_ask_all", func([]abi.InputRequest) ([]abi.InputResponse, abi.Status) { return nil, abi.StatusCancelled },
			"the call was cancelled", true},
		{"too many", "bridge_too_many", nil, "asking 17 questions at once: at most 16 fit in one batch; first question: asking 17", true},
		{"bad form", "bridge_bad_form", nil, `property "Tags" is not a string, number, integer, boolean or enum`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := guest.Bridge{Answer: tt.answer}
			res, err := b.Call(tt.tool, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError != tt.wantError || len(res.Content) != 1 || !strings.Contains(res.Content[0].Text, tt.want) {
				t.Errorf("result = %+v, want isError %v and text containing %q", res, tt.wantError, tt.want)
			}
		})
	}
}

func TestBridgeRequests(t *testing.T) {
	var batches [][]abi.InputRequest
	b := guest.Bridge{Answer: func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status) {
		batches = append(batches, batch)
		return nil, abi.StatusCancelled
	}}
	if _, err := b.Call("bridge_ask_all", `{}`); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || len(batches[0]) != 3 {
		t.Fatalf("batches = %v, want one of three", batches)
	}
	want := []abi.InputRequest{
		{Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"Name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}`)},
		{Method: abi.MethodSample, Params: json.RawMessage(`{"messages":[{"role":"user","content":{"type":"text","text":"Hi"}}],"maxTokens":1024}`)},
		{Method: abi.MethodListRoots, Params: json.RawMessage(`{}`)},
	}
	for i, req := range batches[0] {
		if req.Method != want[i].Method || string(req.Params) != string(want[i].Params) {
			t.Errorf("request %d = %s %s, want %s %s", i, req.Method, req.Params, want[i].Method, want[i].Params)
		}
	}
}

func TestBridgeNotifications(t *testing.T) {
	var logs []string
	var progress []abi.Progress
	b := guest.Bridge{
		Log:       func(level guest.LogLevel, msg string) { logs = append(logs, fmt.Sprintf("%d:%d", level, len(msg))) },
		Progress:  func(p abi.Progress) { progress = append(progress, p) },
		Cancelled: func() bool { return true },
	}
	res, err := b.Call("bridge_notify", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(logs); got != fmt.Sprintf("[3:%d 0:%d]", len("tool bridge_notify"), abi.MaxLogSize) {
		t.Errorf("logs = %s", got)
	}
	if len(progress) != 1 || progress[0] != (abi.Progress{Progress: 1, Total: 2, Message: "half"}) {
		t.Errorf("progress = %+v", progress)
	}
	if res.Content[0].Text != "true" {
		t.Errorf("Cancelled() = %s, want true", res.Content[0].Text)
	}
}

func TestBridgeProtocolErrors(t *testing.T) {
	var b guest.Bridge
	if _, err := b.Call("bridge_panic", `{}`); !errors.Is(err, guest.ErrTrap) || !strings.Contains(err.Error(), "panic: boom") {
		t.Errorf("panic: err = %v, want ErrTrap", err)
	}
	if _, err := b.Call("bridge_no_such_tool", `{}`); err == nil || !strings.Contains(err.Error(), `tool "bridge_no_such_tool": no such tool`) {
		t.Errorf("unknown tool: err = %v", err)
	}
}
