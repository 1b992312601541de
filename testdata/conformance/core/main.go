// Command core holds the conformance suite's fixture tools for the core
// scenarios (docs/research/conformance.md §6.1): one per content type,
// logging, progress, tool errors, sampling, elicitation with SEP-1034
// defaults and SEP-1330 enums, a verbatim JSON Schema 2020-12 input schema,
// an x-mcp-header parameter and a slow call for SSE reconnection.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// Payloads the reference servers use: a 1×1 PNG and an empty WAV.
const (
	pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	wavBase64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
)

// The content blocks, built from the payloads as the suite spells them.
var (
	pngContent = guest.Content{Type: "image", Data: pngBase64, MimeType: "image/png"}
	wavContent = guest.Content{Type: "audio", Data: wavBase64, MimeType: "audio/wav"}
)

// SamplingIn is test_sampling's input.
type SamplingIn struct {
	Prompt string `json:"prompt" description:"The prompt to send to the client's model."`
}

// ElicitationIn is test_elicitation's input.
type ElicitationIn struct {
	Message string `json:"message" description:"The message to show the user."`
}

// UserInfo is test_elicitation's form, exactly as the suite expects it.
type UserInfo struct {
	Username string `json:"username" description:"User's response"`
	Email    string `json:"email" description:"User's email address"`
}

// DefaultsForm is the SEP-1034 form: every kind of property with a default.
type DefaultsForm struct {
	Name     string  `json:"name" description:"User name" jsonschema:"default=John Doe,optional"`
	Age      int     `json:"age" description:"User age" jsonschema:"default=30,optional"`
	Score    float64 `json:"score" description:"User score" jsonschema:"default=95.5,optional"`
	Status   string  `json:"status" description:"User status" jsonschema:"enum=active|inactive|pending,default=active,optional"`
	Verified bool    `json:"verified" description:"Verification status" jsonschema:"default=true,optional"`
}

// enumsSchema is the SEP-1330 form: every enum shape MCP 2025-11-25 allows.
const enumsSchema = `{"type":"object","properties":{` +
	`"untitledSingle":{"type":"string","description":"Untitled single-select enum","enum":["option1","option2","option3"]},` +
	`"titledSingle":{"type":"string","description":"Titled single-select enum","oneOf":[` +
	`{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},` +
	`"legacyEnum":{"type":"string","description":"Legacy titled enum","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},` +
	`"untitledMulti":{"type":"array","description":"Untitled multi-select enum","items":{"type":"string","enum":["option1","option2","option3"]}},` +
	`"titledMulti":{"type":"array","description":"Titled multi-select enum","items":{"anyOf":[` +
	`{"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}` +
	`}}`

// schema202012 is json_schema_2020_12_tool's input schema, which tools/list
// must return verbatim.
const schema202012 = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},` +
	`"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},` +
	`"phone":{"type":"string"},"email":{"type":"string"}},` +
	`"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],` +
	`"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},` +
	`"additionalProperties":false}`

// headerSchema is test_x_mcp_header's input schema: region travels in the
// Mcp-Param-Region HTTP header as well as in the body.
const headerSchema = `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"level":{"type":"integer"}}}`

// HeaderIn is test_x_mcp_header's input.
type HeaderIn struct {
	Region string `json:"region"`
	Level  int    `json:"level"`
}

type none struct{}

func simpleText(*guest.Call, none) (guest.Text, error) {
	return "This is a simple text response for testing.", nil
}

func imageContent(*guest.Call, none) (guest.Result, error) {
	return guest.Result{Content: []guest.Content{pngContent}}, nil
}

func audioContent(*guest.Call, none) (guest.Result, error) {
	return guest.Result{Content: []guest.Content{wavContent}}, nil
}

func embeddedResource(*guest.Call, none) (guest.Result, error) {
	return guest.Result{Content: []guest.Content{
		guest.ResourceContent("test://embedded-resource", "text/plain", "This is an embedded resource content."),
	}}, nil
}

func multipleContentTypes(*guest.Call, none) (guest.Result, error) {
	return guest.Result{Content: []guest.Content{
		guest.TextContent("Multiple content types test:"),
		pngContent,
		guest.ResourceContent("test://mixed-content-resource", "application/json", `{"test":"data","value":123}`),
	}}, nil
}

// toolWithLogging logs three info lines about 50 ms apart.
func toolWithLogging(c *guest.Call, _ none) (guest.Text, error) {
	c.Log(guest.LogInfo, "Tool execution started")
	time.Sleep(50 * time.Millisecond)
	c.Log(guest.LogInfo, "Tool processing data")
	time.Sleep(50 * time.Millisecond)
	c.Log(guest.LogInfo, "Tool execution completed")
	return "Tool with logging executed successfully", nil
}

func errorHandling(*guest.Call, none) (guest.Text, error) {
	return "", errors.New("This tool intentionally returns an error for testing")
}

