// Command prompts_resources holds the conformance suite's prompts and
// resources (docs/research/conformance.md §6.5, and the MRTR prompt of
// §6.3): static text and binary resources, a watched resource, one
// template, four plain prompts and one that asks the client for context
// before it renders.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// png is the suite's 1×1 PNG.
const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="

// maxRounds bounds how often the MRTR prompt asks again.
const maxRounds = 10

// ContextForm is the MRTR prompt's form (no field docs: a description
// would change the schema).
type ContextForm struct {
	Context string `json:"context"`
}

func pngBytes() []byte {
	b, err := base64.StdEncoding.DecodeString(png)
	if err != nil {
		panic(err)
	}
	return b
}

func text(s string) guest.PromptResult {
	return guest.PromptResult{Messages: []guest.PromptMessage{guest.UserMessage(guest.TextContent(s))}}
}

func init() {
	guest.RegisterResource(guest.Resource{
		URI: "test://static-text", Name: "static-text", MimeType: "text/plain",
		Description: "A static text resource for testing.",
	}, func(_ *guest.Call, uri string) ([]guest.EmbeddedResource, error) {
		return []guest.EmbeddedResource{guest.TextResource(uri, "text/plain", "This is the content of the static text resource.")}, nil
	})
	guest.RegisterResource(guest.Resource{
		URI: "test://static-binary", Name: "static-binary", MimeType: "image/png",
		Description: "A static binary resource (a 1×1 PNG) for testing.",
	}, func(_ *guest.Call, uri string) ([]guest.EmbeddedResource, error) {
		return []guest.EmbeddedResource{guest.BlobResource(uri, "image/png", pngBytes())}, nil
	})
	guest.RegisterResource(guest.Resource{
		URI: "test://watched-resource", Name: "watched-resource", MimeType: "text/plain",
		Description: "A resource clients may subscribe to.",
	}, func(_ *guest.Call, uri string) ([]guest.EmbeddedResource, error) {
		return []guest.EmbeddedResource{guest.TextResource(uri, "text/plain", "This is a watched resource.")}, nil
	})
	guest.RegisterResourceTemplate(guest.ResourceTemplate{
		URITemplate: "test://template/{id}/data", Name: "template-data", MimeType: "application/json",
		Description: "Data for the given ID, from a resource template.",
	}, func(_ *guest.Call, uri string, vars map[string]string) ([]guest.EmbeddedResource, error) {
		data, err := json.Marshal(struct {
			ID           string `json:"id"`
			TemplateTest bool   `json:"templateTest"`
			Data         string `json:"data"`
		}{vars["id"], true, "Data for ID: " + vars["id"]})
		if err != nil {
			return nil, err
		}
		return []guest.EmbeddedResource{guest.TextResource(uri, "application/json", string(data))}, nil
	})

	guest.RegisterPrompt(guest.Prompt{
		Name: "test_simple_prompt", Description: "A simple prompt without arguments.",
	}, func(*guest.Call, map[string]string) (guest.PromptResult, error) {
		return text("This is a simple prompt for testing."), nil
	})
	guest.RegisterPrompt(guest.Prompt{
		Name: "test_prompt_with_arguments", Description: "A prompt with two required arguments.",
		Arguments: []guest.PromptArgument{
			{Name: "arg1", Description: "The first argument.", Required: true},
			{Name: "arg2", Description: "The second argument.", Required: true},
		},
	}, func(_ *guest.Call, args map[string]string) (guest.PromptResult, error) {
		return text(fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", args["arg1"], args["arg2"])), nil
	})
	guest.RegisterPrompt(guest.Prompt{
		Name: "test_prompt_with_embedded_resource", Description: "A prompt embedding the resource it is given.",
		Arguments: []guest.PromptArgument{{Name: "resourceUri", Description: "The URI of the resource to embed.", Required: true}},
	}, func(_ *guest.Call, args map[string]string) (guest.PromptResult, error) {
		return guest.PromptResult{Messages: []guest.PromptMessage{
			guest.UserMessage(guest.ResourceContent(args["resourceUri"], "text/plain", "Embedded resource content for testing.")),
			guest.UserMessage(guest.TextContent("Please process the embedded resource above.")),
		}}, nil
	})
	guest.RegisterPrompt(guest.Prompt{
		Name: "test_prompt_with_image", Description: "A prompt with an image.",
	}, func(*guest.Call, map[string]string) (guest.PromptResult, error) {
		return guest.PromptResult{Messages: []guest.PromptMessage{
			guest.UserMessage(guest.ImageContent(pngBytes(), "image/png")),
			guest.UserMessage(guest.TextContent("Please analyze the image above.")),
		}}, nil
	})
	guest.RegisterPrompt(guest.Prompt{
		Name:        "test_input_required_result_prompt",
		Description: "Asks the user for context (key user_context) and renders a prompt with it.",
	}, func(c *guest.Call, _ map[string]string) (guest.PromptResult, error) {
		for range maxRounds {
			q := guest.NewElicitation[ContextForm]("What context should the prompt use?").WithKey("user_context")
			if err := c.AskAll(q); err != nil {
				return guest.PromptResult{}, err
			}
			a, err := q.Result()
			if errors.Is(err, guest.ErrUnsupported) || errors.Is(err, guest.ErrCancelled) {
				return guest.PromptResult{}, err
			}
			if err == nil && a.Accepted() && strings.TrimSpace(a.Content.Context) != "" {
				return text("Context: " + a.Content.Context), nil
			}
		}
		return guest.PromptResult{}, fmt.Errorf("no usable answer to %q after %d rounds", "user_context", maxRounds)
	})
}

func main() {}
