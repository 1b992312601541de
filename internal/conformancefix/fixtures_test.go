package conformancefix_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
)

// Copied from docs/research/conformance.md §6, not from the fixtures, so
// that a fixture drifting from the suite fails here.
const (
	png           = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	wav           = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
	schema2020_12 = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},"additionalProperties":false}`
	xMCPHeader    = `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"level":{"type":"integer"}}}`
)

// TestTools checks each fixture's tool list: names in order, task support,
// deferTask, descriptions, and the schemas the suite reads.
func TestTools(t *testing.T) {
	forbidden := func(names ...string) []toolWant {
		out := make([]toolWant, len(names))
		for i, n := range names {
			out[i] = toolWant{name: n, task: abi.TaskForbidden}
		}
		return out
	}
	tests := []struct {
		dir   string
		tools []toolWant
	}{
		{"core", forbidden("test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource",
			"test_multiple_content_types", "test_tool_with_logging", "test_error_handling", "test_tool_with_progress",
			"test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums",
			"json_schema_2020_12_tool", "test_x_mcp_header", "test_reconnection")},
		{"stateless", forbidden("test_missing_capability", "test_streaming_elicitation", "test_logging_tool",
			"test_trigger_tool_change", "test_trigger_prompt_change")},
		{"mrtr", forbidden("test_input_required_result_elicitation", "test_input_required_result_sampling",
			"test_input_required_result_list_roots", "test_input_required_result_request_state",
			"test_input_required_result_multiple_inputs", "test_input_required_result_multi_round",
			"test_input_required_result_tampered_state", "test_input_required_result_capabilities")},
		{"tasks", []toolWant{
			{name: "greet", task: abi.TaskForbidden},
			{name: "slow_compute", task: abi.TaskOptional},
			{name: "failing_job", task: abi.TaskRequired},
			{name: "protocol_error_job", task: abi.TaskRequired},
			{name: "confirm_delete", task: abi.TaskOptional},
			{name: "multi_input", task: abi.TaskOptional},
			{name: "test_tool_with_task", task: abi.TaskRequired, deferTask: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			tools := load(t, tt.dir).Tools()
			var got, want []string
			for _, tool := range tools {
				got = append(got, fmt.Sprintf("%s %s defer=%v", tool.Name, tool.TaskSupport, tool.DeferTask))
				if strings.TrimSpace(tool.Description) == "" {
					t.Errorf("tool %s has no description", tool.Name)
				}
			}
			for _, w := range tt.tools {
				want = append(want, fmt.Sprintf("%s %s defer=%v", w.name, w.task, w.deferTask))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("tools:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

type toolWant struct {
	name      string
	task      abi.TaskSupport
	deferTask bool
}

// TestSchemas checks the input schemas the suite looks at.
func TestSchemas(t *testing.T) {
	schemas := map[string]string{}
	for _, dir := range []string{"core", "tasks"} {
		for _, tool := range load(t, dir).Tools() {
			schemas[tool.Name] = string(tool.InputSchema)
		}
	}
	for tool, want := range map[string]string{
		// Verbatim, key order included.
		"json_schema_2020_12_tool": schema2020_12,
		"test_x_mcp_header":        xMCPHeader,
		// A call without arguments must do.
		"test_simple_text": `{"type":"object","properties":{}}`,
		// label is optional and extra arguments are not refused.
		"slow_compute": `{"type":"object","properties":{"seconds":{"type":"number","description":"How long to compute, in seconds.","minimum":0},` +
			`"label":{"type":"string","description":"A label to tell runs apart."}},"required":["seconds"]}`,
		"greet":          `{"type":"object","properties":{"name":{"type":"string","description":"Who to greet."}},"required":["name"]}`,
		"confirm_delete": `{"type":"object","properties":{"filename":{"type":"string","description":"The file to delete."}},"required":["filename"]}`,
		"test_sampling":  `{"type":"object","properties":{"prompt":{"type":"string","description":"The prompt to send to the client's model."}},"required":["prompt"]}`,
	} {
		if got := schemas[tool]; got != want {
			t.Errorf("%s inputSchema:\n%s\nwant:\n%s", tool, got, want)
		}
	}
}

// call is one Plugin.Call and what must come of it.
type call struct {
	name, tool, args string
	env              *env
	want             string // the text of content[0], exactly; "" to skip
	wantIsError      bool
	wantKeys         string // env.keys(): the keys of each batch asked
	check            func(t *testing.T, res *abi.CallResult, e *env)
}

// run makes the calls in parallel, each on its own instance.
func run(t *testing.T, p *host.Plugin, calls []call) {
	for _, c := range calls {
		name := c.name
		if name == "" {
			name = c.tool
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := c.env
			if e == nil {
				e = &env{}
			}
			res, err := p.Call(context.Background(), c.tool, json.RawMessage(c.args), e)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if c.want != "" && (len(res.Content) == 0 || res.Content[0].Text != c.want) {
				t.Errorf("content = %+v, want text %q", res.Content, c.want)
			}
			if res.IsError != c.wantIsError {
				t.Errorf("isError = %v, want %v", res.IsError, c.wantIsError)
			}
			if got := e.keys(); got != c.wantKeys {
				t.Errorf("asked keys %q, want %q", got, c.wantKeys)
			}
			if c.check != nil {
				c.check(t, res, e)
			}
		})
	}
}

func TestCore(t *testing.T) {
	p := load(t, "core")
	content := func(want ...string) func(*testing.T, *abi.CallResult, *env) {
		return func(t *testing.T, res *abi.CallResult, _ *env) {
			var got []string
			for _, c := range res.Content {
				b, _ := json.Marshal(c)
				got = append(got, string(b))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("content:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	image := `{"type":"image","data":"` + png + `","mimeType":"image/png"}`
	run(t, p, []call{
		{tool: "test_simple_text", want: "This is a simple text response for testing."},
		{tool: "test_image_content", args: `{}`, check: content(image)},
		{tool: "test_audio_content", args: `{}`, check: content(`{"type":"audio","data":"` + wav + `","mimeType":"audio/wav"}`)},
		{tool: "test_embedded_resource", args: `{}`, check: content(
			`{"type":"resource","resource":{"uri":"test://embedded-resource","mimeType":"text/plain","text":"This is an embedded resource content."}}`)},
		{tool: "test_multiple_content_types", args: `{}`, check: content(
			`{"type":"text","text":"Multiple content types test:"}`, image,
			`{"type":"resource","resource":{"uri":"test://mixed-content-resource","mimeType":"application/json","text":"{\"test\":\"data\",\"value\":123}"}}`)},
		{tool: "test_error_handling", args: `{}`, want: "This tool intentionally returns an error for testing", wantIsError: true},
		{tool: "test_tool_with_logging", args: `{}`, check: func(t *testing.T, _ *abi.CallResult, e *env) {
			want := "log:Tool execution started|log:Tool processing data|log:Tool execution completed"
			if got := strings.Join(e.events, "|"); got != want {
				t.Errorf("events %q, want %q", got, want)
			}
		}},
		{tool: "test_tool_with_progress", args: `{}`, check: func(t *testing.T, _ *abi.CallResult, e *env) {
			if got := fmt.Sprint(e.progress); got != "[{0 100 } {50 100 } {100 100 }]" {
				t.Errorf("progress %s, want 0, 50, 100 of 100", got)
			}
		}},
		{tool: "test_sampling", args: `{"prompt":"Test prompt for sampling"}`,
			env:  &env{script: map[string][]string{"sampling-1": {`{"role":"assistant","content":{"type":"text","text":"This is a test response from the client"},"model":"test-model","stopReason":"endTurn"}`}}},
			want: "LLM response: This is a test response from the client", wantKeys: "sampling-1",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := `{"messages":[{"role":"user","content":{"type":"text","text":"Test prompt for sampling"}}],"maxTokens":100}`
				if len(e.batches) != 1 || e.batches[0][0].Method != abi.MethodSample || string(e.batches[0][0].Params) != want {
					t.Errorf("asked %+v, want one sampling/createMessage %s", e.batches, want)
				}
			}},
		{tool: "test_elicitation", args: `{"message":"Please provide your information"}`,
			env:      &env{script: map[string][]string{"elicitation-1": {`{"action":"accept","content":{"username":"testuser","email":"test@example.com"}}`}}},
			want:     `User response: action=accept, content={"username":"testuser","email":"test@example.com"}`,
			wantKeys: "elicitation-1",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := `{"message":"Please provide your information","requestedSchema":{"type":"object","properties":{` +
					`"username":{"type":"string","description":"User's response"},"email":{"type":"string","description":"User's email address"}},` +
					`"required":["username","email"]}}`
				if got := string(e.params("elicitation-1")); got != want {
					t.Errorf("params:\n%s\nwant:\n%s", got, want)
				}
			}},
		{tool: "test_elicitation_sep1034_defaults", args: `{}`,
			env:      &env{script: map[string][]string{"elicitation-1": {`{"action":"accept","content":{"name":"Jane Smith","age":25,"score":88,"status":"inactive","verified":false}}`}}},
			want:     `Elicitation completed: action=accept, content={"name":"Jane Smith","age":25,"score":88,"status":"inactive","verified":false}`,
			wantKeys: "elicitation-1",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				props := requestedProperties(t, e.params("elicitation-1"))
				for name, want := range map[string]string{
					"name": `"string" "John Doe"`, "age": `"integer" 30`, "score": `"number" 95.5`,
					"status": `"string" "active"`, "verified": `"boolean" true`,
				} {
					if got := string(props[name]["type"]) + " " + string(props[name]["default"]); got != want {
						t.Errorf("property %s: type and default %s, want %s", name, got, want)
					}
				}
				if !strings.Contains(string(props["status"]["enum"]), `"active"`) {
					t.Errorf("status enum %s lacks its default", props["status"]["enum"])
				}
			}},
		{tool: "test_elicitation_sep1330_enums", args: `{}`,
			env:      &env{script: map[string][]string{"elicitation-1": {`{"action":"accept","content":{"untitledSingle":"option1","titledMulti":["value2"]}}`}}},
			want:     `Elicitation completed: action=accept, content={"titledMulti":["value2"],"untitledSingle":"option1"}`,
			wantKeys: "elicitation-1",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				checkEnums(t, requestedProperties(t, e.params("elicitation-1")))
			}},
		{tool: "json_schema_2020_12_tool", args: `{"name":"x","email":"x@example.com"}`, want: "JSON Schema 2020-12 tool called"},
		{tool: "test_x_mcp_header", args: `{"region":"Hello","level":2}`, want: "region=Hello"},
		{tool: "test_reconnection", args: `{}`, want: "Reconnection test completed"},
	})
}

// requestedProperties returns the properties of an elicitation's
// requestedSchema, each as its keywords.
func requestedProperties(t *testing.T, params json.RawMessage) map[string]map[string]json.RawMessage {
	t.Helper()
	var p struct {
		RequestedSchema struct {
			Type       string                                `json:"type"`
			Properties map[string]map[string]json.RawMessage `json:"properties"`
		} `json:"requestedSchema"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.RequestedSchema.Type != "object" {
		t.Fatalf("params %s: %v", params, err)
	}
	return p.RequestedSchema.Properties
}

