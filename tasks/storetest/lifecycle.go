package storetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// testNewID: ids are 128 random bits, URL-safe, and never repeat.
func testNewID(t *testing.T) {
	const n = 20000
	seen := make(map[string]bool, n)
	var ones [128]int
	for range n {
		id := tasks.NewID()
		if len(id) != 22 {
			t.Fatalf("NewID() = %q: %d characters, want 22", id, len(id))
		}
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("NewID() = %q: not 16 bytes of unpadded URL-safe base64 (%v)", id, err)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		for i, b := range raw {
			for j := range 8 {
				ones[i*8+j] += int(b>>j) & 1
			}
		}
	}
	// Every bit is a coin toss: over n draws it is set n/2 ± 0.5·√n times
	// (one standard deviation is 71 here); ±700 is ten of them, so a
	// healthy generator never trips this and a biased or counting one does.
	for i, c := range ones {
		if c < n/2-700 || c > n/2+700 {
			t.Errorf("bit %d set in %d of %d ids; a random bit is set in about %d", i, c, n, n/2)
		}
	}
	// Neighbouring ids share no structure (a counter or clock would).
	a, _ := base64.RawURLEncoding.DecodeString(tasks.NewID())
	b, _ := base64.RawURLEncoding.DecodeString(tasks.NewID())
	diff := 0
	for i := range a {
		diff += bits.OnesCount8(a[i] ^ b[i])
	}
	if diff < 20 {
		t.Errorf("two fresh ids differ in only %d of 128 bits", diff)
	}
}

