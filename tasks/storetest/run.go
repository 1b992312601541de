package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/tasks"
)

// startRun starts a run of task id and fails the test if it cannot.
func startRun(t *testing.T, ctx context.Context, s tasks.Store, id, module string) tasks.Run {
	t.Helper()
	run, err := s.StartRun(ctx, id, module)
	if err != nil {
		t.Fatalf("StartRun %s: %v", id, err)
	}
	return run
}

func entries(names ...string) [][]byte {
	es := make([][]byte, len(names))
	for i, n := range names {
		es[i] = []byte(n)
	}
	return es
}

func sameJournal(got, want [][]byte) bool {
	return slices.EqualFunc(got, want, bytes.Equal)
}

func showJournal(j [][]byte) string {
	s := make([]string, len(j))
	for i, e := range j {
		if len(e) > 40 {
			s[i] = fmt.Sprintf("<%d bytes>", len(e))
		} else {
			s[i] = string(e)
		}
	}
	return fmt.Sprint(s)
}

// nextQueued returns the id the queue hands out within wait, or "" if none.
func nextQueued(ctx context.Context, s tasks.Store, wait time.Duration) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	d, err := s.Queue().Next(qctx)
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return "", nil
		}
		return "", err
	}
	if err := d.Ack(ctx); err != nil {
		return "", err
	}
	return d.TaskID(), nil
}

