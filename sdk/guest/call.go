package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/wasmhost/wasmhost/abi"
)

// host is what a call needs from wasmhost: the imports of module
// "wasmhost" in a wasm build, a [Bridge] in tests on the build machine.
// Input methods return the raw response JSON or a negative status.
type host interface {
	input(batch []byte) ([]byte, abi.Status)
	elicit(params []byte) ([]byte, abi.Status)
	log(level abi.LogLevel, msg string)
	progress(msg []byte)
	cancelled() bool
	detach() bool
	// capability answers one CapabilityRequest with one CapabilityResult.
	capability(req []byte) ([]byte, abi.Status)
}

// Call is the context of one tool call: the way to report progress, log,
// check for cancellation and ask the client for input. It is valid only
// while the handler it was passed to runs.
type Call struct {
	host      host
	tool      string
	deferTask bool
}

// Tool returns the name of the tool being called.
func (c *Call) Tool() string { return c.tool }

// LogLevel is the level of a log message, ordered as MCP's levels.
type LogLevel = abi.LogLevel

const (
	LogDebug   = abi.LogDebug
	LogInfo    = abi.LogInfo
	LogNotice  = abi.LogNotice
	LogWarning = abi.LogWarning
	LogError   = abi.LogError
)

// Log sends msg to the host's log and, as notifications/message, to the
// client. Lines longer than 16 KiB are truncated.
func (c *Call) Log(level LogLevel, msg string) {
	if len(msg) > abi.MaxLogSize {
		msg = msg[:abi.MaxLogSize]
	}
	c.host.log(level, msg)
}

// Logf is [Call.Log] with fmt.Sprintf formatting.
func (c *Call) Logf(level LogLevel, format string, args ...any) {
	c.Log(level, fmt.Sprintf(format, args...))
}

// Progress reports how far the call has got: progress out of total (0 if
// unknown), with an optional message. progress should grow with each report.
func (c *Call) Progress(progress, total float64, message string) {
	msg, err := json.Marshal(abi.Progress{Progress: progress, Total: total, Message: message})
	if err != nil { // NaN or Inf: not worth failing the call over
		return
	}
	c.host.progress(msg)
}

// Cancelled reports whether the call has been cancelled. A guest need not
// check it: the host ends a cancelled guest at its next host call anyway.
// Checking lets a long computation stop tidily, between steps of its own.
func (c *Call) Cancelled() bool { return c.host.cancelled() }

// Detach lets the rest of a call run in the background, for a tool
// registered with [Tool.DeferTask]: such a tool starts as an ordinary call
// so that it can ask its questions while the client waits, and detaches
// once it has what it needs. Detach reports whether the client now holds a
// task handle instead of waiting (false when it asked for no task, or the
// host cannot make one). Either way the handler carries on, and what it
// returns is the call's result: the task's result, or the direct answer.
//
// For a tool registered without DeferTask, Detach does nothing and returns
// false.
func (c *Call) Detach() bool { return c.deferTask && c.host.detach() }

var (
	// ErrUnsupported is returned (wrapped) when the client cannot answer a
	// kind of request at all, for instance elicitation from a client that
	// did not declare the capability. Branch on it to fall back to a
	// default instead of failing.
	ErrUnsupported = errors.New("the client does not support this request")
	// ErrCancelled is returned when the call is cancelled while waiting for
	// an answer. The handler should return promptly.
	ErrCancelled = errors.New("the call was cancelled")
)

// statusError turns a negative status from the host into an error.
func statusError(s abi.Status) error {
	switch s {
	case abi.StatusCancelled:
		return ErrCancelled
	case abi.StatusBadMessage:
		return errors.New("wasmhost rejected the request as malformed or too large")
	case abi.StatusNoResponse:
		return errors.New("wasmhost had no response pending")
	case abi.StatusBufferTooSmall:
		return errors.New("wasmhost's response did not fit the buffer")
	}
	return fmt.Errorf("wasmhost answered with unknown status %d", int32(s))
}

// responseError turns the error half of an InputResponse into an error.
func responseError(method string, e *abi.InputError) error {
	if e.Code == abi.ErrCodeUnsupported {
		return fmt.Errorf("%s: %w: %s", method, ErrUnsupported, e.Message)
	}
	return fmt.Errorf("%s failed (%s): %s", method, e.Code, e.Message)
}