func testCreateGet(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	want := create(t, ctx, s, NewTask("alice"))
	got := get(t, ctx, s, want.ID)
	if d := sameTask(got, want); d != "" {
		t.Errorf("Get after Create: %s", d)
	}

	call := NewTask("alice")
	call.Kind = tasks.KindCall
	create(t, ctx, s, call)
	if d := sameTask(get(t, ctx, s, call.ID), call); d != "" {
		t.Errorf("Get KindCall task: %s", d)
	}

	if err := s.Create(ctx, want); err == nil {
		t.Errorf("Create with an existing id succeeded")
	}
	if d := sameTask(get(t, ctx, s, want.ID), want); d != "" {
		t.Errorf("failed duplicate Create changed the task: %s", d)
	}

	for _, st := range []tasks.Status{tasks.InputRequired, tasks.Completed, tasks.Failed, tasks.Cancelled, ""} {
		bad := NewTask("alice")
		bad.Status = st
		wantErr(t, fmt.Sprintf("Create with status %q", st), s.Create(ctx, bad), tasks.ErrIllegalTransition, bad.ID)
		if _, err := s.Get(ctx, bad.ID); !errors.Is(err, tasks.ErrNotFound) {
			t.Errorf("refused task %q is stored: Get: %v", st, err)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		bad := NewTask("alice")
		bad.TTL = ttl
		if err := s.Create(ctx, bad); err == nil {
			t.Errorf("Create with TTL %s succeeded", ttl)
		}
	}
	noID := NewTask("alice")
	noID.ID = ""
	if err := s.Create(ctx, noID); err == nil {
		t.Errorf("Create without an id succeeded")
	}

	missing := tasks.NewID()
	_, err := s.Get(ctx, missing)
	wantErr(t, "Get unknown id", err, tasks.ErrNotFound, missing)
}

// testIsolation: a store keeps its own copies; what callers do with the
// values they passed in or got back changes nothing stored.
func testIsolation(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	task := NewTask("alice")
	want := *task
	want.Args = json.RawMessage(`{"text":"hello"}`)
	want.Accepts = []string{abi.MethodElicit, abi.MethodSample}
	create(t, ctx, s, task)
	task.Args[2] = 'X'
	task.Accepts[0] = "mutated"
	task.Status = tasks.Failed

	got := get(t, ctx, s, task.ID)
	got.Args[2] = 'Y'
	got.Accepts[1] = "mutated"
	got.Tool = "mutated"
	if d := sameTask(get(t, ctx, s, task.ID), &want); d != "" {
		t.Errorf("callers' mutations reached the store: %s", d)
	}

	reqs := requests("k")
	if err := s.RequestInput(ctx, task.ID, reqs); err != nil {
		t.Fatal(err)
	}
	reqs["k"].Params[2] = 'X'
	reqs["other"] = request("other")
	got = get(t, ctx, s, task.ID)
	got.InputRequests["k"].Params[2] = 'Y'
	if d := sameRequests(get(t, ctx, s, task.ID).InputRequests, requests("k")); d != "" {
		t.Errorf("callers' mutations reached the stored input requests: %s", d)
	}

	resp := answer("a")
	if err := s.Answer(ctx, task.ID, "k", resp); err != nil {
		t.Fatal(err)
	}
	resp.Result[2] = 'X'
	got2, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	if !sameResponse(got2["k"], answer("a")) {
		t.Errorf("caller's mutation reached the stored answer: %s", got2["k"].Result)
	}
}

func testList(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	base := time.Now().Add(-time.Minute)
	var alice []*tasks.Task // newest first
	// Eleven tasks, two of them created at the same instant so that ties
	// have to be ordered (by id) and paged without loss.
	for i := range 11 {
		task := NewTask("alice")
		task.CreatedAt = base.Add(time.Duration(min(i, 9)) * time.Second)
		task.UpdatedAt = task.CreatedAt
		create(t, ctx, s, task)
		alice = append([]*tasks.Task{task}, alice...)
	}
	if alice[0].ID > alice[1].ID { // the tie: the smaller id comes first
		alice[0], alice[1] = alice[1], alice[0]
	}
	bob := create(t, ctx, s, NewTask("bob"))
	anyone := create(t, ctx, s, NewTask(""))
	call := NewTask("alice")
	call.Kind = tasks.KindCall
	call.CreatedAt = base.Add(time.Hour)
	create(t, ctx, s, call)

	for _, limit := range []int{0, 1, 2, 3, 10, 11, 12, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			var got []*tasks.Task
			cursor, pages := "", 0
			for {
				page, next, err := s.List(ctx, "alice", cursor, limit)
				if err != nil {
					t.Fatalf("List page %d: %v", pages, err)
				}
				pages++
				if want := min(effective(limit), len(alice)-len(got)); len(page) != want {
					t.Errorf("page %d holds %d tasks, want %d", pages, len(page), want)
				}
				got = append(got, page...)
				if next == "" {
					break
				}
				if pages > len(alice)+1 {
					t.Fatalf("List never ends: %d pages", pages)
				}
				cursor = next
			}
			if len(got) != len(alice) {
				t.Fatalf("List returned %d tasks over %d pages, want %d", len(got), pages, len(alice))
			}
			for i := range alice {
				if got[i].ID != alice[i].ID {
					t.Errorf("position %d: task created %s, want the one created %s (newest first, ties by id)",
						i, got[i].CreatedAt.Format(time.RFC3339Nano), alice[i].CreatedAt.Format(time.RFC3339Nano))
				} else if d := sameTask(got[i], alice[i]); d != "" {
					t.Errorf("listed task %d: %s", i, d)
				}
			}
		})
	}

	for owner, want := range map[string]*tasks.Task{"bob": bob, "": anyone} {
		page, next, err := s.List(ctx, owner, "", 0)
		if err != nil || next != "" || len(page) != 1 || page[0].ID != want.ID {
			t.Errorf("List(%q) = %d tasks, next %q, %v; want just its own task", owner, len(page), next, err)
		}
	}
	if page, next, err := s.List(ctx, "carol", "", 0); err != nil || len(page) != 0 || next != "" {
		t.Errorf("List of an owner with no tasks = %d tasks, next %q, %v", len(page), next, err)
	}
	if _, _, err := s.List(ctx, "alice", "not a cursor", 5); err == nil {
		t.Errorf("List with a made-up cursor succeeded")
	}

	// List shows the current state of a task.
	if err := s.Cancel(ctx, alice[3].ID, "stop"); err != nil {
		t.Fatal(err)
	}
	page, _, err := s.List(ctx, "alice", "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if page[3].Status != tasks.Cancelled {
		t.Errorf("listed task after Cancel has status %s", page[3].Status)
	}
}

func effective(limit int) int {
	if limit <= 0 {
		return tasks.DefaultPageSize
	}
	return limit
}

// allStatuses is every state of the machine.
var allStatuses = []tasks.Status{tasks.Working, tasks.InputRequired, tasks.Completed, tasks.Failed, tasks.Cancelled}