// checkEnums applies elicitation-sep1330-enums' checks.
func checkEnums(t *testing.T, props map[string]map[string]json.RawMessage) {
	t.Helper()
	titled := func(raw json.RawMessage) bool {
		var opts []map[string]any
		if json.Unmarshal(raw, &opts) != nil || len(opts) == 0 {
			return false
		}
		for _, o := range opts {
			if _, ok := o["const"].(string); !ok {
				return false
			}
			if _, ok := o["title"].(string); !ok {
				return false
			}
		}
		return true
	}
	items := func(name string) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		json.Unmarshal(props[name]["items"], &m)
		return m
	}
	var enumNames, enum []string
	json.Unmarshal(props["legacyEnum"]["enumNames"], &enumNames)
	json.Unmarshal(props["legacyEnum"]["enum"], &enum)
	for what, ok := range map[string]bool{
		"untitledSingle: string with enum, no oneOf or enumNames": string(props["untitledSingle"]["type"]) == `"string"` &&
			props["untitledSingle"]["enum"] != nil && props["untitledSingle"]["oneOf"] == nil && props["untitledSingle"]["enumNames"] == nil,
		"titledSingle: string with oneOf of const and title, no enum": string(props["titledSingle"]["type"]) == `"string"` &&
			titled(props["titledSingle"]["oneOf"]) && props["titledSingle"]["enum"] == nil,
		"legacyEnum: string with enum and enumNames of equal length": string(props["legacyEnum"]["type"]) == `"string"` &&
			len(enum) == 3 && len(enumNames) == len(enum),
		"untitledMulti: array of string enum items, no items.anyOf": string(props["untitledMulti"]["type"]) == `"array"` &&
			string(items("untitledMulti")["type"]) == `"string"` && items("untitledMulti")["enum"] != nil && items("untitledMulti")["anyOf"] == nil,
		"titledMulti: array with items.anyOf of const and title, no items.enum": string(props["titledMulti"]["type"]) == `"array"` &&
			titled(items("titledMulti")["anyOf"]) && items("titledMulti")["enum"] == nil,
	} {
		if !ok {
			t.Errorf("%s; got %v", what, props)
		}
	}
}

