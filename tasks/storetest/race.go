package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

func testRaces(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	const n = 40
	for _, c := range []struct {
		name  string
		check func(context.Context, tasks.Store, int) error
	}{
		{"FinishVsFinish", RaceFinish},
		{"CancelVsAnswer", RaceCancelAnswer},
		{"AnswerVsAnswer", RaceAnswerAnswer},
		{"StaleAnswer", func(ctx context.Context, s tasks.Store, _ int) error { return StaleAnswer(ctx, s) }},
		{"PartialAnswers", racePartialAnswers},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.check(ctx, s, n); err != nil {
				t.Error(err)
			}
		})
	}
}

// finisher is one of the calls that end a task.
type finisher struct {
	status tasks.Status
	call   func(context.Context, tasks.Store, string) error
}

var (
	resultJSON = json.RawMessage(`{"content":[{"type":"text","text":"done"}]}`)
	complete   = finisher{tasks.Completed, func(ctx context.Context, s tasks.Store, id string) error { return s.Complete(ctx, id, 0, resultJSON) }}
	fail       = finisher{tasks.Failed, func(ctx context.Context, s tasks.Store, id string) error { return s.Fail(ctx, id, 0, "failed") }}
	cancel     = finisher{tasks.Cancelled, func(ctx context.Context, s tasks.Store, id string) error { return s.Cancel(ctx, id, "cancelled") }}
)