// legal is the state machine written out by hand, from → to.
var legal = map[[2]tasks.Status]bool{
	{tasks.Working, tasks.InputRequired}:       true,
	{tasks.Working, tasks.Completed}:           true,
	{tasks.Working, tasks.Failed}:              true,
	{tasks.Working, tasks.Cancelled}:           true,
	{tasks.InputRequired, tasks.Working}:       true,
	{tasks.InputRequired, tasks.InputRequired}: true,
	{tasks.InputRequired, tasks.Completed}:     true,
	{tasks.InputRequired, tasks.Failed}:        true,
	{tasks.InputRequired, tasks.Cancelled}:     true,
}

// testTransitions drives every from × to pair of the state machine through
// the store: the legal ones succeed, every other one is refused with the
// right error and changes nothing.
func testTransitions(t *testing.T, s tasks.Store) {
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			if got := tasks.CanTransition(from, to); got != legal[[2]tasks.Status{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
	result := json.RawMessage(`{"content":[{"type":"text","text":"done"}]}`)
	// apply moves a task toward to the only way the API can.
	apply := func(ctx context.Context, id string, to tasks.Status) error {
		switch to {
		case tasks.Working:
			return s.Answer(ctx, id, "k0", answer("k0"))
		case tasks.InputRequired:
			return s.RequestInput(ctx, id, requests("k1"))
		case tasks.Completed:
			return s.Complete(ctx, id, 0, result)
		case tasks.Failed:
			return s.Fail(ctx, id, 0, "it broke")
		case tasks.Cancelled:
			return s.Cancel(ctx, id, "stop it")
		}
		panic(to)
	}
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				ctx := testContext(t)
				task := create(t, ctx, s, NewTask("alice"))
				// Reach from: input_required via RequestInput(k0), a
				// terminal state from input_required so that the pending
				// request has to be cleared too.
				if from != tasks.Working {
					if err := s.RequestInput(ctx, task.ID, requests("k0")); err != nil {
						t.Fatal(err)
					}
				}
				if from.Terminal() {
					if err := apply(ctx, task.ID, from); err != nil {
						t.Fatal(err)
					}
				}
				before := get(t, ctx, s, task.ID)
				if before.Status != from {
					t.Fatalf("set-up reached %s, want %s", before.Status, from)
				}
				err := apply(ctx, task.ID, to)
				after := get(t, ctx, s, task.ID)
				var want error
				switch {
				case from.Terminal():
					want = tasks.ErrTerminal
				case !legal[[2]tasks.Status{from, to}]:
					want = tasks.ErrNotPending // working → working: nothing to answer
				}
				wantErr(t, fmt.Sprintf("%s → %s", from, to), err, want, task.ID)
				if want != nil {
					if d := sameTask(after, before); d != "" {
						t.Errorf("refused transition changed the task: %s", d)
					}
					return
				}
				if after.Status != to {
					t.Errorf("status %s, want %s", after.Status, to)
				}
				if after.UpdatedAt.Before(before.UpdatedAt) {
					t.Errorf("UpdatedAt went back from %s to %s", before.UpdatedAt, after.UpdatedAt)
				}
				var wantReqs map[string]abi.InputRequest
				switch to {
				case tasks.InputRequired:
					wantReqs = requests("k1")
					if from == tasks.InputRequired {
						wantReqs = requests("k0", "k1")
					}
				case tasks.Completed:
					if !sameJSON(after.Result, result) {
						t.Errorf("Result = %s, want %s", after.Result, result)
					}
				case tasks.Failed:
					if after.Error != "it broke" || after.StatusMessage != "it broke" {
						t.Errorf("Error %q, StatusMessage %q, want both %q", after.Error, after.StatusMessage, "it broke")
					}
				case tasks.Cancelled:
					if after.StatusMessage != "stop it" {
						t.Errorf("StatusMessage %q, want %q", after.StatusMessage, "stop it")
					}
				}
				if d := sameRequests(after.InputRequests, wantReqs); d != "" {
					t.Errorf("InputRequests after %s → %s: %s", from, to, d)
				}
			})
		}
	}
}

