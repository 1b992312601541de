// Command mrtr holds the conformance suite's tools for multi-round-trip
// requests (SEP-2322, docs/research/conformance.md §6.3). Each asks its
// questions under the keys the suite expects and simply waits: the host
// keeps the instance suspended between rounds and turns every batch into
// an input_required result, so a guest asking twice is two rounds.
//
// An answer a tool cannot use (not an accepted form with the fields it
// needs: a bare number, null, a decline) makes it ask again rather than
// complete; the requestState rounds, and checking them, are the host's.
package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// maxRounds bounds how often a tool asks again after unusable answers.
const maxRounds = 10

// The forms, exactly as the suite expects them (no field docs: a
// description would change the schema).
type (
	NameForm struct {
		Name string `json:"name"`
	}
	ColorForm struct {
		Color string `json:"color"`
	}
	OKForm struct {
		OK bool `json:"ok"`
	}
)

type none struct{}

// fatal reports whether a question's error ends the tool (the client
// cannot answer that kind of question, or the call was cancelled) rather
// than calling for the question to be asked again.
func fatal(err error) bool {
	return errors.Is(err, guest.ErrUnsupported) || errors.Is(err, guest.ErrCancelled)
}

// elicit asks one named form until the answer is accepted and usable says
// its content will do.
func elicit[T any](c *guest.Call, key, message string, usable func(T) bool) (T, error) {
	var zero T
	for range maxRounds {
		q := guest.NewElicitation[T](message).WithKey(key)
		if err := c.AskAll(q); err != nil {
			return zero, err
		}
		a, err := q.Result()
		if fatal(err) {
			return zero, err
		}
		if err == nil && a.Accepted() && usable(a.Content) {
			return a.Content, nil
		}
	}
	return zero, fmt.Errorf("no usable answer to %q after %d rounds", key, maxRounds)
}

func hasName(f NameForm) bool { return strings.TrimSpace(f.Name) != "" }

func userNameQuestion() *guest.Elicitation[NameForm] {
	return guest.NewElicitation[NameForm]("What is your name?").WithKey("user_name")
}

func greetingQuestion() *guest.Sampling {
	return guest.NewSampling(guest.SampleParams{
		Messages:  []guest.SamplingMessage{{Role: "user", Content: guest.TextContent("Generate a greeting")}},
		MaxTokens: 50,
	}).WithKey("greeting")
}

func rootsQuestion() *guest.RootsRequest { return guest.NewRootsRequest().WithKey("client_roots") }

func elicitation(c *guest.Call, _ none) (guest.Text, error) {
	f, err := elicit(c, "user_name", "What is your name?", hasName)
	if err != nil {
		return "", err
	}
	return guest.Text("Hello, " + f.Name + "!"), nil
}

func sampling(c *guest.Call, _ none) (guest.Text, error) {
	for range maxRounds {
		q := guest.NewSampling(guest.SampleParams{
			Messages:  []guest.SamplingMessage{{Role: "user", Content: guest.TextContent("What is the capital of France?")}},
			MaxTokens: 100,
		}).WithKey("capital_question")
		if err := c.AskAll(q); err != nil {
			return "", err
		}
		r, err := q.Result()
		if fatal(err) {
			return "", err
		}
		if err == nil && r.Content.Text != "" {
			return guest.Text("Sampling response: " + r.Content.Text), nil
		}
	}
	return "", fmt.Errorf("no usable answer to %q after %d rounds", "capital_question", maxRounds)
}

func listRoots(c *guest.Call, _ none) (guest.Text, error) {
	for range maxRounds {
		q := rootsQuestion()
		if err := c.AskAll(q); err != nil {
			return "", err
		}
		roots, err := q.Result()
		if fatal(err) {
			return "", err
		}
		if err == nil {
			return guest.Text(fmt.Sprintf("Client exposed %d root(s): %s", len(roots), uris(roots))), nil
		}
	}
	return "", fmt.Errorf("no usable answer to %q after %d rounds", "client_roots", maxRounds)
}

func uris(roots []guest.Root) string {
	s := make([]string, len(roots))
	for i, r := range roots {
		s[i] = r.URI
	}
	return strings.Join(s, ", ")
}

// confirm serves request_state and tampered_state: the state round trip is
// the host's, so all the tool sees is one confirmation.
func confirm(c *guest.Call, _ none) (guest.Text, error) {
	f, err := elicit(c, "confirm", "Please confirm", func(OKForm) bool { return true })
	if err != nil {
		return "", err
	}
	return guest.Text(fmt.Sprintf("state-ok: confirmed=%v", f.OK)), nil
}

