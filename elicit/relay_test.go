package elicit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

func newTask(t testing.TB, store tasks.Store, accepts ...string) *tasks.Task {
	t.Helper()
	now := time.Now()
	task := &tasks.Task{ID: tasks.NewID(), Kind: tasks.KindTask, Tool: "t", Status: tasks.Working, Accepts: accepts, CreatedAt: now, UpdatedAt: now, TTL: time.Hour}
	if err := store.Create(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	return task
}

// elicitation asks msg under the key "ask-<msg>" (the host keys every
// request before GuestEnv sees it).
func elicitation(msg string) abi.InputRequest {
	params, _ := json.Marshal(map[string]any{"message": msg, "requestedSchema": map[string]any{"type": "object"}})
	return abi.InputRequest{Key: "ask-" + msg, Method: abi.MethodElicit, Params: params}
}

// client answers every request with its message, after an optional gate.
type client struct {
	gate chan struct{}
	err  error
	mu   sync.Mutex
	seen []string
}

func (c *client) Ask(ctx context.Context, _ *tasks.Task, req abi.InputRequest) (json.RawMessage, error) {
	var p struct{ Message string }
	_ = json.Unmarshal(req.Params, &p)
	c.mu.Lock()
	c.seen = append(c.seen, p.Message)
	c.mu.Unlock()
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return json.Marshal(map[string]any{"action": "accept", "content": map[string]any{"said": p.Message}})
}

// front plays the front end: it pushes every input_required task to c.
func front(t testing.TB, store tasks.Store, relay *elicit.Relay, c elicit.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := tasks.NewWatcher(ctx, store, func(e tasks.Event) {
		if e.Kind != tasks.EventStatus || e.Status != tasks.InputRequired {
			return
		}
		if task, err := store.Get(ctx, e.TaskID); err == nil {
			relay.Push(ctx, c, task)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInputRoundTripKeepsOrder(t *testing.T) {
	store := tasks.NewMemory()
	relay := elicit.NewRelay(store, hclog.NewNullLogger())
	defer relay.Close()
	front(t, store, relay, &client{})
	task := newTask(t, store, abi.MethodElicit)
	env := elicit.NewGuestEnv(store, task, tasks.Run{}, hclog.NewNullLogger())

	got, err := env.Input(context.Background(), []abi.InputRequest{
		elicitation("one"),
		{Method: abi.MethodSample}, // not accepted by this client
		elicitation("two"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d answers for 3 questions", len(got))
	}
	for i, want := range map[int]string{0: "one", 2: "two"} {
		if !json.Valid(got[i].Result) || !slices.Contains([]string{string(got[i].Result)}, fmt.Sprintf(`{"action":"accept","content":{"said":%q}}`, want)) {
			t.Errorf("answer %d = %s, want the answer to %q", i, got[i].Result, want)
		}
	}
	if got[1].Error == nil || got[1].Error.Code != abi.ErrCodeUnsupported {
		t.Errorf("sampling for a client without it: %+v, want unsupported", got[1])
	}
	if cur, _ := store.Get(context.Background(), task.ID); cur.Status != tasks.Working {
		t.Errorf("after all answers the task is %s, want working", cur.Status)
	}
}

func TestUnsupportedOnlyNeverWaits(t *testing.T) {
	store := tasks.NewMemory()
	task := newTask(t, store) // the client accepts nothing, and nobody relays
	env := elicit.NewGuestEnv(store, task, tasks.Run{}, hclog.NewNullLogger())
	got, err := env.Input(context.Background(), []abi.InputRequest{elicitation("anyone?")})
	if err != nil || got[0].Error == nil || got[0].Error.Code != abi.ErrCodeUnsupported {
		t.Fatalf("got %+v, %v; want an unsupported answer at once", got, err)
	}
}

func TestCancelWakesWaitingGuest(t *testing.T) {
	store := tasks.NewMemory()
	task := newTask(t, store, abi.MethodElicit)
	env := elicit.NewGuestEnv(store, task, tasks.Run{}, hclog.NewNullLogger())
	done := make(chan error, 1)
	go func() {
		_, err := env.Input(context.Background(), []abi.InputRequest{elicitation("wait")})
		done <- err
	}()
	if _, err := (&waiter{store}).until(task.ID, tasks.InputRequired); err != nil {
		t.Fatal(err)
	}
	if err := store.Cancel(context.Background(), task.ID, "stop"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, tasks.ErrTerminal) {
			t.Errorf("guest woke with %v, want ErrTerminal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled task's guest stayed blocked")
	}
}

type waiter struct{ store tasks.Store }

func (w *waiter) until(id string, status tasks.Status) (*tasks.Task, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	watch, err := tasks.NewWatcher(ctx, w.store, nil)
	if err != nil {
		return nil, err
	}
	return watch.Wait(ctx, id, func(t *tasks.Task) bool { return t.Status == status })
}

func TestRelayDeliversEachQuestionOnceAtATime(t *testing.T) {
	store := tasks.NewMemory()
	relay := elicit.NewRelay(store, hclog.NewNullLogger())
	c := &client{gate: make(chan struct{})}
	task := newTask(t, store, abi.MethodElicit)
	if err := store.RequestInput(context.Background(), task.ID, map[string]abi.InputRequest{"k": elicitation("once")}); err != nil {
		t.Fatal(err)
	}
	cur, _ := store.Get(context.Background(), task.ID)
	relay.Push(context.Background(), c, cur)
	relay.Push(context.Background(), c, cur) // a second push while the first is out
	close(c.gate)
	if _, err := (&waiter{store}).until(task.ID, tasks.Working); err != nil {
		t.Fatal(err)
	}
	relay.Close()
	if len(c.seen) != 1 {
		t.Errorf("client was asked %d times, want once", len(c.seen))
	}
}

func TestRelayFailureAnswersGuestAndLeavingClientDoesNot(t *testing.T) {
	store := tasks.NewMemory()
	relay := elicit.NewRelay(store, hclog.NewNullLogger())
	defer relay.Close()

	// A client that answers with an error: the guest hears "failed".
	task := newTask(t, store, abi.MethodElicit)
	_ = store.RequestInput(context.Background(), task.ID, map[string]abi.InputRequest{"k": elicitation("x")})
	cur, _ := store.Get(context.Background(), task.ID)
	relay.Push(context.Background(), &client{err: errors.New("user closed the dialog")}, cur)
	got, err := store.AwaitAnswers(context.Background(), task.ID, []string{"k"})
	if err != nil || got["k"].Error == nil || got["k"].Error.Code != abi.ErrCodeFailed {
		t.Errorf("got %+v, %v; want a failed answer", got, err)
	}

	// A client that goes away: the question stays pending for later.
	task = newTask(t, store, abi.MethodElicit)
	_ = store.RequestInput(context.Background(), task.ID, map[string]abi.InputRequest{"k": elicitation("x")})
	cur, _ = store.Get(context.Background(), task.ID)
	gone, leave := context.WithCancel(context.Background())
	c := &client{gate: make(chan struct{})}
	relay.Push(gone, c, cur)
	leave()
	relay.Push(context.Background(), &client{}, cur) // the reconnected client answers
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := store.AwaitAnswers(ctx, task.ID, []string{"k"}); err != nil || got["k"].Result == nil {
		t.Errorf("got %+v, %v; want the reconnected client's answer", got, err)
	}
}

func TestRelayCloseStopsDeliveries(t *testing.T) {
	storetest.CheckGoroutines(t) // the deliveries' goroutines end after Close
	store := tasks.NewMemory()
	relay := elicit.NewRelay(store, hclog.NewNullLogger())
	task := newTask(t, store, abi.MethodElicit)
	_ = store.RequestInput(context.Background(), task.ID, map[string]abi.InputRequest{"a": elicitation("a"), "b": elicitation("b")})
	cur, _ := store.Get(context.Background(), task.ID)
	relay.Push(context.Background(), &client{gate: make(chan struct{})}, cur) // never answers
	relay.Close()
}