func TestStateless(t *testing.T) {
	p := load(t, "stateless")
	run(t, p, []call{
		{name: "missing capability", tool: "test_missing_capability", args: `{}`,
			env:      &env{script: map[string][]string{"sampling-1": {unsupported}}},
			wantKeys: "sampling-1",
			check: func(t *testing.T, res *abi.CallResult, _ *env) {
				e := res.Error
				if e == nil || e.Code != -32021 || e.Message == "" || string(e.Data) != `{"requiredCapabilities":{"sampling":{}}}` {
					t.Errorf("error = %+v (data %s), want -32021 with requiredCapabilities.sampling", e, e.Data)
				}
			}},
		{name: "capability present", tool: "test_missing_capability", args: `{}`,
			env:  &env{script: map[string][]string{"sampling-1": {hello}}},
			want: "Sampling response: Hello there!", wantKeys: "sampling-1",
			check: func(t *testing.T, res *abi.CallResult, _ *env) {
				if res.Error != nil {
					t.Errorf("error = %+v, want none", res.Error)
				}
			}},
		{tool: "test_streaming_elicitation", args: `{}`, want: "No elicitation needed: this tool only streams its result."},
		{tool: "test_logging_tool", args: `{}`, want: "Logged one info message.", check: func(t *testing.T, _ *abi.CallResult, e *env) {
			if len(e.events) != 1 || !strings.HasPrefix(e.events[0], "log:") {
				t.Errorf("events %q, want one log line", e.events)
			}
		}},
		{tool: "test_trigger_tool_change", args: `{}`, want: "Tool list change triggered."},
		{tool: "test_trigger_prompt_change", args: `{}`, want: "Prompt list change triggered."},
	})
}

