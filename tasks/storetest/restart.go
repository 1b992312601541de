package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wasmhost/wasmhost/tasks"
)

// testRestart: a task whose worker died starts over clean: working, no
// pending questions, no answers left for the new run to take, keys free to
// ask again, one status event; a finished task cannot be restarted.
func testRestart(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	log, err := watch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer log.close()

	t.Run("from input_required", func(t *testing.T) {
		task := create(t, ctx, s, NewTask("fred"))
		id := task.ID
		if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
			t.Fatal(err)
		}
		if err := s.Answer(ctx, id, "a", answer("stale")); err != nil { // answered, never taken
			t.Fatal(err)
		}
		if _, err := log.through(ctx, s, id); err != nil {
			t.Fatal(err)
		}
		if err := s.Restart(ctx, id); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		want := *task
		want.Status = tasks.Working
		got := get(t, ctx, s, id)
		want.UpdatedAt = got.UpdatedAt
		if d := sameTask(got, &want); d != "" {
			t.Errorf("after Restart: %s", d)
		}
		if got.UpdatedAt.Before(task.UpdatedAt) {
			t.Errorf("Restart did not stamp the task: updated %s, created %s", got.UpdatedAt, task.UpdatedAt)
		}
		evs, err := log.through(ctx, s, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := []tasks.Event{{Kind: tasks.EventStatus, TaskID: id, Status: tasks.Working}}; !sameEvents(evs, want) {
			t.Errorf("Restart sent\n%s\nwant\n%s", showEvents(evs), showEvents(want))
		}
		wantErr(t, "Answer a question of the earlier run", s.Answer(ctx, id, "b", answer("late")), tasks.ErrNotPending, id)

		// The new run asks the same questions; only new answers reach it.
		if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
			t.Fatalf("asking the earlier run's keys again: %v", err)
		}
		for _, k := range []string{"a", "b"} {
			if err := s.Answer(ctx, id, k, answer("fresh "+k)); err != nil {
				t.Fatal(err)
			}
		}
		got2, err := s.AwaitAnswers(ctx, id, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b"} {
			if !sameResponse(got2[k], answer("fresh "+k)) {
				t.Errorf("the new run got %s for %q, want the fresh answer", got2[k].Result, k)
			}
		}
	})

	t.Run("from working", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("fred")).ID
		if err := s.RequestInput(ctx, id, requests("k")); err != nil {
			t.Fatal(err)
		}
		if err := s.Answer(ctx, id, "k", answer("stale")); err != nil { // working again, answer untaken
			t.Fatal(err)
		}
		if err := s.Restart(ctx, id); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if got := get(t, ctx, s, id); got.Status != tasks.Working || len(got.InputRequests) != 0 {
			t.Errorf("after Restart: %s with %d requests, want working with none", got.Status, len(got.InputRequests))
		}
		if err := s.RequestInput(ctx, id, requests("k")); err != nil {
			t.Errorf("the untaken answer of the earlier run still holds its key: %v", err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, f := range []finisher{complete, fail, cancel} {
			task := create(t, ctx, s, NewTask("fred"))
			if err := f.call(ctx, s, task.ID); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "Restart a "+string(f.status)+" task", s.Restart(ctx, task.ID), tasks.ErrTerminal, task.ID)
			if got := get(t, ctx, s, task.ID); got.Status != f.status {
				t.Errorf("refused Restart changed a %s task to %s", f.status, got.Status)
			}
		}
		missing := tasks.NewID()
		wantErr(t, "Restart an unknown task", s.Restart(ctx, missing), tasks.ErrNotFound, missing)
	})

	t.Run("vs cancel", func(t *testing.T) {
		if err := RaceRestartCancel(ctx, s, 40); err != nil {
			t.Error(err)
		}
	})
}

// RaceRestartCancel races a restart (a worker taking over a dead worker's
// task) against a cancellation n times, half from input_required. Cancel
// always succeeds; Restart succeeds or fails with ErrTerminal; the task
// ends cancelled with nothing pending: a restart checked before the
// cancellation and written after it must not bring the task back.
func RaceRestartCancel(ctx context.Context, s tasks.Store, n int) error {
	for i := range n {
		task := NewTask("race")
		if err := s.Create(ctx, task); err != nil {
			return err
		}
		if i%2 == 1 {
			if err := s.RequestInput(ctx, task.ID, requests("k")); err != nil {
				return err
			}
		}
		errs := together(
			func() error { return s.Restart(ctx, task.ID) },
			func() error { return s.Cancel(ctx, task.ID, "cancelled") },
		)
		what := fmt.Sprintf("restart vs cancel, round %d", i)
		if errs[1] != nil {
			return fmt.Errorf("%s: Cancel: %v", what, errs[1])
		}
		if errs[0] != nil && !errors.Is(errs[0], tasks.ErrTerminal) {
			return fmt.Errorf("%s: Restart got %v, want success or ErrTerminal", what, errs[0])
		}
		got, err := s.Get(ctx, task.ID)
		if err != nil {
			return err
		}
		if got.Status != tasks.Cancelled || len(got.InputRequests) != 0 {
			return fmt.Errorf("%s: task ended %s with %d pending requests, want cancelled with none", what, got.Status, len(got.InputRequests))
		}
	}
	return nil
}
