package host

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhost/wasmhost/abi"
)

// What a guest's result may hold, beyond parsing as JSON: content blocks
// MCP clients accept, protocol errors a tool may honestly return, and a
// size the front end can send. See docs/security.md.
const (
	// maxEncodedResult caps a result once encoded for the client: escaping
	// (a string of "<" grows sixfold as \u003c) can make a result within
	// abi.MaxMessageSize twice as large or more on the wire.
	maxEncodedResult = abi.MaxMessageSize + 64<<10
	// maxErrorMessage caps a guest's protocol error message.
	maxErrorMessage = 4 << 10
)

// checkBlock checks one content block against the MCP schema: a known type
// with its required fields, and base64 data where data is binary.
func checkBlock(c abi.Content) error {
	switch c.Type {
	case "":
		return errors.New("has no type")
	case "text":
		return nil
	case "image", "audio":
		if c.MimeType == "" {
			return fmt.Errorf("is an %s block without a mimeType", c.Type)
		}
		if c.Data == "" {
			return fmt.Errorf("is an %s block without data", c.Type)
		}
		if err := isBase64(c.Data); err != nil {
			return fmt.Errorf("is an %s block whose data is not base64: %w", c.Type, err)
		}
		return nil
	case "resource":
		if c.Resource == nil || c.Resource.URI == "" {
			return errors.New("is a resource block without a resource URI")
		}
		return checkEmbedded(*c.Resource)
	}
	return fmt.Errorf("has type %.40q, not text, image, audio or resource", c.Type)
}

// checkEmbedded checks a resource's contents: text, or a base64 blob.
func checkEmbedded(r abi.EmbeddedResource) error {
	if r.Blob != "" {
		if r.Text != "" {
			return errors.New("is a resource with both text and blob")
		}
		if err := isBase64(r.Blob); err != nil {
			return fmt.Errorf("is a resource whose blob is not base64: %w", err)
		}
	}
	return nil
}

func isBase64(s string) error {
	_, err := base64.StdEncoding.Strict().DecodeString(s)
	return err
}

// reservedCodes are the JSON-RPC codes a guest may not fail a request
// with: they belong to the transport (the client's request was malformed,
// the method does not exist), or to an exchange only the host and client
// can start (-32042: URL elicitation; wasmhost relays none, and a guest's
// would send the person to a URL their client never asked about).
// Everything else in the reserved range is refused too, except the codes
// a tool can mean: invalid params, internal error, resource not found and
// a missing client capability.
var guestCodes = map[int]bool{-32602: true, -32603: true, -32002: true, -32021: true}

// checkGuestError checks a protocol error a guest fails its call with.
func checkGuestError(e *abi.CallError) error {
	if e == nil {
		return nil
	}
	switch {
	case e.Code == 0:
		return fmt.Errorf("error has no code (message %.80q)", e.Message)
	case e.Message == "":
		return fmt.Errorf("error %d has no message", e.Code)
	case len(e.Message) > maxErrorMessage:
		return fmt.Errorf("error %d has a message of %d bytes, over the %d byte limit", e.Code, len(e.Message), maxErrorMessage)
	case e.Code >= -32768 && e.Code <= -32000 && !guestCodes[e.Code]:
		return fmt.Errorf("error code %d is reserved for the protocol; a tool may use -32602, -32603, -32002, -32021 or a code outside -32768..-32000", e.Code)
	}
	return nil
}

// checkEncodedSize refuses a result that would encode past
// maxEncodedResult.
func checkEncodedSize(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot be encoded: %w", err)
	}
	if len(b) > maxEncodedResult {
		return fmt.Errorf("encodes to %d bytes, over the %d byte limit for a result", len(b), maxEncodedResult)
	}
	return nil
}