// together runs fns at the same moment and returns their errors.
func together(fns ...func() error) []error {
	errs := make([]error, len(fns))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			<-start
			errs[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// RaceFinish races two different endings of the same task n times for each
// pair (complete/cancel, fail/cancel, complete/fail), half of the time from
// working and half from input_required. Exactly one call may succeed; the
// other must fail with ErrTerminal; the stored task and the watched events
// must show the winner's ending and nothing after it.
func RaceFinish(ctx context.Context, s tasks.Store, n int) error {
	log, err := watch(ctx, s)
	if err != nil {
		return err
	}
	defer log.close()
	for i := range n {
		for _, pair := range [][2]finisher{{complete, cancel}, {fail, cancel}, {complete, fail}} {
			what := fmt.Sprintf("%s vs %s, round %d", pair[0].status, pair[1].status, i)
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
				func() error { return pair[0].call(ctx, s, task.ID) },
				func() error { return pair[1].call(ctx, s, task.ID) },
			)
			var winner, loser int
			switch {
			case errs[0] == nil && errs[1] == nil:
				return fmt.Errorf("%s: both succeeded; exactly one may end the task", what)
			case errs[0] == nil:
				winner, loser = 0, 1
			case errs[1] == nil:
				winner, loser = 1, 0
			default:
				return fmt.Errorf("%s: neither succeeded: %v; %v", what, errs[0], errs[1])
			}
			if !errors.Is(errs[loser], tasks.ErrTerminal) {
				return fmt.Errorf("%s: the loser got %v, want ErrTerminal", what, errs[loser])
			}
			got, err := s.Get(ctx, task.ID)
			if err != nil {
				return err
			}
			want := pair[winner].status
			if got.Status != want {
				return fmt.Errorf("%s: %s won but the task is %s", what, want, got.Status)
			}
			if (got.Status == tasks.Completed) != (len(got.Result) > 0) || (got.Status == tasks.Failed) != (got.Error != "") {
				return fmt.Errorf("%s: task %s carries result %q and error %q: the loser wrote too", what, got.Status, got.Result, got.Error)
			}
			evs, err := log.through(ctx, s, task.ID)
			if err != nil {
				return err
			}
			if err := terminalIsFinal(evs, want); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	return nil
}

// RaceCancelAnswer races a client's answer to the only pending request
// against a cancellation, with the guest already waiting, n times. Cancel
// always succeeds (answered or not, the task may be cancelled); the answer
// succeeds or fails with ErrTerminal; the waiting guest gets the answer
// only if the answer won, and ErrTerminal otherwise. Whatever the order,
// the task ends cancelled: an answer checked before the cancellation and
// written after it must not resurrect the task.
func RaceCancelAnswer(ctx context.Context, s tasks.Store, n int) error {
	log, err := watch(ctx, s)
	if err != nil {
		return err
	}
	defer log.close()
	for i := range n {
		what := fmt.Sprintf("round %d", i)
		task := NewTask("race")
		if err := s.Create(ctx, task); err != nil {
			return err
		}
		if err := s.RequestInput(ctx, task.ID, requests("k")); err != nil {
			return err
		}
		type awaited struct {
			answers map[string]abi.InputResponse
			err     error
		}
		waiter := make(chan awaited, 1)
		go func() {
			a, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
			waiter <- awaited{a, err}
		}()
		errs := together(
			func() error { return s.Answer(ctx, task.ID, "k", answer("k")) },
			func() error { return s.Cancel(ctx, task.ID, "cancelled") },
		)
		var w awaited
		select {
		case w = <-waiter:
		case <-ctx.Done():
			return fmt.Errorf("%s: the waiting guest never woke: %w", what, ctx.Err())
		}
		answerErr, cancelErr := errs[0], errs[1]
		switch {
		case cancelErr != nil:
			return fmt.Errorf("%s: Cancel: %v, want success", what, cancelErr)
		case answerErr != nil && !errors.Is(answerErr, tasks.ErrTerminal):
			return fmt.Errorf("%s: Answer: %v, want success or ErrTerminal", what, answerErr)
		case w.err != nil && !errors.Is(w.err, tasks.ErrTerminal):
			return fmt.Errorf("%s: AwaitAnswers: %v, want the answer or ErrTerminal", what, w.err)
		case w.err == nil && answerErr != nil:
			return fmt.Errorf("%s: the guest got an answer that was refused (%v)", what, answerErr)
		case w.err == nil && !sameResponse(w.answers["k"], answer("k")):
			return fmt.Errorf("%s: the guest got %+v, not the answer given", what, w.answers)
		}
		got, err := s.Get(ctx, task.ID)
		if err != nil {
			return err
		}
		if got.Status != tasks.Cancelled || len(got.InputRequests) != 0 {
			return fmt.Errorf("%s: after Cancel succeeded the task is %s with pending %v (answer error: %v)",
				what, got.Status, sortedKeys(got.InputRequests), answerErr)
		}
		if _, err := s.AwaitAnswers(ctx, task.ID, []string{"k"}); !errors.Is(err, tasks.ErrTerminal) {
			return fmt.Errorf("%s: AwaitAnswers after the race: %v, want ErrTerminal", what, err)
		}
		evs, err := log.through(ctx, s, task.ID)
		if err != nil {
			return err
		}
		if err := terminalIsFinal(evs, tasks.Cancelled); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// RaceAnswerAnswer races two different answers to the same request n
// times: exactly one is taken, the other gets ErrNotPending, and the guest
// receives the one that was taken.
func RaceAnswerAnswer(ctx context.Context, s tasks.Store, n int) error {
	for i := range n {
		what := fmt.Sprintf("round %d", i)
		task := NewTask("race")
		if err := s.Create(ctx, task); err != nil {
			return err
		}
		keys := []string{"k"}
		if i%2 == 1 {
			keys = append(keys, "other") // stays input_required after the race
		}
		if err := s.RequestInput(ctx, task.ID, requests(keys...)); err != nil {
			return err
		}
		errs := together(
			func() error { return s.Answer(ctx, task.ID, "k", answer("first")) },
			func() error { return s.Answer(ctx, task.ID, "k", answer("second")) },
		)
		var won string
		switch {
		case errs[0] == nil && errs[1] == nil:
			return fmt.Errorf("%s: both answers to one request were taken", what)
		case errs[0] == nil && errors.Is(errs[1], tasks.ErrNotPending):
			won = "first"
		case errs[1] == nil && errors.Is(errs[0], tasks.ErrNotPending):
			won = "second"
		default:
			return fmt.Errorf("%s: Answer errors %v and %v; want one success and one ErrNotPending", what, errs[0], errs[1])
		}
		got, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
		if err != nil {
			return fmt.Errorf("%s: AwaitAnswers: %w", what, err)
		}
		if !sameResponse(got["k"], answer(won)) {
			return fmt.Errorf("%s: the %s answer was taken but the guest got %s", what, won, got["k"].Result)
		}
		after, err := s.Get(ctx, task.ID)
		if err != nil {
			return err
		}
		if want := len(keys) - 1; len(after.InputRequests) != want {
			return fmt.Errorf("%s: %d requests pending after one answer, want %d", what, len(after.InputRequests), want)
		}
	}
	return nil
}

// StaleAnswer checks that an answer naming a request the task is not
// waiting on (never asked, already answered, asked before the task moved
// on) is refused with ErrNotPending, changes nothing, and never reaches a
// guest waiting on another request.
func StaleAnswer(ctx context.Context, s tasks.Store) error {
	task := NewTask("stale")
	id := task.ID
	if err := s.Create(ctx, task); err != nil {
		return err
	}
	run, err := s.StartRun(ctx, id, "")
	if err != nil {
		return err
	}
	if err := s.Answer(ctx, id, "k1", answer("early")); !errors.Is(err, tasks.ErrNotPending) {
		return fmt.Errorf("answer while working with nothing asked: %v, want ErrNotPending", err)
	}
	if err := s.RequestInput(ctx, id, requests("k1", "k2")); err != nil {
		return err
	}
	if err := s.Answer(ctx, id, "k1", answer("k1")); err != nil {
		return err
	}
	refuse := func(what, key string, pending ...string) error {
		before, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if err := s.Answer(ctx, id, key, answer("stale-"+key)); !errors.Is(err, tasks.ErrNotPending) {
			return fmt.Errorf("%s: Answer(%s): %v, want ErrNotPending", what, key, err)
		}
		after, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if d := sameTask(after, before); d != "" {
			return fmt.Errorf("%s: the refused answer changed the task: %s", what, d)
		}
		if d := sameRequests(after.InputRequests, requests(pending...)); d != "" {
			return fmt.Errorf("%s: pending requests: %s", what, d)
		}
		return nil
	}
	if err := refuse("already answered", "k1", "k2"); err != nil {
		return err
	}
	if err := refuse("never asked", "k9", "k2"); err != nil {
		return err
	}
	if err := s.Answer(ctx, id, "k2", answer("k2")); err != nil {
		return err
	}
	if got, err := s.AwaitAnswers(ctx, id, []string{"k1", "k2"}); err != nil {
		return err
	} else if !sameResponse(got["k1"], answer("k1")) || !sameResponse(got["k2"], answer("k2")) {
		return fmt.Errorf("guest got %s and %s, want the first answers", got["k1"].Result, got["k2"].Result)
	}
	if err := s.AppendJournal(ctx, id, run.Token, nil, []string{"k1", "k2"}); err != nil {
		return err
	}
	// The task moves on to a new question; answers to the old ones are stale.
	if err := s.RequestInput(ctx, id, requests("k3")); err != nil {
		return err
	}
	for _, key := range []string{"k1", "k2"} {
		if err := refuse("after the task moved on", key, "k3"); err != nil {
			return err
		}
	}
	// Nothing may be waiting for a guest asking for k1 again: the wait
	// must run into its deadline.
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	got, err := s.AwaitAnswers(short, id, []string{"k1"})
	stop()
	if err == nil {
		return fmt.Errorf("a stale answer reached the guest: %s", got["k1"].Result)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("AwaitAnswers(k1) after the task moved on: %v, want it to wait until its deadline", err)
	}
	if err := s.Answer(ctx, id, "k3", answer("k3")); err != nil {
		return err
	}
	got, err = s.AwaitAnswers(ctx, id, []string{"k3"})
	if err != nil {
		return err
	}
	if !sameResponse(got["k3"], answer("k3")) {
		return fmt.Errorf("guest waiting on k3 got %s", got["k3"].Result)
	}
	return nil
}

// racePartialAnswers answers two requests of one task at the same moment n
// times: both are taken and the task is working again exactly once.
func racePartialAnswers(ctx context.Context, s tasks.Store, n int) error {
	for i := range n {
		task := NewTask("race")
		if err := s.Create(ctx, task); err != nil {
			return err
		}
		if err := s.RequestInput(ctx, task.ID, requests("a", "b")); err != nil {
			return err
		}
		errs := together(
			func() error { return s.Answer(ctx, task.ID, "a", answer("a")) },
			func() error { return s.Answer(ctx, task.ID, "b", answer("b")) },
		)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("round %d: answering different requests: %w", i, err)
		}
		got, err := s.Get(ctx, task.ID)
		if err != nil {
			return err
		}
		if got.Status != tasks.Working || len(got.InputRequests) != 0 {
			return fmt.Errorf("round %d: after both answers the task is %s with %v pending", i, got.Status, sortedKeys(got.InputRequests))
		}
		answers, err := s.AwaitAnswers(ctx, task.ID, []string{"a", "b"})
		if err != nil {
			return err
		}
		if !sameResponse(answers["a"], answer("a")) || !sameResponse(answers["b"], answer("b")) {
			return fmt.Errorf("round %d: answers mixed up: %v", i, answers)
		}
	}
	return nil
}

// terminalIsFinal checks a task's status events: the last is want, and
// nothing follows the first terminal one.
func terminalIsFinal(evs []tasks.Event, want tasks.Status) error {
	var statuses []tasks.Status
	for _, e := range evs {
		if e.Kind == tasks.EventStatus {
			statuses = append(statuses, e.Status)
		}
	}
	for i, st := range statuses {
		if st.Terminal() {
			if i != len(statuses)-1 || st != want {
				return fmt.Errorf("status events %v: want the task to end %s and nothing after the first terminal state", statuses, want)
			}
			return nil
		}
	}
	return fmt.Errorf("status events %v: no terminal state, want %s", statuses, want)
}
