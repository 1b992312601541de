package storetest

import (
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// testDetach: a detachable call becomes a listed task; nothing else can.
func testDetach(t *testing.T, s tasks.Store) {
	ctx := testContext(t)

	plain := NewTask("dora")
	plain.Kind = tasks.KindCall
	create(t, ctx, s, plain)
	wantErr(t, "Detach a call that is not detachable", s.Detach(ctx, plain.ID), tasks.ErrIllegalTransition, plain.ID)
	wantErr(t, "Detach a task", s.Detach(ctx, create(t, ctx, s, NewTask("dora")).ID), tasks.ErrIllegalTransition, "")

	call := NewTask("dora")
	call.Kind, call.Detachable = tasks.KindCall, true
	create(t, ctx, s, call)
	if err := s.Detach(ctx, call.ID); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if got := get(t, ctx, s, call.ID); got.Kind != tasks.KindTask || got.Status != tasks.Working {
		t.Errorf("after Detach: kind %s status %s, want task working", got.Kind, got.Status)
	}
	page, _, err := s.List(ctx, "dora", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range page {
		found = found || p.ID == call.ID
	}
	if !found {
		t.Errorf("a detached call is not listed among its owner's tasks")
	}
	wantErr(t, "Detach twice", s.Detach(ctx, call.ID), tasks.ErrIllegalTransition, call.ID)
	if err := s.Cancel(ctx, call.ID, "done"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Detach a finished task", s.Detach(ctx, call.ID), tasks.ErrTerminal, call.ID)
}

// testReask: a key may be asked afresh once its answer was consumed; while
// it is pending or its answer waits, only the same question may be asked
// again (a replay does), and that changes nothing.
func testReask(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	id := create(t, ctx, s, NewTask("erin")).ID
	run, err := s.StartRun(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	other := map[string]abi.InputRequest{"k": request("another question")}
	if err := s.RequestInput(ctx, id, requests("k")); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, other); err == nil {
		t.Error("asking a pending key with another question succeeded")
	}
	before := get(t, ctx, s, id)
	if err := s.RequestInput(ctx, id, requests("k")); err != nil {
		t.Errorf("asking a pending key again with the same question: %v", err)
	}
	if d := sameTask(get(t, ctx, s, id), before); d != "" {
		t.Errorf("asking the same question again changed the task: %s", d)
	}
	if err := s.Answer(ctx, id, "k", answer("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, other); err == nil {
		t.Error("asking a key whose answer was not consumed, with another question, succeeded")
	}
	before = get(t, ctx, s, id)
	if err := s.RequestInput(ctx, id, requests("k")); err != nil {
		t.Errorf("asking an answered key again with the same question: %v", err)
	}
	if d := sameTask(get(t, ctx, s, id), before); d != "" {
		t.Errorf("asking an answered question again changed the task: %s", d)
	}
	for range 2 { // AwaitAnswers reads, it does not take
		got, err := s.AwaitAnswers(ctx, id, []string{"k"})
		if err != nil || !sameResponse(got["k"], answer("first")) {
			t.Fatalf("AwaitAnswers of an answered key = %v, %v; want the first answer", got, err)
		}
	}
	if err := s.AppendJournal(ctx, id, run.Token, nil, []string{"k"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, other); err != nil {
		t.Fatalf("asking afresh after the answer was consumed: %v", err)
	}
	if err := s.Answer(ctx, id, "k", answer("second")); err != nil {
		t.Fatal(err)
	}
	got, err := s.AwaitAnswers(ctx, id, []string{"k"})
	if err != nil || !sameResponse(got["k"], answer("second")) {
		t.Errorf("second round got %v, %v; want the second answer", got, err)
	}
}
