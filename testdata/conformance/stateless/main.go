// Command stateless holds the conformance suite's diagnostic tools for the
// server-stateless scenario (docs/research/conformance.md §6.2). Apart from
// test_missing_capability they only return text: what they test (list
// change notifications, dropped log lines, no server-to-client requests) is
// the host's doing.
package main

import (
	"errors"
	"fmt"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

type none struct{}

// missingCapability needs sampling. A client that did not declare it gets
// the JSON-RPC error MCP prescribes, -32021 with the capability it lacks.
func missingCapability(c *guest.Call, _ none) (guest.Text, error) {
	reply, err := guest.Sample(c, guest.SampleParams{
		Messages:  []guest.SamplingMessage{{Role: "user", Content: guest.TextContent("Say hello.")}},
		MaxTokens: 50,
	})
	if errors.Is(err, guest.ErrUnsupported) {
		return "", guest.ProtocolError{
			Code:    -32021,
			Message: "Missing required client capability: sampling",
			Data:    map[string]any{"requiredCapabilities": map[string]any{"sampling": map[string]any{}}},
		}
	}
	if err != nil {
		return "", fmt.Errorf("sampling: %w", err)
	}
	return guest.Text("Sampling response: " + reply.Content.Text), nil
}

func streamingElicitation(*guest.Call, none) (guest.Text, error) {
	return "No elicitation needed: this tool only streams its result.", nil
}

// loggingTool logs at info; with no log level in the request's _meta the
// host must not pass the line on.
func loggingTool(c *guest.Call, _ none) (guest.Text, error) {
	c.Log(guest.LogInfo, "test_logging_tool logged at info")
	return "Logged one info message.", nil
}

func triggerToolChange(*guest.Call, none) (guest.Text, error) {
	return "Tool list change triggered.", nil
}

func triggerPromptChange(*guest.Call, none) (guest.Text, error) {
	return "Prompt list change triggered.", nil
}

func init() {
	guest.Register(guest.Tool{Name: "test_missing_capability", Description: "Needs the sampling capability; fails with -32021 without it."}, missingCapability)
	guest.Register(guest.Tool{Name: "test_streaming_elicitation", Description: "Returns text without sending any request to the client."}, streamingElicitation)
	guest.Register(guest.Tool{Name: "test_logging_tool", Description: "Logs one info message."}, loggingTool)
	guest.Register(guest.Tool{Name: "test_trigger_tool_change", Description: "Makes the server announce a tool list change."}, triggerToolChange)
	guest.Register(guest.Tool{Name: "test_trigger_prompt_change", Description: "Makes the server announce a prompt list change."}, triggerPromptChange)
}

func main() {}