// testRuns: StartRun hands out growing tokens, pins the first module named,
// returns what earlier runs journalled, and refuses finished tasks.
func testRuns(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	id := create(t, ctx, s, NewTask("gus")).ID

	first := startRun(t, ctx, s, id, "")
	if first.Token <= 0 || len(first.Journal) != 0 || first.Module != "" {
		t.Errorf("first run = token %d, journal %s, module %q; want a positive token, nothing journalled, nothing pinned",
			first.Token, showJournal(first.Journal), first.Module)
	}
	second := startRun(t, ctx, s, id, "sha256:aa")
	if second.Token <= first.Token || second.Module != "sha256:aa" {
		t.Errorf("second run = token %d (first %d), module %q; want a larger token and sha256:aa pinned", second.Token, first.Token, second.Module)
	}
	if err := s.AppendJournal(ctx, id, second.Token, entries("e1", "e2"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendJournal(ctx, id, second.Token, entries("e3"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendJournal(ctx, id, second.Token, nil, nil); err != nil {
		t.Errorf("appending nothing: %v", err)
	}
	third := startRun(t, ctx, s, id, "sha256:bb")
	if third.Token <= second.Token {
		t.Errorf("third run token %d, want more than %d", third.Token, second.Token)
	}
	if third.Module != "sha256:aa" {
		t.Errorf("third run module %q, want the pinned sha256:aa", third.Module)
	}
	if want := entries("e1", "e2", "e3"); !sameJournal(third.Journal, want) {
		t.Errorf("third run journal %s, want %s", showJournal(third.Journal), showJournal(want))
	}
	third.Journal[0][0] = 'X' // the caller's copy
	if again := startRun(t, ctx, s, id, ""); !sameJournal(again.Journal, entries("e1", "e2", "e3")) {
		t.Errorf("changing a returned journal changed the stored one: %s", showJournal(again.Journal))
	}
	if got := get(t, ctx, s, id); got.Status != tasks.Working {
		t.Errorf("after StartRun: %s, want working", got.Status)
	}

	if err := s.Cancel(ctx, id, "stop"); err != nil {
		t.Fatal(err)
	}
	_, err := s.StartRun(ctx, id, "")
	wantErr(t, "StartRun of a cancelled task", err, tasks.ErrTerminal, id)
	missing := tasks.NewID()
	_, err = s.StartRun(ctx, missing, "")
	wantErr(t, "StartRun of an unknown task", err, tasks.ErrNotFound, missing)
	wantErr(t, "AppendJournal of an unknown task", s.AppendJournal(ctx, missing, 1, entries("x"), nil), tasks.ErrNotFound, missing)
	wantErr(t, "Park of an unknown task", s.Park(ctx, missing, 1), tasks.ErrNotFound, missing)

	// Every run of a task has its own token, however they interleave.
	t.Run("takeover race", func(t *testing.T) {
		if err := RaceTakeover(ctx, s, 40); err != nil {
			t.Error(err)
		}
	})
	t.Run("vs cancel", func(t *testing.T) {
		if err := RaceStartRunCancel(ctx, s, 40); err != nil {
			t.Error(err)
		}
	})
}

// testFencing: once a later run started, an earlier run's journal write,
// park, completion and failure are refused with ErrFenced and change
// nothing; token 0 (not a run) completes unfenced.
func testFencing(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	for _, c := range []struct {
		name string
		call func(id string, token int64) error
	}{
		{"append", func(id string, token int64) error {
			return s.AppendJournal(ctx, id, token, entries("late"), []string{"k"})
		}},
		{"park", func(id string, token int64) error { return s.Park(ctx, id, token) }},
		{"complete", func(id string, token int64) error { return s.Complete(ctx, id, token, resultJSON) }},
		{"fail", func(id string, token int64) error { return s.Fail(ctx, id, token, "late failure") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := create(t, ctx, s, NewTask("hal")).ID
			old := startRun(t, ctx, s, id, "sha256:aa")
			if err := s.AppendJournal(ctx, id, old.Token, entries("e1"), nil); err != nil {
				t.Fatal(err)
			}
			if err := s.RequestInput(ctx, id, requests("k", "q")); err != nil {
				t.Fatal(err)
			}
			if err := s.Answer(ctx, id, "k", answer("k")); err != nil {
				t.Fatal(err)
			}
			current := startRun(t, ctx, s, id, "")
			before := get(t, ctx, s, id)
			for _, stale := range []int64{old.Token, 0, current.Token + 1} {
				if stale == 0 && (c.name == "complete" || c.name == "fail") {
					continue // 0 is the front end's, unfenced
				}
				wantErr(t, fmt.Sprintf("%s with token %d (current %d)", c.name, stale, current.Token), c.call(id, stale), tasks.ErrFenced, id)
			}
			if d := sameTask(get(t, ctx, s, id), before); d != "" {
				t.Errorf("refused %s changed the task: %s", c.name, d)
			}
			if got, err := s.AwaitAnswers(ctx, id, []string{"k"}); err != nil || !sameResponse(got["k"], answer("k")) {
				t.Errorf("after a refused %s the answer is %v, %v; want it still there", c.name, got, err)
			}
			if queued, err := nextQueued(ctx, s, 200*time.Millisecond); err != nil || queued != "" {
				t.Errorf("after a refused %s the queue handed out %q (%v), want nothing", c.name, queued, err)
			}
			if err := s.Answer(ctx, id, "q", answer("q")); err != nil {
				t.Fatal(err)
			}
			if queued, err := nextQueued(ctx, s, 200*time.Millisecond); err != nil || queued != "" {
				t.Errorf("a refused park queued the task once answered: %q (%v)", queued, err)
			}
			// The current run still owns everything.
			if err := c.call(id, current.Token); err != nil {
				t.Errorf("%s of the current run: %v", c.name, err)
			}
			switch c.name {
			case "append":
				if j := startRun(t, ctx, s, id, "").Journal; !sameJournal(j, entries("e1", "late")) {
					t.Errorf("journal %s, want e1 and the current run's entry", showJournal(j))
				}
			case "park":
				if queued, err := nextQueued(ctx, s, 5*time.Second); err != nil || queued != id {
					t.Errorf("the current run parked with every question answered: queue handed out %q (%v), want the task", queued, err)
				}
			}
		})
	}

	t.Run("front end", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("hal")).ID
		startRun(t, ctx, s, id, "")
		if err := s.Complete(ctx, id, 0, resultJSON); err != nil {
			t.Errorf("Complete from outside any run: %v", err)
		}
	})
	t.Run("finished", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("hal")).ID
		run := startRun(t, ctx, s, id, "")
		if err := s.Complete(ctx, id, run.Token, resultJSON); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "Fail a completed task", s.Fail(ctx, id, run.Token, "x"), tasks.ErrTerminal, id)
		wantErr(t, "AppendJournal to a completed task", s.AppendJournal(ctx, id, run.Token, entries("x"), nil), tasks.ErrTerminal, id)
		wantErr(t, "Park a completed task", s.Park(ctx, id, run.Token), tasks.ErrTerminal, id)
	})
}