// inputs are the answers multiple_inputs and capabilities collect.
type inputs struct {
	name, greeting     string
	roots              []guest.Root
	haveRoots          bool
	noName, noGreeting bool // the client cannot answer: skip
	noRoots            bool
}

// collect asks user_name, greeting and client_roots in one batch, then
// again for those whose answers were unusable. With skipUnsupported a
// question the client cannot answer is left out; without, it ends the tool.
func collect(c *guest.Call, skipUnsupported bool) (*inputs, error) {
	in := &inputs{}
	settled := func(err error, done bool, skip *bool) (bool, error) {
		switch {
		case errors.Is(err, guest.ErrUnsupported) && skipUnsupported:
			*skip = true
			return true, nil
		case fatal(err):
			return false, err
		}
		return err == nil && done, nil
	}
	for range maxRounds {
		var qs []guest.Question
		var nq *guest.Elicitation[NameForm]
		var gq *guest.Sampling
		var rq *guest.RootsRequest
		if in.name == "" && !in.noName {
			nq = userNameQuestion()
			qs = append(qs, nq)
		}
		if in.greeting == "" && !in.noGreeting {
			gq = greetingQuestion()
			qs = append(qs, gq)
		}
		if !in.haveRoots && !in.noRoots {
			rq = rootsQuestion()
			qs = append(qs, rq)
		}
		if len(qs) == 0 {
			return in, nil
		}
		if err := c.AskAll(qs...); err != nil {
			return nil, err
		}
		if nq != nil {
			a, err := nq.Result()
			if ok, err := settled(err, a.Accepted() && hasName(a.Content), &in.noName); err != nil {
				return nil, err
			} else if ok && !in.noName {
				in.name = a.Content.Name
			}
		}
		if gq != nil {
			r, err := gq.Result()
			if ok, err := settled(err, r.Content.Text != "", &in.noGreeting); err != nil {
				return nil, err
			} else if ok && !in.noGreeting {
				in.greeting = r.Content.Text
			}
		}
		if rq != nil {
			roots, err := rq.Result()
			if ok, err := settled(err, true, &in.noRoots); err != nil {
				return nil, err
			} else if ok && !in.noRoots {
				in.roots, in.haveRoots = roots, true
			}
		}
	}
	return nil, fmt.Errorf("no usable answers after %d rounds", maxRounds)
}

func multipleInputs(c *guest.Call, _ none) (guest.Text, error) {
	in, err := collect(c, false)
	if err != nil {
		return "", err
	}
	return guest.Text(fmt.Sprintf("%s %s — %d root(s) visible", in.greeting, in.name, len(in.roots))), nil
}

func multiRound(c *guest.Call, _ none) (guest.Text, error) {
	who, err := elicit(c, "step1", "Step 1: What is your name?", hasName)
	if err != nil {
		return "", err
	}
	colour, err := elicit(c, "step2", "Step 2: What is your favorite color?", func(f ColorForm) bool { return strings.TrimSpace(f.Color) != "" })
	if err != nil {
		return "", err
	}
	return guest.Text(fmt.Sprintf("Multi-round complete: %s likes %s", who.Name, colour.Color)), nil
}

// capabilities asks what the client's capabilities allow: the host answers
// the rest "unsupported" at once and sends the client only the others.
func capabilities(c *guest.Call, _ none) (guest.Text, error) {
	in, err := collect(c, true)
	if err != nil {
		return "", err
	}
	if in.noName && in.noGreeting && in.noRoots {
		return "The client declared none of elicitation, sampling and roots: nothing to ask.", nil
	}
	return "Capability-aware input requests fulfilled", nil
}

func init() {
	for _, t := range []struct {
		name, desc string
		run        func(*guest.Call, none) (guest.Text, error)
	}{
		{"test_input_required_result_elicitation", "Asks the user's name (key user_name) and greets them.", elicitation},
		{"test_input_required_result_sampling", "Asks the client's model for the capital of France (key capital_question).", sampling},
		{"test_input_required_result_list_roots", "Asks for the client's roots (key client_roots) and lists them.", listRoots},
		{"test_input_required_result_request_state", "Asks for a confirmation (key confirm) across a requestState round trip.", confirm},
		{"test_input_required_result_multiple_inputs", "Asks a name, a greeting and the roots at once.", multipleInputs},
		{"test_input_required_result_multi_round", "Asks a name, then a favourite colour, in two rounds.", multiRound},
		{"test_input_required_result_tampered_state", "Asks for a confirmation (key confirm); a tampered requestState must be refused.", confirm},
		{"test_input_required_result_capabilities", "Asks only what the client's capabilities allow.", capabilities},
	} {
		guest.Register(guest.Tool{Name: t.name, Description: t.desc}, t.run)
	}
}

func main() {}
