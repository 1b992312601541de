package elicit_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
)

var _ host.Recorder = (*elicit.GuestEnv)(nil)

func startRun(t *testing.T, store tasks.Store, id string) tasks.Run {
	t.Helper()
	run, err := store.StartRun(context.Background(), id, "sha256:test")
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// TestGuestEnvRecords: Record journals under the run's token and consumes
// the answers it names; the next run's env sees the journal; a run that
// was taken over is refused.
func TestGuestEnvRecords(t *testing.T) {
	ctx := context.Background()
	store := tasks.NewMemory()
	task := newTask(t, store, abi.MethodElicit)
	task.Idempotent = true
	first := elicit.NewGuestEnv(store, task, startRun(t, store, task.ID), hclog.NewNullLogger())
	if !first.Idempotent() || len(first.Recorded()) != 0 {
		t.Errorf("first run: idempotent %v, recorded %d entries; want true, none", first.Idempotent(), len(first.Recorded()))
	}
	if err := first.Record(ctx, [][]byte{[]byte("clock"), []byte("answer")}, nil); err != nil {
		t.Fatal(err)
	}
	second := elicit.NewGuestEnv(store, task, startRun(t, store, task.ID), hclog.NewNullLogger())
	if got := second.Recorded(); len(got) != 2 || string(got[0]) != "clock" || string(got[1]) != "answer" {
		t.Errorf("second run recorded %q, want [clock answer]", got)
	}
	if err := first.Record(ctx, [][]byte{[]byte("late")}, nil); !errors.Is(err, tasks.ErrFenced) {
		t.Errorf("Record of a run taken over: %v, want ErrFenced", err)
	}
}

// answerWhenAsked answers every question of task id as soon as it is
// pending, with its key, until ctx ends.
func answerWhenAsked(ctx context.Context, t *testing.T, store tasks.Store, id string) {
	w, err := tasks.NewWatcher(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			cur, err := w.Wait(ctx, id, func(t *tasks.Task) bool { return len(t.InputRequests) > 0 })
			if err != nil {
				return
			}
			for k := range cur.InputRequests {
				_ = store.Answer(ctx, id, k, abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"key":"` + k + `"}}`)})
			}
		}
	}()
}

// TestGuestEnvKeysRepeatAcrossRuns: a replay asks its questions under the
// keys the host gave them, the lost run's, and finds the answers given to
// the lost run; a request without a key is refused.
func TestGuestEnvKeysRepeatAcrossRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := tasks.NewMemory()
	task := newTask(t, store, abi.MethodElicit)
	answerWhenAsked(ctx, t, store, task.ID)
	first := elicit.NewGuestEnv(store, task, startRun(t, store, task.ID), hclog.NewNullLogger())
	got1, err := first.Input(ctx, []abi.InputRequest{elicitation("a"), elicitation("b")})
	if err != nil {
		t.Fatal(err)
	}
	// The first run never recorded them (it was lost): the replay asks
	// again and gets the same answers at once.
	second := elicit.NewGuestEnv(store, task, startRun(t, store, task.ID), hclog.NewNullLogger())
	got2, err := second.Input(ctx, []abi.InputRequest{elicitation("a"), elicitation("b")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got1 {
		if string(got1[i].Result) != string(got2[i].Result) {
			t.Errorf("answer %d: first run %s, replay %s", i, got1[i].Result, got2[i].Result)
		}
	}
	if _, err := second.Input(ctx, []abi.InputRequest{{Method: abi.MethodElicit}}); err == nil {
		t.Error("a request without a key was accepted")
	}
}

// TestGuestEnvEviction: the worker's evict function makes a waiting
// Input fail with host.ErrEvicted, leaving the question pending for the
// run that resumes the task; resume is called either way.
func TestGuestEnvEviction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := tasks.NewMemory()
	task := newTask(t, store, abi.MethodElicit)
	env := elicit.NewGuestEnv(store, task, startRun(t, store, task.ID), hclog.NewNullLogger())
	evicts := make(chan func(), 1)
	resumed := make(chan struct{})
	env.Suspend = func(evict func()) func() {
		evicts <- evict
		return func() { close(resumed) }
	}
	done := make(chan error, 1)
	go func() {
		_, err := env.Input(ctx, []abi.InputRequest{elicitation("still there?")})
		done <- err
	}()
	select {
	case evict := <-evicts:
		evict()
	case <-ctx.Done():
		t.Fatal("the guest never suspended")
	}
	select {
	case err := <-done:
		if !errors.Is(err, host.ErrEvicted) {
			t.Errorf("evicted Input: %v, want host.ErrEvicted", err)
		}
	case <-ctx.Done():
		t.Fatal("the evicted guest stayed blocked")
	}
	<-resumed
	cur, err := store.Get(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Status != tasks.InputRequired || len(cur.InputRequests) != 1 {
		t.Errorf("after eviction the task is %s with %d questions, want input_required with its one", cur.Status, len(cur.InputRequests))
	}
}
