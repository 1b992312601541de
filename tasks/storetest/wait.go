package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

type awaited struct {
	answers map[string]abi.InputResponse
	err     error
}

// await starts AwaitAnswers in the background.
func await(ctx context.Context, s tasks.Store, id string, keys ...string) <-chan awaited {
	ch := make(chan awaited, 1)
	go func() {
		a, err := s.AwaitAnswers(ctx, id, keys)
		ch <- awaited{a, err}
	}()
	return ch
}

func receive[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("%s: never happened: %v", what, ctx.Err())
		panic("unreachable")
	}
}

func testAwaitWakes(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	newWaiting := func(t *testing.T, keys ...string) string {
		task := create(t, ctx, s, NewTask("alice"))
		if err := s.RequestInput(ctx, task.ID, requests(keys...)); err != nil {
			t.Fatal(err)
		}
		return task.ID
	}

	t.Run("answers", func(t *testing.T) {
		id := newWaiting(t, "a", "b")
		waiter := await(ctx, s, id, "a", "b")
		for _, k := range []string{"b", "a"} {
			if err := s.Answer(ctx, id, k, answer(k)); err != nil {
				t.Fatal(err)
			}
		}
		got := receive(t, ctx, waiter, "AwaitAnswers returning after the answers")
		if got.err != nil || !sameResponse(got.answers["a"], answer("a")) || !sameResponse(got.answers["b"], answer("b")) {
			t.Errorf("AwaitAnswers = %v, %v", got.answers, got.err)
		}
	})

	for _, f := range []finisher{cancel, fail, complete} {
		t.Run(string(f.status), func(t *testing.T) {
			id := newWaiting(t, "a", "b")
			if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
				t.Fatal(err)
			}
			waiter := await(ctx, s, id, "a", "b")
			if err := f.call(ctx, s, id); err != nil {
				t.Fatal(err)
			}
			got := receive(t, ctx, waiter, "AwaitAnswers returning after the task ended")
			wantErr(t, "AwaitAnswers when the task ends "+string(f.status), got.err, tasks.ErrTerminal, id)
		})
	}

	t.Run("several waiters", func(t *testing.T) {
		id := newWaiting(t, "a", "b", "c")
		wa, wbc := await(ctx, s, id, "a"), await(ctx, s, id, "b", "c")
		if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, ctx, wa, "first waiter"); got.err != nil || !sameResponse(got.answers["a"], answer("a")) {
			t.Errorf("waiter on a: %v, %v", got.answers, got.err)
		}
		if err := s.Cancel(ctx, id, "stop"); err != nil {
			t.Fatal(err)
		}
		got := receive(t, ctx, wbc, "second waiter")
		wantErr(t, "waiter on b, c after Cancel", got.err, tasks.ErrTerminal, id)
	})

	t.Run("context", func(t *testing.T) {
		id := newWaiting(t, "a", "b")
		if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		waiter := await(wctx, s, id, "a", "b")
		stop()
		got := receive(t, ctx, waiter, "AwaitAnswers returning after its context ended")
		if !errors.Is(got.err, context.Canceled) {
			t.Errorf("AwaitAnswers after cancelling its context: %v, want context.Canceled", got.err)
		}
		// Nothing was lost: a later wait gets both answers.
		if err := s.Answer(ctx, id, "b", answer("b")); err != nil {
			t.Fatal(err)
		}
		answers, err := s.AwaitAnswers(ctx, id, []string{"a", "b"})
		if err != nil || !sameResponse(answers["a"], answer("a")) || !sameResponse(answers["b"], answer("b")) {
			t.Errorf("AwaitAnswers after an abandoned wait = %v, %v; want both answers", answers, err)
		}
	})
}

