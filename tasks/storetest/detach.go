package storetest

import (
	"testing"

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

// testReask: a key may be asked again once its answer was taken, never
// while it is pending or its answer waits.
func testReask(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	id := create(t, ctx, s, NewTask("erin")).ID
	if err := s.RequestInput(ctx, id, requests("k")); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, requests("k")); err == nil {
		t.Error("asking a pending key again succeeded")
	}
	if err := s.Answer(ctx, id, "k", answer("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, requests("k")); err == nil {
		t.Error("asking a key whose answer was not taken succeeded")
	}
	if _, err := s.AwaitAnswers(ctx, id, []string{"k"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, id, requests("k")); err != nil {
		t.Fatalf("asking again after the answer was taken: %v", err)
	}
	if err := s.Answer(ctx, id, "k", answer("second")); err != nil {
		t.Fatal(err)
	}
	got, err := s.AwaitAnswers(ctx, id, []string{"k"})
	if err != nil || !sameResponse(got["k"], answer("second")) {
		t.Errorf("second round got %v, %v; want the second answer", got, err)
	}
}