func TestMRTR(t *testing.T) {
	p := load(t, "mrtr")
	const prefix = "test_input_required_result_"
	okTrue := `{"action":"accept","content":{"ok":true}}`
	run(t, p, []call{
		{name: "elicitation", tool: prefix + "elicitation", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {aliceName}}},
			want: "Hello, Alice!", wantKeys: "user_name",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := `{"message":"What is your name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}`
				if got := string(e.params("user_name")); got != want || e.batches[0][0].Method != abi.MethodElicit {
					t.Errorf("asked %s %s, want elicitation/create %s", e.batches[0][0].Method, got, want)
				}
			}},
		// validate-input: a bare number, null, a decline, an empty name
		// are asked again, never completed.
		{name: "elicitation unusable answers", tool: prefix + "elicitation", args: `{}`,
			env: &env{script: map[string][]string{"user_name": {
				`12345`, `null`, `{"action":"decline"}`, `{"action":"accept","content":{"name":""}}`, `{"action":"accept"}`, aliceName}}},
			want: "Hello, Alice!", wantKeys: "user_name|user_name|user_name|user_name|user_name|user_name"},
		{name: "sampling", tool: prefix + "sampling", args: `{}`,
			env:  &env{script: map[string][]string{"capital_question": {paris}}},
			want: "Sampling response: The capital of France is Paris.", wantKeys: "capital_question",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := `{"messages":[{"role":"user","content":{"type":"text","text":"What is the capital of France?"}}],"maxTokens":100}`
				if got := string(e.params("capital_question")); got != want {
					t.Errorf("params %s, want %s", got, want)
				}
			}},
		{name: "list roots", tool: prefix + "list_roots", args: `{}`,
			env:  &env{script: map[string][]string{"client_roots": {testRoot}}},
			want: "Client exposed 1 root(s): file:///test/root", wantKeys: "client_roots"},
		{name: "request state", tool: prefix + "request_state", args: `{}`,
			env:  &env{script: map[string][]string{"confirm": {okTrue}}},
			want: "state-ok: confirmed=true", wantKeys: "confirm",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := `{"message":"Please confirm","requestedSchema":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}}`
				if got := string(e.params("confirm")); got != want {
					t.Errorf("params %s, want %s", got, want)
				}
			}},
		{name: "tampered state", tool: prefix + "tampered_state", args: `{}`,
			env:  &env{script: map[string][]string{"confirm": {okTrue}}},
			want: "state-ok: confirmed=true", wantKeys: "confirm"},
		{name: "multiple inputs", tool: prefix + "multiple_inputs", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {aliceName}, "greeting": {hello}, "client_roots": {testRoot}}},
			want: "Hello there! Alice — 1 root(s) visible", wantKeys: "user_name,greeting,client_roots",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := `{"messages":[{"role":"user","content":{"type":"text","text":"Generate a greeting"}}],"maxTokens":50}`
				if got := string(e.params("greeting")); got != want {
					t.Errorf("greeting params %s, want %s", got, want)
				}
			}},
		{name: "multiple inputs, one asked again", tool: prefix + "multiple_inputs", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {`12345`, aliceName}, "greeting": {hello}, "client_roots": {testRoot}}},
			want: "Hello there! Alice — 1 root(s) visible", wantKeys: "user_name,greeting,client_roots|user_name"},
		{name: "multi round", tool: prefix + "multi_round", args: `{}`,
			env:  &env{script: map[string][]string{"step1": {aliceName}, "step2": {`{"action":"accept","content":{"color":"blue"}}`}}},
			want: "Multi-round complete: Alice likes blue", wantKeys: "step1|step2",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				if got := string(e.params("step2")); !strings.Contains(got, `"message":"Step 2: What is your favorite color?"`) ||
					!strings.Contains(got, `"properties":{"color":{"type":"string"}}`) {
					t.Errorf("step2 params %s", got)
				}
			}},
		// capability-check: a client with sampling only gets no elicitation.
		{name: "capabilities: sampling only", tool: prefix + "capabilities", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {unsupported}, "greeting": {hello}, "client_roots": {unsupported}}},
			want: "Capability-aware input requests fulfilled", wantKeys: "user_name,greeting,client_roots"},
		{name: "capabilities: all", tool: prefix + "capabilities", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {aliceName}, "greeting": {hello}, "client_roots": {testRoot}}},
			want: "Capability-aware input requests fulfilled", wantKeys: "user_name,greeting,client_roots"},
		{name: "capabilities: none", tool: prefix + "capabilities", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {unsupported}, "greeting": {unsupported}, "client_roots": {unsupported}}},
			want: "The client declared none of elicitation, sampling and roots: nothing to ask.", wantKeys: "user_name,greeting,client_roots"},
	})
}