// Question is one request for the client, to be asked alone or in a batch
// with [Call.AskAll]. The SDK's questions are [*Elicitation], [*Sampling]
// and [*RootsRequest]; each holds its answer once asked, and each may be
// named with its WithKey method.
//
// A key names the question for the client: clients of the stateless
// 2026-07-28 protocol see it as the question's inputRequests key, and
// answer under it. Without one the host makes one up, so name questions
// whose keys matter (a test suite expects them, or a client's user sees
// them). Keys are 1 to 64 characters of A-Z a-z 0-9 _ . - and unique
// within a batch; a later batch may ask under the same key again.
type Question interface {
	request() (abi.InputRequest, error)
	settle(abi.InputResponse)
	fail(error)
}

// AskAll asks every question in one batch, so the client sees them together
// and may answer them in any order, and returns once all are answered. Each
// question then holds its own answer or error (read it with the question's
// Result method); AskAll itself fails only if the batch could not be asked
// at all, for instance because the call was cancelled ([ErrCancelled]), and
// then every question holds that error too. At most 16 questions fit in one
// batch.
func (c *Call) AskAll(questions ...Question) error {
	err := c.askAll(questions)
	if err != nil {
		for _, q := range questions {
			q.fail(err)
		}
	}
	return err
}

func (c *Call) askAll(questions []Question) error {
	if len(questions) == 0 {
		return nil
	}
	if len(questions) > abi.MaxInputBatch {
		return fmt.Errorf("asking %d questions at once: at most %d fit in one batch", len(questions), abi.MaxInputBatch)
	}
	batch := make([]abi.InputRequest, len(questions))
	keys := make(map[string]bool, len(questions))
	for i, q := range questions {
		req, err := q.request()
		if err != nil {
			return err
		}
		if req.Key != "" {
			if err := checkKey(req.Key); err != nil {
				return err
			}
			if keys[req.Key] {
				return fmt.Errorf("question key %q is used twice in one batch", req.Key)
			}
			keys[req.Key] = true
		}
		batch[i] = req
	}
	msg, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encoding the questions: %w", err)
	}
	raw, status := c.host.input(msg)
	if status < 0 {
		return statusError(status)
	}
	var answers []abi.InputResponse
	if err := json.Unmarshal(raw, &answers); err != nil {
		return fmt.Errorf("reading wasmhost's answers: %w", err)
	}
	if len(answers) != len(questions) {
		return fmt.Errorf("wasmhost answered %d of %d questions", len(answers), len(questions))
	}
	for i, q := range questions {
		q.settle(answers[i])
	}
	return nil
}

// checkKey applies the host's rule for question keys.
func checkKey(key string) error {
	if len(key) > 64 {
		return fmt.Errorf("question key %.20q... is longer than 64 characters", key)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("question key %q contains %q; use only A-Z a-z 0-9 _ - .", key, r)
		}
	}
	return nil
}

// Action is the user's response to an elicitation.
type Action string

const (
	// Accept: the user submitted the form; the answer's Content is filled.
	Accept Action = "accept"
	// Decline: the user explicitly said no.
	Decline Action = "decline"
	// Cancel: the user dismissed the question without choosing.
	Cancel Action = "cancel"
)

// Answer is the user's response to an elicitation asking for a T.
type Answer[T any] struct {
	Action Action
	// Content is the form the user filled in; zero unless Action is Accept.
	Content T
}

// Accepted reports whether the user submitted the form.
func (a Answer[T]) Accepted() bool { return a.Action == Accept }

// Elicitation is a question asking the user to fill in a T: a flat struct
// whose fields are strings, numbers, integers, booleans or enums (MCP allows
// nothing else in an elicitation form). Field names, docs, `description`
// tags and `jsonschema` tags shape the form as they shape tool inputs.
type Elicitation[T any] struct {
	message string
	key     string
	// schema, if set, is sent as the requestedSchema instead of the one
	// derived from T.
	schema json.RawMessage
	answer Answer[T]
	err    error
}

// NewElicitation returns a question showing message and asking for a T, to
// be asked with [Call.AskAll]. To ask just one, use [Elicit].
func NewElicitation[T any](message string) *Elicitation[T] {
	return &Elicitation[T]{message: message, err: errNotAsked}
}

// NewRawElicitation returns a question showing message and sending
// requestedSchema verbatim, for forms a Go struct cannot describe: SEP-1330
// enums (oneOf of const and title, enumNames, arrays of enums) or
// SEP-1034 defaults on a form built at run time. The schema must be a JSON
// object; MCP restricts it to a flat object of primitive properties, and
// the client checks that, not the SDK. The answer's content is the form as
// a map.
func NewRawElicitation(message string, requestedSchema json.RawMessage) *Elicitation[map[string]any] {
	return &Elicitation[map[string]any]{message: message, schema: bytes.Clone(requestedSchema), err: errNotAsked}
}

