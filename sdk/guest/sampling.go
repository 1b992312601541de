package guest

import (
	"encoding/json"
	"fmt"

	"github.com/wasmhost/wasmhost/abi"
)

// SamplingMessage is one message of the conversation a tool asks the
// client's model to continue.
type SamplingMessage struct {
	// Role is "user" or "assistant".
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// SampleParams are the params of MCP's sampling/createMessage: the
// conversation so far and how to continue it. The client decides which
// model answers, and may show the request to its user first.
type SampleParams struct {
	Messages     []SamplingMessage `json:"messages"`
	SystemPrompt string            `json:"systemPrompt,omitempty"`
	// MaxTokens is required by MCP; 0 is sent as 1024.
	MaxTokens     int      `json:"maxTokens"`
	Temperature   *float64 `json:"temperature,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
	// ModelPreferences is MCP's modelPreferences object, passed through.
	ModelPreferences json.RawMessage `json:"modelPreferences,omitempty"`
}

// SampleResult is the model's reply.
type SampleResult struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	// Model names the model that answered.
	Model      string `json:"model"`
	StopReason string `json:"stopReason,omitempty"`
}

// Sampling is a question asking the client's model for a completion, to be
// asked with [Call.AskAll]. To ask just one, use [Sample].
type Sampling struct {
	params SampleParams
	key    string
	result SampleResult
	err    error
}

// NewSampling returns a sampling question.
func NewSampling(params SampleParams) *Sampling {
	if params.MaxTokens == 0 {
		params.MaxTokens = 1024
	}
	return &Sampling{params: params, err: errNotAsked}
}

// WithKey names the question (see [Question]) and returns it.
func (q *Sampling) WithKey(key string) *Sampling {
	q.key = key
	return q
}

// Result returns the model's reply, or why there is none.
func (q *Sampling) Result() (SampleResult, error) { return q.result, q.err }

func (q *Sampling) request() (abi.InputRequest, error) {
	params, err := json.Marshal(q.params)
	if err != nil {
		return abi.InputRequest{}, fmt.Errorf("encoding the sampling request: %w", err)
	}
	return abi.InputRequest{Key: q.key, Method: abi.MethodSample, Params: params}, nil
}

func (q *Sampling) settle(r abi.InputResponse) {
	q.result, q.err = SampleResult{}, nil
	if r.Error != nil {
		q.err = responseError(abi.MethodSample, r.Error)
		return
	}
	var res struct {
		SampleResult
		// Newer clients may answer with an array of blocks; the first
		// one is kept.
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		q.err = fmt.Errorf("reading the sampling result: %w", err)
		return
	}
	q.result = res.SampleResult
	if len(res.Content) > 0 && res.Content[0] == '[' {
		var blocks []Content
		if err := json.Unmarshal(res.Content, &blocks); err != nil {
			q.err = fmt.Errorf("reading the sampling result: %w", err)
			return
		}
		if len(blocks) > 0 {
			q.result.Content = blocks[0]
		}
	} else if len(res.Content) > 0 {
		if err := json.Unmarshal(res.Content, &q.result.Content); err != nil {
			q.err = fmt.Errorf("reading the sampling result: %w", err)
		}
	}
}

func (q *Sampling) fail(err error) { q.result, q.err = SampleResult{}, err }

// Sample asks the client's model to continue a conversation and waits for
// its reply. It returns [ErrUnsupported] (wrapped) if the client cannot
// sample and [ErrCancelled] if the call is cancelled while waiting.
func Sample(c *Call, params SampleParams) (SampleResult, error) {
	q := NewSampling(params)
	if err := c.AskAll(q); err != nil {
		return SampleResult{}, err
	}
	return q.Result()
}

// Root is a directory or file the client lets the server work on.
type Root struct {
	URI  string `json:"uri"`
	Name string `json:"name,omitempty"`
}

// RootsRequest is a question asking the client for its roots, to be asked
// with [Call.AskAll]. To ask just this one, use [Roots].
type RootsRequest struct {
	key   string
	roots []Root
	err   error
}

// NewRootsRequest returns a roots/list question.
func NewRootsRequest() *RootsRequest { return &RootsRequest{err: errNotAsked} }

// WithKey names the question (see [Question]) and returns it.
func (q *RootsRequest) WithKey(key string) *RootsRequest {
	q.key = key
	return q
}

// Result returns the client's roots, or why there are none.
func (q *RootsRequest) Result() ([]Root, error) { return q.roots, q.err }

func (q *RootsRequest) request() (abi.InputRequest, error) {
	return abi.InputRequest{Key: q.key, Method: abi.MethodListRoots, Params: json.RawMessage("{}")}, nil
}

func (q *RootsRequest) settle(r abi.InputResponse) {
	q.roots, q.err = nil, nil
	if r.Error != nil {
		q.err = responseError(abi.MethodListRoots, r.Error)
		return
	}
	var res struct {
		Roots []Root `json:"roots"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		q.err = fmt.Errorf("reading the roots: %w", err)
		return
	}
	q.roots = res.Roots
}

func (q *RootsRequest) fail(err error) { q.roots, q.err = nil, err }

// Roots asks the client for its roots and waits for the answer. It returns
// [ErrUnsupported] (wrapped) if the client has none to give.
func Roots(c *Call) ([]Root, error) {
	q := NewRootsRequest()
	if err := c.AskAll(q); err != nil {
		return nil, err
	}
	return q.Result()
}