func TestTasks(t *testing.T) {
	p := load(t, "tasks")
	run(t, p, []call{
		{tool: "greet", args: `{"name":"World"}`, want: "Hello, World!"},
		{name: "slow_compute 0", tool: "slow_compute", args: `{"seconds":0}`, want: "Computed in 0s"},
		{name: "slow_compute label", tool: "slow_compute", args: `{"seconds":0.2,"label":"wire-fields"}`, want: "Computed wire-fields in 0.2s"},
		{tool: "failing_job", args: `{}`, want: "failing_job failed on purpose", wantIsError: true},
		{name: "confirm_delete yes", tool: "confirm_delete", args: `{"filename":"mrtr-resume.txt"}`,
			env:  &env{script: map[string][]string{"confirm": {`{"action":"accept","content":{"confirm":true}}`}}},
			want: "Not deleted mrtr-resume.txt: this conformance fixture deletes nothing", wantKeys: "confirm"},
		{name: "confirm_delete no", tool: "confirm_delete", args: `{"filename":"a.txt"}`,
			env:  &env{script: map[string][]string{"confirm": {`{"action":"decline"}`}}},
			want: "Kept a.txt", wantKeys: "confirm"},
		// The suite answers both questions alike, without a colour.
		{tool: "multi_input", args: `{}`,
			env: &env{script: map[string][]string{
				"name":    {`{"action":"accept","content":{"name":"partial-1","confirm":true}}`},
				"confirm": {`{"action":"accept","content":{"name":"partial-2","confirm":true}}`}}},
			want: "name: partial-1 (accept), confirm: true (accept)", wantKeys: "name,confirm"},
		{name: "test_tool_with_task detached", tool: "test_tool_with_task", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {aliceName}}, detach: true},
			want: "Hello, Alice! Your task is complete.", wantKeys: "user_name",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				want := "input:user_name|detach|log:got the name; running as a task: true"
				if got := strings.Join(e.events, "|"); got != want {
					t.Errorf("events %q, want %q", got, want)
				}
				want = `{"message":"What is your name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}`
				if got := string(e.params("user_name")); got != want {
					t.Errorf("params %s, want %s", got, want)
				}
			}},
		{name: "test_tool_with_task kept synchronous", tool: "test_tool_with_task", args: `{}`,
			env:  &env{script: map[string][]string{"user_name": {`{"action":"cancel"}`, aliceName}}},
			want: "Hello, Alice! Your task is complete.", wantKeys: "user_name|user_name",
			check: func(t *testing.T, _ *abi.CallResult, e *env) {
				if got := strings.Join(e.events, "|"); !strings.Contains(got, "|detach|log:got the name; running as a task: false") {
					t.Errorf("events %q", got)
				}
			}},
	})
}

func TestTasksProtocolError(t *testing.T) {
	p := load(t, "tasks")
	_, err := p.Call(context.Background(), "protocol_error_job", nil, &env{})
	if !errors.Is(err, host.ErrGuestTrapped) || !strings.Contains(err.Error(), "panic: protocol_error_job trapped on purpose") {
		t.Errorf("err = %v, want a trap with the panic", err)
	}
}

// TestSlowComputeCancel cancels a 60 s slow_compute at its first progress
// report: the call must end within a few seconds, as tasks-lifecycle needs.
func TestSlowComputeCancel(t *testing.T) {
	p := load(t, "tasks")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled time.Time
	e := &env{onProgress: func(abi.Progress) {
		if cancelled.IsZero() {
			cancelled = time.Now()
			cancel()
		}
	}}
	_, err := p.Call(ctx, "slow_compute", json.RawMessage(`{"seconds":60,"label":"lifecycle-cancel"}`), e)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(cancelled); took > 3*time.Second {
		t.Errorf("the call ended %v after it was cancelled", took)
	}
}