// toolWithProgress reports 0, 50 and 100 of 100 about 50 ms apart; the host
// forwards them only if the client sent a progress token.
func toolWithProgress(c *guest.Call, _ none) (guest.Text, error) {
	c.Progress(0, 100, "")
	time.Sleep(50 * time.Millisecond)
	c.Progress(50, 100, "")
	time.Sleep(50 * time.Millisecond)
	c.Progress(100, 100, "")
	return "Progress test completed", nil
}

func sampling(c *guest.Call, in SamplingIn) (guest.Text, error) {
	reply, err := guest.Sample(c, guest.SampleParams{
		Messages:  []guest.SamplingMessage{{Role: "user", Content: guest.TextContent(in.Prompt)}},
		MaxTokens: 100,
	})
	if err != nil {
		return "", fmt.Errorf("sampling: %w", err)
	}
	return guest.Text("LLM response: " + reply.Content.Text), nil
}

func elicitation(c *guest.Call, in ElicitationIn) (guest.Text, error) {
	answer, err := guest.Elicit[UserInfo](c, in.Message)
	if err != nil {
		return "", fmt.Errorf("elicitation: %w", err)
	}
	return guest.Text(fmt.Sprintf("User response: action=%s, content=%s", answer.Action, jsonText(answer.Content))), nil
}

func elicitationDefaults(c *guest.Call, _ none) (guest.Text, error) {
	answer, err := guest.Elicit[DefaultsForm](c, "Please review and update the form fields with defaults")
	if err != nil {
		return "", fmt.Errorf("elicitation: %w", err)
	}
	return guest.Text(fmt.Sprintf("Elicitation completed: action=%s, content=%s", answer.Action, jsonText(answer.Content))), nil
}

func elicitationEnums(c *guest.Call, _ none) (guest.Text, error) {
	q := guest.NewRawElicitation("Please select options from the enum fields", json.RawMessage(enumsSchema))
	if err := c.AskAll(q); err != nil {
		return "", fmt.Errorf("elicitation: %w", err)
	}
	answer, err := q.Result()
	if err != nil {
		return "", fmt.Errorf("elicitation: %w", err)
	}
	return guest.Text(fmt.Sprintf("Elicitation completed: action=%s, content=%s", answer.Action, jsonText(answer.Content))), nil
}

func schema202012Tool(*guest.Call, none) (guest.Text, error) {
	return "JSON Schema 2020-12 tool called", nil
}

func xMCPHeader(_ *guest.Call, in HeaderIn) (guest.Text, error) {
	return guest.Text("region=" + in.Region), nil
}

// reconnection takes long enough for the host to cut the SSE stream and
// the client to reconnect; the sleep ends early if the call is cancelled.
func reconnection(c *guest.Call, _ none) (guest.Text, error) {
	for range 5 {
		if c.Cancelled() {
			return "", guest.ErrCancelled
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "Reconnection test completed", nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func init() {
	// test_simple_text first: http-header-validation calls the first tool
	// in tools/list with {}.
	guest.Register(guest.Tool{Name: "test_simple_text", Description: "Returns a simple text response."}, simpleText)
	guest.Register(guest.Tool{Name: "test_image_content", Description: "Returns a 1x1 PNG image."}, imageContent)
	guest.Register(guest.Tool{Name: "test_audio_content", Description: "Returns a short WAV audio clip."}, audioContent)
	guest.Register(guest.Tool{Name: "test_embedded_resource", Description: "Returns an embedded text resource."}, embeddedResource)
	guest.Register(guest.Tool{Name: "test_multiple_content_types", Description: "Returns text, an image and an embedded resource."}, multipleContentTypes)
	guest.Register(guest.Tool{Name: "test_tool_with_logging", Description: "Logs three info messages while it runs."}, toolWithLogging)
	guest.Register(guest.Tool{Name: "test_error_handling", Description: "Always fails with a tool error."}, errorHandling)
	guest.Register(guest.Tool{Name: "test_tool_with_progress", Description: "Reports progress 0, 50 and 100 of 100."}, toolWithProgress)
	guest.Register(guest.Tool{Name: "test_sampling", Description: "Asks the client's model to answer a prompt."}, sampling)
	guest.Register(guest.Tool{Name: "test_elicitation", Description: "Asks the user for a username and an email address."}, elicitation)
	guest.Register(guest.Tool{Name: "test_elicitation_sep1034_defaults", Description: "Asks the user to fill in a form whose fields have defaults (SEP-1034)."}, elicitationDefaults)
	guest.Register(guest.Tool{Name: "test_elicitation_sep1330_enums", Description: "Asks the user to pick from every kind of enum (SEP-1330)."}, elicitationEnums)
	guest.Register(guest.Tool{Name: "json_schema_2020_12_tool", Description: "Has a JSON Schema 2020-12 input schema with $defs, allOf, if/then/else.",
		InputSchema: json.RawMessage(schema202012)}, schema202012Tool)
	guest.Register(guest.Tool{Name: "test_x_mcp_header", Description: "Echoes the region parameter, which also travels in an HTTP header.",
		InputSchema: json.RawMessage(headerSchema)}, xMCPHeader)
	guest.Register(guest.Tool{Name: "test_reconnection", Description: "Runs for half a second, long enough for the client to reconnect."}, reconnection)
}

func main() {}