// testExpiry: a task is gone once its TTL has passed, and a guest waiting
// on it is told so instead of waiting forever.
func testExpiry(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	keep := create(t, ctx, s, NewTask("alice"))
	short := NewTask("alice")
	short.TTL = 700 * time.Millisecond
	create(t, ctx, s, short)
	if err := s.RequestInput(ctx, short.ID, requests("k")); err != nil {
		t.Fatalf("RequestInput right after Create (TTL %s): %v", short.TTL, err)
	}
	// The wait ends when the task expires: no sleeping here.
	_, err := s.AwaitAnswers(ctx, short.ID, []string{"k"})
	wantErr(t, "AwaitAnswers on an expiring task", err, tasks.ErrNotFound, short.ID)
	if early := time.Until(short.ExpiresAt()); early > 50*time.Millisecond {
		t.Errorf("the task was gone %s before it expired", early)
	}
	_, err = s.Get(ctx, short.ID)
	wantErr(t, "Get expired", err, tasks.ErrNotFound, short.ID)
	wantErr(t, "Answer expired", s.Answer(ctx, short.ID, "k", answer("k")), tasks.ErrNotFound, short.ID)
	wantErr(t, "RequestInput expired", s.RequestInput(ctx, short.ID, requests("j")), tasks.ErrNotFound, short.ID)
	wantErr(t, "Cancel expired", s.Cancel(ctx, short.ID, "x"), tasks.ErrNotFound, short.ID)
	wantErr(t, "Complete expired", s.Complete(ctx, short.ID, 0, nil), tasks.ErrNotFound, short.ID)
	page, _, err := s.List(ctx, "alice", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].ID != keep.ID {
		ids := make([]string, len(page))
		for i, p := range page {
			ids[i] = p.ID
		}
		t.Errorf("List after expiry = %v, want just the live task %s", ids, keep.ID)
	}
}

// eventLog follows a store's Watch and sorts events by task.
type eventLog struct {
	events <-chan tasks.Event
	stop   context.CancelFunc
	byTask map[string][]tasks.Event
	marks  int
}

func watch(ctx context.Context, s tasks.Store) (*eventLog, error) {
	wctx, stop := context.WithCancel(ctx)
	events, err := s.Watch(wctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("Watch: %w", err)
	}
	return &eventLog{events: events, stop: stop, byTask: map[string][]tasks.Event{}}, nil
}

// through publishes a marker for task id and returns the task's events
// that came before it: everything the caller did to it so far.
func (l *eventLog) through(ctx context.Context, s tasks.Store, id string) ([]tasks.Event, error) {
	l.marks++
	mark := json.RawMessage(fmt.Sprintf(`{"level":0,"message":"storetest mark %d"}`, l.marks))
	if err := s.Publish(ctx, tasks.Event{Kind: tasks.EventLog, TaskID: id, Data: mark}); err != nil {
		return nil, fmt.Errorf("Publish: %w", err)
	}
	for {
		select {
		case e, ok := <-l.events:
			switch {
			case !ok:
				return nil, errors.New("the watch stopped")
			case e.Kind == tasks.EventResync:
				return nil, errors.New("the watch lost events (resync) on a healthy store")
			case e.TaskID == id && e.Kind == tasks.EventLog && sameJSON(e.Data, mark):
				evs := l.byTask[id]
				delete(l.byTask, id)
				return evs, nil
			}
			l.byTask[e.TaskID] = append(l.byTask[e.TaskID], e)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the watch to deliver events: %w", ctx.Err())
		}
	}
}

// close stops the watch and waits for its channel to close.
func (l *eventLog) close() {
	l.stop()
	for range l.events {
	}
}