func testInput(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	task := create(t, ctx, s, NewTask("alice"))
	id := task.ID

	if err := s.RequestInput(ctx, id, nil); err == nil {
		t.Errorf("RequestInput with no requests succeeded")
	}
	if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, requests("c")); err != nil {
		t.Fatalf("RequestInput while input_required: %v", err)
	}
	for _, reused := range []string{"a", "c"} {
		reqs := requests("d")
		reqs[reused] = request("not " + reused)
		if err := s.RequestInput(ctx, id, reqs); err == nil {
			t.Errorf("RequestInput reusing pending key %q for another question succeeded", reused)
		}
	}
	if d := sameRequests(get(t, ctx, s, id).InputRequests, requests("a", "b", "c")); d != "" {
		t.Fatalf("pending after refused requests: %s", d)
	}

	wantErr(t, "Answer a key never asked", s.Answer(ctx, id, "zzz", answer("zzz")), tasks.ErrNotPending, id)
	if err := s.Answer(ctx, id, "b", answer("b")); err != nil {
		t.Fatal(err)
	}
	got := get(t, ctx, s, id)
	if got.Status != tasks.InputRequired {
		t.Errorf("after answering 1 of 3: status %s, want input_required", got.Status)
	}
	if d := sameRequests(got.InputRequests, requests("a", "c")); d != "" {
		t.Errorf("after answering b: %s", d)
	}
	wantErr(t, "Answer b twice", s.Answer(ctx, id, "b", answer("b2")), tasks.ErrNotPending, id)
	if err := s.RequestInput(ctx, id, map[string]abi.InputRequest{"b": request("not b")}); err == nil {
		t.Errorf("RequestInput reusing answered key b for another question succeeded")
	}

	declined := abi.InputResponse{Error: &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "no elicitation"}}
	if err := s.Answer(ctx, id, "a", declined); err != nil {
		t.Fatal(err)
	}
	if err := s.Answer(ctx, id, "c", answer("c")); err != nil {
		t.Fatal(err)
	}
	got = get(t, ctx, s, id)
	if got.Status != tasks.Working || len(got.InputRequests) != 0 {
		t.Errorf("after the last answer: status %s, pending %v; want working, none", got.Status, sortedKeys(got.InputRequests))
	}

	answers, err := s.AwaitAnswers(ctx, id, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]abi.InputResponse{"a": declined, "b": answer("b"), "c": answer("c")}
	if len(answers) != len(want) {
		t.Errorf("AwaitAnswers returned %v, want keys a, b, c", sortedKeys(answers))
	}
	for k, w := range want {
		if !sameResponse(answers[k], w) {
			t.Errorf("answer %s = %+v, want %+v", k, answers[k], w)
		}
	}
	// Answers stay until a run consumes them.
	run, err := s.StartRun(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.AwaitAnswers(ctx, id, []string{"b"}); err != nil || !sameResponse(again["b"], answer("b")) {
		t.Errorf("second AwaitAnswers of an unconsumed answer = %v, %v", again, err)
	}
	if err := s.AppendJournal(ctx, id, run.Token, [][]byte{[]byte("b answered")}, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.AwaitAnswers(short, id, []string{"b"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AwaitAnswers of a consumed answer: %v, want it to block until its deadline", err)
	}

	missing := tasks.NewID()
	wantErr(t, "RequestInput unknown task", s.RequestInput(ctx, missing, requests("x")), tasks.ErrNotFound, missing)
	wantErr(t, "Answer unknown task", s.Answer(ctx, missing, "x", answer("x")), tasks.ErrNotFound, missing)
	_, err = s.AwaitAnswers(ctx, missing, []string{"x"})
	wantErr(t, "AwaitAnswers unknown task", err, tasks.ErrNotFound, missing)
	for name, finish := range map[string]func() error{
		"Complete": func() error { return s.Complete(ctx, missing, 0, nil) },
		"Fail":     func() error { return s.Fail(ctx, missing, 0, "x") },
		"Cancel":   func() error { return s.Cancel(ctx, missing, "x") },
	} {
		wantErr(t, name+" unknown task", finish(), tasks.ErrNotFound, missing)
	}

	if err := s.Cancel(ctx, id, "stop"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RequestInput after Cancel", s.RequestInput(ctx, id, requests("e")), tasks.ErrTerminal, id)
	wantErr(t, "Answer after Cancel", s.Answer(ctx, id, "a", answer("a")), tasks.ErrTerminal, id)
	_, err = s.AwaitAnswers(ctx, id, []string{"a"})
	wantErr(t, "AwaitAnswers after Cancel", err, tasks.ErrTerminal, id)
}