// WithKey names the question (see [Question]) and returns it.
func (q *Elicitation[T]) WithKey(key string) *Elicitation[T] {
	q.key = key
	return q
}

var errNotAsked = errors.New("the question has not been asked yet")

// Result returns the answer, or why there is none: [ErrUnsupported] if the
// client cannot elicit, [ErrCancelled] if the call was cancelled.
func (q *Elicitation[T]) Result() (Answer[T], error) { return q.answer, q.err }

// elicitParams and elicitAnswer are the JSON of a question and its answer.
// They are declared here, not inside the generic methods that use them: a
// type declared in a generic function is a new type for every T, and
// encoding/json would build its codec again for each, on every call (a
// call starts from the snapshot, whose caches hold only what init filled:
// see warmElicitation).
type (
	elicitParams struct {
		Message         string `json:"message"`
		RequestedSchema any    `json:"requestedSchema"`
	}
	elicitAnswer struct {
		Action  Action          `json:"action"`
		Content json.RawMessage `json:"content"`
	}
)

// warmElicitation fills encoding/json's caches for the types every
// question and answer goes through, while the guest initialises: without
// it, the first question of every call built them again (a call's first
// question, answered at once by the host: median 480 -> 330 µs).
func warmElicitation() {
	s, _ := elicitationSchema(reflect.TypeFor[struct {
		B bool    `json:"b"`
		S string  `json:"s"`
		N float64 `json:"n"`
	}](), nil)
	_, _ = json.Marshal(elicitParams{RequestedSchema: s})
	_, _ = json.Marshal([]abi.InputRequest{{Method: abi.MethodElicit, Params: json.RawMessage(`{}`)}})
	var answers []abi.InputResponse
	_ = json.Unmarshal([]byte(`[{"result":{"action":"accept","content":{}}},{"error":{"code":-1,"message":"m"}}]`), &answers)
	var a elicitAnswer
	_ = json.Unmarshal(answers[0].Result, &a)
}

func (q *Elicitation[T]) params() ([]byte, error) {
	if q.schema != nil {
		if !isJSONObject(bytes.TrimSpace(q.schema)) || !json.Valid(q.schema) {
			return nil, fmt.Errorf("elicitation %q: the requested schema is not a JSON object", q.message)
		}
		return json.Marshal(elicitParams{q.message, q.schema})
	}
	s, err := elicitationSchema(reflect.TypeFor[T](), docsSnapshot())
	if err != nil {
		return nil, err
	}
	return json.Marshal(elicitParams{q.message, s})
}

func (q *Elicitation[T]) request() (abi.InputRequest, error) {
	params, err := q.params()
	return abi.InputRequest{Key: q.key, Method: abi.MethodElicit, Params: params}, err
}

func (q *Elicitation[T]) settle(r abi.InputResponse) {
	q.answer, q.err = Answer[T]{}, nil
	if r.Error != nil {
		q.err = responseError(abi.MethodElicit, r.Error)
		return
	}
	var res elicitAnswer
	if err := json.Unmarshal(r.Result, &res); err != nil {
		q.err = fmt.Errorf("reading the elicitation answer: %w", err)
		return
	}
	switch res.Action {
	case Accept:
		if len(res.Content) > 0 {
			if err := json.Unmarshal(res.Content, &q.answer.Content); err != nil {
				q.err = fmt.Errorf("reading the elicitation answer: %w", err)
				return
			}
		}
	case Decline, Cancel:
	default:
		q.err = fmt.Errorf("reading the elicitation answer: unknown action %q", res.Action)
		return
	}
	q.answer.Action = res.Action
}

func (q *Elicitation[T]) fail(err error) { q.answer, q.err = Answer[T]{}, err }

// Elicit asks the user to fill in a T, showing message, and waits for the
// answer; see [Elicitation] for what T may be. It returns [ErrUnsupported]
// (wrapped) if the client cannot elicit and [ErrCancelled] if the call is
// cancelled while waiting. A declined or cancelled form is not an error:
// check [Answer.Accepted]. The question has no key; to name it, ask
// NewElicitation[T](message).WithKey(key) with [Call.AskAll].
func Elicit[T any](c *Call, message string) (Answer[T], error) {
	q := NewElicitation[T](message)
	params, err := q.params()
	if err != nil {
		return Answer[T]{}, err
	}
	raw, status := c.host.elicit(params)
	if status < 0 {
		return Answer[T]{}, statusError(status)
	}
	var r abi.InputResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return Answer[T]{}, fmt.Errorf("reading wasmhost's answer: %w", err)
	}
	q.settle(r)
	return q.Result()
}