// testConsume: AppendJournal drops the answers it names in the same step
// as it records the entries, and neither happens when it is refused.
func testConsume(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	id := create(t, ctx, s, NewTask("ida")).ID
	run := startRun(t, ctx, s, id, "")
	if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := s.Answer(ctx, id, k, answer(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AwaitAnswers(ctx, id, []string{"a", "b"})
	if err != nil || !sameResponse(got["a"], answer("a")) || !sameResponse(got["b"], answer("b")) {
		t.Fatalf("AwaitAnswers = %v, %v", got, err)
	}
	if err := s.AppendJournal(ctx, id, run.Token, entries("a and b answered"), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	// a is consumed: asked afresh it is pending again; b is not.
	if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
		t.Fatal(err)
	}
	if d := sameRequests(get(t, ctx, s, id).InputRequests, requests("a")); d != "" {
		t.Errorf("after consuming a and asking a, b again: %s", d)
	}
	if got, err := s.AwaitAnswers(ctx, id, []string{"b"}); err != nil || !sameResponse(got["b"], answer("b")) {
		t.Errorf("unconsumed b = %v, %v", got, err)
	}
	// A refused append consumes nothing and records nothing.
	run2 := startRun(t, ctx, s, id, "")
	wantErr(t, "stale append", s.AppendJournal(ctx, id, run.Token, entries("stale"), []string{"b"}), tasks.ErrFenced, id)
	if got, err := s.AwaitAnswers(ctx, id, []string{"b"}); err != nil || !sameResponse(got["b"], answer("b")) {
		t.Errorf("a refused append took b: %v, %v", got, err)
	}
	if err := s.AppendJournal(ctx, id, run2.Token, entries("b recorded"), []string{"b", "never-asked"}); err != nil {
		t.Fatalf("consuming an answered key and an unknown one: %v", err)
	}
	if j := startRun(t, ctx, s, id, "").Journal; !sameJournal(j, entries("a and b answered", "b recorded")) {
		t.Errorf("journal %s", showJournal(j))
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.AwaitAnswers(short, id, []string{"b"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AwaitAnswers of consumed b: %v, want it to wait until its deadline", err)
	}
}

// testPark: a parked run's task is queued again when its last question is
// answered (at once if none is left), once; the new run keeps the answers
// and the journal, and asking the same questions again finds the answers.
func testPark(t *testing.T, s tasks.Store) {
	ctx := testContext(t)

	t.Run("answered later", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("jo")).ID
		run := startRun(t, ctx, s, id, "sha256:aa")
		if err := s.AppendJournal(ctx, id, run.Token, entries("before the question"), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
			t.Fatal(err)
		}
		if err := s.Park(ctx, id, run.Token); err != nil {
			t.Fatalf("Park: %v", err)
		}
		if got := get(t, ctx, s, id); got.Status != tasks.InputRequired {
			t.Errorf("parked task is %s, want input_required", got.Status)
		}
		if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
			t.Fatal(err)
		}
		if queued, err := nextQueued(ctx, s, 200*time.Millisecond); err != nil || queued != "" {
			t.Fatalf("queued with a question still pending: %q, %v", queued, err)
		}
		if err := s.Answer(ctx, id, "b", answer("b")); err != nil {
			t.Fatal(err)
		}
		if queued, err := nextQueued(ctx, s, 5*time.Second); err != nil || queued != id {
			t.Fatalf("after the last answer the queue handed out %q (%v), want the task", queued, err)
		}
		resumed := startRun(t, ctx, s, id, "sha256:bb")
		if resumed.Token <= run.Token || resumed.Module != "sha256:aa" || !sameJournal(resumed.Journal, entries("before the question")) {
			t.Errorf("resumed run = token %d, module %q, journal %s", resumed.Token, resumed.Module, showJournal(resumed.Journal))
		}
		if got := get(t, ctx, s, id); got.Status != tasks.Working {
			t.Errorf("resumed task is %s, want working", got.Status)
		}
		if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
			t.Fatalf("the replay asking its questions again: %v", err)
		}
		if got := get(t, ctx, s, id); got.Status != tasks.Working || len(got.InputRequests) != 0 {
			t.Errorf("after the replay asked answered questions: %s with %v pending, want working with none", got.Status, sortedKeys(got.InputRequests))
		}
		got, err := s.AwaitAnswers(ctx, id, []string{"a", "b"})
		if err != nil || !sameResponse(got["a"], answer("a")) || !sameResponse(got["b"], answer("b")) {
			t.Errorf("the replay's AwaitAnswers = %v, %v", got, err)
		}
		// Queued once: a new question, answered, queues nothing unless
		// the new run parks too.
		if err := s.AppendJournal(ctx, id, resumed.Token, entries("answers"), []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RequestInput(ctx, id, requests("c")); err != nil {
			t.Fatal(err)
		}
		if err := s.Answer(ctx, id, "c", answer("c")); err != nil {
			t.Fatal(err)
		}
		if queued, err := nextQueued(ctx, s, 200*time.Millisecond); err != nil || queued != "" {
			t.Errorf("an answer to a run that did not park queued %q (%v)", queued, err)
		}
	})

	t.Run("answered already", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("jo")).ID
		run := startRun(t, ctx, s, id, "")
		if err := s.RequestInput(ctx, id, requests("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Park(ctx, id, run.Token); err != nil {
			t.Fatal(err)
		}
		if queued, err := nextQueued(ctx, s, 5*time.Second); err != nil || queued != id {
			t.Fatalf("parked with its answer in: the queue handed out %q (%v), want the task at once", queued, err)
		}
	})

	t.Run("restarted before the answer", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("jo")).ID
		run := startRun(t, ctx, s, id, "")
		if err := s.RequestInput(ctx, id, requests("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Park(ctx, id, run.Token); err != nil {
			t.Fatal(err)
		}
		startRun(t, ctx, s, id, "") // another worker resumed it anyway: the park is over
		if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
			t.Fatal(err)
		}
		if queued, err := nextQueued(ctx, s, 200*time.Millisecond); err != nil || queued != "" {
			t.Errorf("an answer to a run that was resumed queued %q (%v)", queued, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		id := create(t, ctx, s, NewTask("jo")).ID
		run := startRun(t, ctx, s, id, "")
		if err := s.RequestInput(ctx, id, requests("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Park(ctx, id, run.Token); err != nil {
			t.Fatal(err)
		}
		if err := s.Cancel(ctx, id, "stop"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "Answer a cancelled parked task", s.Answer(ctx, id, "a", answer("a")), tasks.ErrTerminal, id)
		if queued, err := nextQueued(ctx, s, 200*time.Millisecond); err != nil || queued != "" {
			t.Errorf("a cancelled parked task was queued: %q (%v)", queued, err)
		}
	})
}

// testStartRunKeepsQuestions: a run started while questions are pending
// (the earlier run's worker died, or evicted its guest) keeps them and the
// answers given so far, and the task stays input_required.
func testStartRunKeepsQuestions(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	log, err := watch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer log.close()
	task := create(t, ctx, s, NewTask("kim"))
	id := task.ID
	startRun(t, ctx, s, id, "")
	if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := log.through(ctx, s, id); err != nil {
		t.Fatal(err)
	}
	before := get(t, ctx, s, id)
	startRun(t, ctx, s, id, "")
	after := get(t, ctx, s, id)
	want := *before
	want.UpdatedAt = after.UpdatedAt
	if d := sameTask(after, &want); d != "" {
		t.Errorf("StartRun with a question pending: %s", d)
	}
	evs, err := log.through(ctx, s, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := []tasks.Event{{Kind: tasks.EventStatus, TaskID: id, Status: tasks.InputRequired}}; !sameEvents(evs, want) {
		t.Errorf("StartRun sent\n%s\nwant\n%s", showEvents(evs), showEvents(want))
	}
	if err := s.RequestInput(ctx, id, requests("a", "b")); err != nil {
		t.Fatalf("the new run asking the same questions: %v", err)
	}
	if err := s.Answer(ctx, id, "b", answer("b")); err != nil {
		t.Fatalf("answering the question the earlier run asked: %v", err)
	}
	got, err := s.AwaitAnswers(ctx, id, []string{"a", "b"})
	if err != nil || !sameResponse(got["a"], answer("a")) || !sameResponse(got["b"], answer("b")) {
		t.Errorf("the new run's AwaitAnswers = %v, %v", got, err)
	}
}

// testJournalBound: a journal holds DefaultMaxJournalBytes of entries and
// not a byte more; a refused append changes nothing.
func testJournalBound(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	id := create(t, ctx, s, NewTask("lou")).ID
	run := startRun(t, ctx, s, id, "")
	if err := s.RequestInput(ctx, id, requests("k")); err != nil {
		t.Fatal(err)
	}
	if err := s.Answer(ctx, id, "k", answer("k")); err != nil {
		t.Fatal(err)
	}
	const chunk = 1 << 20
	var want [][]byte
	for i := range tasks.DefaultMaxJournalBytes / chunk {
		e := bytes.Repeat([]byte{byte('a' + i)}, chunk)
		if i == 0 {
			e = e[:chunk-1] // leaves room for exactly one byte
		}
		if err := s.AppendJournal(ctx, id, run.Token, [][]byte{e}, nil); err != nil {
			t.Fatalf("append up to %d bytes: %v", (i+1)*chunk, err)
		}
		want = append(want, e)
	}
	wantErr(t, "append past the bound", s.AppendJournal(ctx, id, run.Token, entries("xy"), []string{"k"}), tasks.ErrJournalFull, id)
	if got, err := s.AwaitAnswers(ctx, id, []string{"k"}); err != nil || !sameResponse(got["k"], answer("k")) {
		t.Errorf("a refused append consumed the answer: %v, %v", got, err)
	}
	if err := s.AppendJournal(ctx, id, run.Token, entries("z"), nil); err != nil {
		t.Errorf("append of the last byte: %v", err)
	}
	want = append(want, []byte("z"))
	if j := startRun(t, ctx, s, id, "").Journal; !sameJournal(j, want) {
		t.Errorf("journal after the bound was reached: %s, want %s", showJournal(j), showJournal(want))
	}
}

// RaceTakeover starts two runs of one task at once n times (two workers
// taking it over): they get different tokens, and only the later one may
// write the journal and record the outcome.
func RaceTakeover(ctx context.Context, s tasks.Store, n int) error {
	for i := range n {
		what := fmt.Sprintf("takeover round %d", i)
		task := NewTask("race")
		if err := s.Create(ctx, task); err != nil {
			return err
		}
		var runs [2]tasks.Run
		errs := together(
			func() (err error) { runs[0], err = s.StartRun(ctx, task.ID, ""); return err },
			func() (err error) { runs[1], err = s.StartRun(ctx, task.ID, ""); return err },
		)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		older, newer := runs[0], runs[1]
		if older.Token > newer.Token {
			older, newer = newer, older
		}
		if older.Token == newer.Token {
			return fmt.Errorf("%s: both runs got token %d", what, older.Token)
		}
		outcomes := together(
			func() error { return s.Complete(ctx, task.ID, older.Token, resultJSON) },
			func() error { return s.Fail(ctx, task.ID, newer.Token, "the newer run failed") },
		)
		if !errors.Is(outcomes[0], tasks.ErrFenced) || outcomes[1] != nil {
			return fmt.Errorf("%s: older run's Complete %v, newer run's Fail %v; want ErrFenced and success", what, outcomes[0], outcomes[1])
		}
		got, err := s.Get(ctx, task.ID)
		if err != nil {
			return err
		}
		if got.Status != tasks.Failed {
			return fmt.Errorf("%s: the task ended %s, want failed by the newer run", what, got.Status)
		}
	}
	return nil
}

// RaceStartRunCancel races a run starting (a worker taking a task) against
// a cancellation n times, half from input_required. Cancel always
// succeeds; StartRun succeeds or fails with ErrTerminal; the task ends
// cancelled with nothing pending: a start checked before the cancellation
// and written after it must not bring the task back.
func RaceStartRunCancel(ctx context.Context, s tasks.Store, n int) error {
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
			func() error { _, err := s.StartRun(ctx, task.ID, ""); return err },
			func() error { return s.Cancel(ctx, task.ID, "cancelled") },
		)
		what := fmt.Sprintf("start vs cancel, round %d", i)
		if errs[1] != nil {
			return fmt.Errorf("%s: Cancel: %v", what, errs[1])
		}
		if errs[0] != nil && !errors.Is(errs[0], tasks.ErrTerminal) {
			return fmt.Errorf("%s: StartRun got %v, want success or ErrTerminal", what, errs[0])
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