func testWatch(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	first, err := watch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()
	second, err := watch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}

	task := create(t, ctx, s, NewTask("alice"))
	id := task.ID
	other := create(t, ctx, s, NewTask("bob"))
	logData, _ := json.Marshal(tasks.LogData{Level: abi.LogInfo, Message: "hello"})
	progData, _ := json.Marshal(abi.Progress{Progress: 1, Total: 2, Message: "half"})
	steps := []func() error{
		func() error { return s.RequestInput(ctx, id, requests("a", "b")) },
		func() error { return s.Answer(ctx, id, "a", answer("a")) },
		func() error { return s.Cancel(ctx, other.ID, "interleaved") },
		func() error { return s.Answer(ctx, id, "b", answer("b")) },
		func() error { return s.Publish(ctx, tasks.Event{Kind: tasks.EventLog, TaskID: id, Data: logData}) },
		func() error {
			return s.Publish(ctx, tasks.Event{Kind: tasks.EventProgress, TaskID: id, Data: progData})
		},
		func() error { return s.Complete(ctx, id, 0, resultJSON) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []tasks.Event{
		{Kind: tasks.EventStatus, TaskID: id, Status: tasks.Working},
		{Kind: tasks.EventStatus, TaskID: id, Status: tasks.InputRequired},
		{Kind: tasks.EventStatus, TaskID: id, Status: tasks.InputRequired}, // one of two answered
		{Kind: tasks.EventStatus, TaskID: id, Status: tasks.Working},
		{Kind: tasks.EventLog, TaskID: id, Data: logData},
		{Kind: tasks.EventProgress, TaskID: id, Data: progData},
		{Kind: tasks.EventStatus, TaskID: id, Status: tasks.Completed},
	}
	for name, log := range map[string]*eventLog{"first": first, "second": second} {
		got, err := log.through(ctx, s, id)
		if err != nil {
			t.Fatalf("%s watch: %v", name, err)
		}
		if !sameEvents(got, want) {
			t.Errorf("%s watch saw\n%s\nwant\n%s", name, showEvents(got), showEvents(want))
		}
		if o := log.byTask[other.ID]; len(o) != 2 || o[1].Status != tasks.Cancelled {
			t.Errorf("%s watch saw for the other task\n%s\nwant working, cancelled", name, showEvents(o))
		}
	}

	// A stopped watch closes its channel, whether it was delivering events
	// or waiting for some.
	second.stop()
	idle, err := watch(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idle.through(ctx, s, id); err != nil { // it runs, and has nothing left
		t.Fatal(err)
	}
	idle.stop()
	for _, log := range []*eventLog{second, idle} {
		deadline := time.After(5 * time.Second)
		for open := true; open; {
			select {
			case _, open = <-log.events:
			case <-deadline:
				t.Fatal("the channel of a stopped watch was not closed")
			}
		}
	}
}

func sameEvents(got, want []tasks.Event) bool {
	return slices.EqualFunc(got, want, func(a, b tasks.Event) bool {
		return a.Kind == b.Kind && a.TaskID == b.TaskID && a.Status == b.Status && sameJSON(a.Data, b.Data)
	})
}

func showEvents(evs []tasks.Event) string {
	var b []byte
	for _, e := range evs {
		b = fmt.Appendf(b, "\t%s %s %s\n", e.Kind, e.Status, e.Data)
	}
	return string(b)
}

func testWatcher(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	seen := make(chan tasks.Event, 64)
	w, err := tasks.NewWatcher(wctx, s, func(e tasks.Event) {
		select {
		case seen <- e:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	task := create(t, ctx, s, NewTask("alice"))
	id := task.ID

	type waited struct {
		task *tasks.Task
		err  error
	}
	wait := func(ctx context.Context, id string, cond func(*tasks.Task) bool) <-chan waited {
		ch := make(chan waited, 1)
		go func() {
			t, err := w.Wait(ctx, id, cond)
			ch <- waited{t, err}
		}()
		return ch
	}

	asking := wait(ctx, id, func(t *tasks.Task) bool { return t.Status == tasks.InputRequired })
	done := wait(ctx, id, tasks.IsTerminal)
	if err := s.RequestInput(ctx, id, requests("a")); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ctx, asking, "Wait for input_required"); got.err != nil || got.task.Status != tasks.InputRequired {
		t.Errorf("Wait(input_required) = %v, %v", got.task, got.err)
	}
	if err := s.Answer(ctx, id, "a", answer("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, id, 0, resultJSON); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ctx, done, "Wait for the end"); got.err != nil || got.task.Status != tasks.Completed || !sameJSON(got.task.Result, resultJSON) {
		t.Errorf("Wait(IsTerminal) = %+v, %v", got.task, got.err)
	}
	if e := receive(t, ctx, seen, "onEvent"); e.TaskID != id || e.Kind != tasks.EventStatus {
		t.Errorf("onEvent first saw %+v", e)
	}

	missing := tasks.NewID()
	_, err = w.Wait(ctx, missing, tasks.IsTerminal)
	wantErr(t, "Wait on an unknown task", err, tasks.ErrNotFound, missing)

	other := create(t, ctx, s, NewTask("alice"))
	cctx, cancelWait := context.WithCancel(ctx)
	byContext := wait(cctx, other.ID, tasks.IsTerminal)
	cancelWait()
	if got := receive(t, ctx, byContext, "Wait ending with its context"); !errors.Is(got.err, context.Canceled) {
		t.Errorf("Wait after its context ended: %v", got.err)
	}
	stranded := wait(ctx, other.ID, tasks.IsTerminal)
	stopWatching()
	if got := receive(t, ctx, stranded, "Wait ending with the watch"); !errors.Is(got.err, tasks.ErrWatchStopped) {
		t.Errorf("Wait after the watch stopped: %v, want ErrWatchStopped", got.err)
	}
	receive(t, ctx, w.Done(), "Watcher.Done")
}

func testQueue(t *testing.T, s tasks.Store) {
	ctx := testContext(t)
	q := s.Queue()
	ids := []string{tasks.NewID(), tasks.NewID(), tasks.NewID()}
	for _, id := range ids {
		if err := q.Enqueue(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		d, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.TaskID() != id || d.Redelivered() {
			t.Errorf("Next = %s (redelivered %v), want %s, first delivery", d.TaskID(), d.Redelivered(), id)
		}
		for i := range 2 {
			if err := d.Ack(ctx); err != nil {
				t.Errorf("Ack #%d: %v", i+1, err)
			}
		}
	}

	type next struct {
		d   tasks.Delivery
		err error
	}
	take := func(ctx context.Context) <-chan next {
		ch := make(chan next, 1)
		go func() {
			d, err := q.Next(ctx)
			ch <- next{d, err}
		}()
		return ch
	}
	waiting := take(ctx)
	late := tasks.NewID()
	if err := q.Enqueue(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ctx, waiting, "Next after a later Enqueue"); got.err != nil || got.d.TaskID() != late {
		t.Errorf("Next = %v, %v; want %s", got.d, got.err, late)
	} else if err := got.d.Ack(ctx); err != nil {
		t.Error(err)
	}

	cctx, stop := context.WithCancel(ctx)
	abandoned := take(cctx)
	stop()
	if got := receive(t, ctx, abandoned, "Next ending with its context"); !errors.Is(got.err, context.Canceled) {
		t.Errorf("Next after its context ended: %v, %v", got.d, got.err)
	}

	// Several workers: every task is handed out exactly once.
	const n = 20
	wctx, stopWorkers := context.WithCancel(ctx)
	var workers sync.WaitGroup
	results := make(chan next, n)
	for range 4 {
		workers.Go(func() {
			for {
				d, err := q.Next(wctx)
				if err != nil {
					if wctx.Err() == nil {
						results <- next{nil, err}
					}
					return
				}
				results <- next{d, d.Ack(ctx)}
			}
		})
	}
	want := map[string]bool{}
	for range n {
		id := tasks.NewID()
		want[id] = true
		if err := q.Enqueue(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		got := receive(t, ctx, results, "a delivery")
		if got.err != nil {
			t.Fatalf("worker: %v", got.err)
		}
		if !want[got.d.TaskID()] {
			t.Errorf("task %s delivered twice or never enqueued", got.d.TaskID())
		}
		delete(want, got.d.TaskID())
	}
	stopWorkers()
	workers.Wait()
}
