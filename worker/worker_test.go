package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
	"github.com/wasmhost/wasmhost/worker"
)

// The worker runs real guests (the example plugins, built once per test
// binary and cached by content) from a memory store; the tests control
// which tools exist (fakeTools) and what the queue hands out (a scripted
// queue whose deliveries say whether they are redelivered and report
// their acknowledgement).

var (
	catalogOnce sync.Once
	catalog     *host.Catalog
	catalogErr  error
)

func examplePlugins(t testing.TB) *host.Catalog {
	t.Helper()
	catalogOnce.Do(func() {
		ctx := context.Background()
		cache := filepath.Join(os.TempDir(), "wasmhost-test-cache")
		logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
		rt, err := host.New(ctx, host.Options{CacheDir: filepath.Join(cache, "compile"), Logger: logger})
		if err != nil {
			catalogErr = err
			return
		}
		catalog, catalogErr = host.OpenCatalog(ctx, rt, "../plugins", host.CatalogOptions{
			Logger:  logger,
			Builder: &gobuild.Builder{CacheDir: filepath.Join(cache, "build"), Logger: logger},
		})
	})
	if catalogErr != nil {
		t.Fatalf("load example plugins: %v", catalogErr)
	}
	return catalog
}

// fakeTools serves the named tools of the example plugins, and no others.
type fakeTools map[string]host.ToolEntry

func tools(t *testing.T, names ...string) fakeTools {
	cat := examplePlugins(t)
	ft := fakeTools{}
	for _, n := range names {
		e, ok := cat.Lookup(n)
		if !ok {
			t.Fatalf("example plugins have no tool %s", n)
		}
		ft[n] = e
	}
	return ft
}

func (f fakeTools) Lookup(name string) (host.ToolEntry, bool) {
	e, ok := f[name]
	return e, ok
}

func (fakeTools) LookupPrompt(string) (host.PromptEntry, bool) { return host.PromptEntry{}, false }

func (fakeTools) Pinned(name, digest string) (*host.Plugin, error) {
	return catalog.Pinned(name, digest)
}
func (fakeTools) LookupResource(string) (*host.Plugin, bool) { return nil, false }

// scriptedStore is a memory store whose queue the test feeds.
type scriptedStore struct {
	tasks.Store
	q *scriptedQueue
}

func (s scriptedStore) Queue() tasks.Queue { return s.q }

type scriptedQueue struct{ ch chan *delivery }

type delivery struct {
	id          string
	redelivered bool
	once        sync.Once
	acked       chan struct{}
}

func (d *delivery) TaskID() string    { return d.id }
func (d *delivery) Redelivered() bool { return d.redelivered }
func (d *delivery) Ack(context.Context) error {
	d.once.Do(func() { close(d.acked) })
	return nil
}

// Drop is Ack: the scripted queue hands each entry to one worker only.
func (d *delivery) Drop(ctx context.Context) error { return d.Ack(ctx) }

func (q *scriptedQueue) Enqueue(ctx context.Context, id string) error {
	q.push(id, false)
	return nil
}

func (q *scriptedQueue) push(id string, redelivered bool) *delivery {
	d := &delivery{id: id, redelivered: redelivered, acked: make(chan struct{})}
	q.ch <- d
	return d
}

func (q *scriptedQueue) Next(ctx context.Context) (tasks.Delivery, error) {
	select {
	case d := <-q.ch:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// rig is one worker on a scripted memory store.
type rig struct {
	t       *testing.T
	ctx     context.Context
	store   scriptedStore
	watcher *tasks.Watcher
	stop    context.CancelFunc
	stopped chan error
	// requeued receives the tasks the store queued itself (Park); the
	// test decides whether to hand them to the worker (resume).
	requeued chan string
}

// resume hands the next task the store queued to the worker, and returns
// its delivery.
func (r *rig) resume(id string) *delivery {
	r.t.Helper()
	select {
	case got := <-r.requeued:
		if got != id {
			r.t.Fatalf("the store queued %s, want %s", got, id)
		}
		return r.store.q.push(got, false)
	case <-r.ctx.Done():
		r.t.Fatalf("the store never queued task %s again", id)
		return nil
	}
}

// start runs a worker serving ft until the test ends or stopWorker. It
// checks first, so that it runs last, that nothing the test started is
// left running.
func start(t *testing.T, ft worker.Tools, base tasks.Store) *rig {
	t.Helper()
	return startWith(t, ft, base, worker.Options{})
}

// startWith is start with the worker options opts (Store, Tools, Logger
// and a zero Concurrency are filled in). Tasks the store itself queues
// (tasks.Store.Park) are handed to the worker through the scripted queue.
func startWith(t *testing.T, ft worker.Tools, base tasks.Store, opts worker.Options) *rig {
	t.Helper()
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	if base == nil {
		base = tasks.NewMemory()
	}
	s := scriptedStore{Store: base, q: &scriptedQueue{ch: make(chan *delivery, 16)}}
	watcher, err := tasks.NewWatcher(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	opts.Store, opts.Tools = s, ft
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn, Name: t.Name()})
	if opts.Concurrency == 0 {
		opts.Concurrency = 2
	}
	w := worker.New(opts)
	r := &rig{t: t, ctx: ctx, store: s, watcher: watcher, stop: stop, stopped: make(chan error, 1), requeued: make(chan string, 16)}
	go func() { r.stopped <- w.Run(wctx) }()
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			d, err := base.Queue().Next(ctx)
			if err != nil {
				return
			}
			r.requeued <- d.TaskID()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-pumped
	})
	t.Cleanup(func() {
		r.stopWorker()
		cancel()
		<-watcher.Done()
	})
	return r
}

// stopWorker ends the worker's context and waits for Run to return.
func (r *rig) stopWorker() {
	r.t.Helper()
	r.stop()
	select {
	case err, ok := <-r.stopped:
		if ok && err != nil {
			r.t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.stopped)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatal("Run did not return within 30s of its context ending")
	}
}

// newTask creates a task for tool with args; the client answers
// elicitations.
func (r *rig) newTask(tool, args string, idempotent bool) *tasks.Task {
	r.t.Helper()
	now := time.Now()
	task := &tasks.Task{
		ID: tasks.NewID(), Kind: tasks.KindTask, Owner: "test", Tool: tool, Args: json.RawMessage(args),
		Accepts: []string{abi.MethodElicit}, Idempotent: idempotent, Status: tasks.Working,
		CreatedAt: now, UpdatedAt: now, TTL: time.Hour, PollInterval: time.Second,
	}
	if err := r.store.Create(r.ctx, task); err != nil {
		r.t.Fatal(err)
	}
	return task
}

func (r *rig) waitFor(id string, cond func(*tasks.Task) bool, what string) *tasks.Task {
	r.t.Helper()
	t, err := r.watcher.Wait(r.ctx, id, cond)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v", what, err)
	}
	return t
}

func (r *rig) asking(id string) *tasks.Task {
	r.t.Helper()
	return r.waitFor(id, func(t *tasks.Task) bool { return t.Status == tasks.InputRequired }, "the guest to ask")
}

func (r *rig) finished(id string) *tasks.Task {
	r.t.Helper()
	return r.waitFor(id, tasks.IsTerminal, "the task to end")
}

func (r *rig) acked(d *delivery) {
	r.t.Helper()
	select {
	case <-d.acked:
	case <-r.ctx.Done():
		r.t.Fatalf("delivery of task %s was never acknowledged", d.id)
	}
}

// answerAll accepts every pending question with {"confirm": true}.
func (r *rig) answerAll(t *tasks.Task) {
	r.t.Helper()
	for key := range t.InputRequests {
		resp := abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"confirm":true}}`)}
		if err := r.store.Answer(r.ctx, t.ID, key, resp); err != nil {
			r.t.Fatal(err)
		}
	}
}

func resultText(t *testing.T, task *tasks.Task) string {
	t.Helper()
	var res abi.CallResult
	if err := json.Unmarshal(task.Result, &res); err != nil {
		t.Fatalf("task %s result %q: %v", task.ID, task.Result, err)
	}
	var parts []string
	for _, c := range res.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

func TestRunsTasks(t *testing.T) {
	r := start(t, tools(t, "greet", "confirm_delete"), nil)
	greet := r.newTask("greet", `{"name":"Ada"}`, false)
	d := r.store.q.push(greet.ID, false)
	if got := r.finished(greet.ID); got.Status != tasks.Completed || resultText(t, got) != "Hello, Ada!" {
		t.Errorf("greet ended %s with %q", got.Status, got.Result)
	}
	r.acked(d)

	ask := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
	d = r.store.q.push(ask.ID, false)
	r.answerAll(r.asking(ask.ID))
	if got := r.finished(ask.ID); got.Status != tasks.Completed || !strings.HasPrefix(resultText(t, got), "Not deleted a.txt") {
		t.Errorf("confirm_delete ended %s with %q", got.Status, got.Result)
	}
	r.acked(d)
}

func TestUnknownToolFails(t *testing.T) {
	r := start(t, tools(t), nil)
	task := r.newTask("greet", `{"name":"Ada"}`, false)
	d := r.store.q.push(task.ID, false)
	if got := r.finished(task.ID); got.Status != tasks.Failed || !strings.Contains(got.Error, "greet is not served") {
		t.Errorf("task for a tool nobody serves ended %s: %q", got.Status, got.Error)
	}
	r.acked(d)
}

// TestCancel: a cancellation through the store stops the guest at once,
// whether it comes while the guest waits or before it starts, and the
// worker records nothing over it.
func TestCancel(t *testing.T) {
	r := start(t, tools(t, "confirm_delete"), nil)

	waiting := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
	d := r.store.q.push(waiting.ID, false)
	r.asking(waiting.ID)
	if err := r.store.Cancel(r.ctx, waiting.ID, "the user changed their mind"); err != nil {
		t.Fatal(err)
	}
	r.acked(d) // the guest stopped: the worker is done with the task
	if got := r.finished(waiting.ID); got.Status != tasks.Cancelled || got.StatusMessage != "the user changed their mind" {
		t.Errorf("cancelled task is %s (%q)", got.Status, got.StatusMessage)
	}

	early := r.newTask("confirm_delete", `{"filename":"b.txt"}`, false)
	if err := r.store.Cancel(r.ctx, early.ID, "never mind"); err != nil {
		t.Fatal(err)
	}
	d = r.store.q.push(early.ID, false)
	r.acked(d)
	if got := r.finished(early.ID); got.Status != tasks.Cancelled || len(got.InputRequests) != 0 {
		t.Errorf("task cancelled before it ran is %s with %d questions: the guest ran", got.Status, len(got.InputRequests))
	}

	// The worker still works after both.
	next := r.newTask("confirm_delete", `{"filename":"c.txt"}`, false)
	r.store.q.push(next.ID, false)
	r.answerAll(r.asking(next.ID))
	if got := r.finished(next.ID); got.Status != tasks.Completed {
		t.Errorf("task after cancellations ended %s", got.Status)
	}
}

// TestRedelivery: the redelivery policy. A task whose worker died is run
// again by the next worker, idempotent or not: a new run, which replays
// what the dead one journalled and asks its questions again; the dead run
// is fenced off.
func TestRedelivery(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			r := start(t, tools(t, "confirm_delete"), nil)
			task := r.newTask("confirm_delete", `{"filename":"a.txt"}`, idempotent)
			dead, err := r.store.StartRun(r.ctx, task.ID, "") // the run of the worker that died
			if err != nil {
				t.Fatal(err)
			}
			d := r.store.q.push(task.ID, true)
			r.answerAll(r.asking(task.ID))
			if got := r.finished(task.ID); got.Status != tasks.Completed || !strings.HasPrefix(resultText(t, got), "Not deleted a.txt") {
				t.Errorf("redelivered task ended %s with %q %q", got.Status, got.Result, got.Error)
			}
			r.acked(d)
			if err := r.store.Fail(r.ctx, task.ID, dead.Token, "late"); !errors.Is(err, tasks.ErrFenced) {
				t.Errorf("outcome of the dead run: %v, want ErrFenced", err)
			}
		})
	}

	t.Run("finished before the redelivery", func(t *testing.T) {
		r := start(t, tools(t, "confirm_delete"), nil)
		task := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
		result := json.RawMessage(`{"content":[{"type":"text","text":"done by the dead worker"}]}`)
		if err := r.store.Complete(r.ctx, task.ID, 0, result); err != nil {
			t.Fatal(err)
		}
		d := r.store.q.push(task.ID, true)
		r.acked(d)
		if got := r.finished(task.ID); got.Status != tasks.Completed || resultText(t, got) != "done by the dead worker" {
			t.Errorf("a finished task was touched: %s %q", got.Status, got.Result)
		}
	})
}

// TestFencedRunStops: a run whose task another run took over (StartRun
// elsewhere) stops at its next store write and records nothing: the answer
// stays for the run that owns the task now.
func TestFencedRunStops(t *testing.T) {
	r := start(t, tools(t, "confirm_delete"), nil)
	task := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
	d := r.store.q.push(task.ID, false)
	asked := r.asking(task.ID)
	if _, err := r.store.StartRun(r.ctx, task.ID, ""); err != nil { // another worker's run
		t.Fatal(err)
	}
	r.answerAll(asked)
	r.acked(d) // dropped
	got, err := r.store.Get(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tasks.Working || len(got.Result) != 0 {
		t.Errorf("after the fenced-off run stopped the task is %s with result %s, want working with none", got.Status, got.Result)
	}
	answers, err := r.store.AwaitAnswers(r.ctx, task.ID, keys(asked.InputRequests))
	if err != nil || len(answers) != 1 {
		t.Errorf("the answer for the run that owns the task: %v, %v; want it still there", answers, err)
	}
}

// TestReplayDiverged: a task whose journal does not match what its guest
// does on replay (here: a journal recorded for another question) fails
// saying so; the guest never gets an answer meant for another call.
func TestReplayDiverged(t *testing.T) {
	r := start(t, tools(t, "confirm_delete"), nil)
	task := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
	run, err := r.store.StartRun(r.ctx, task.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	entry := []byte(`{"k":"input","h":"sha256:recorded-for-another-question","r":[{"result":{"action":"accept","content":{"confirm":true}}}]}`)
	if err := r.store.AppendJournal(r.ctx, task.ID, run.Token, [][]byte{entry}, nil); err != nil {
		t.Fatal(err)
	}
	d := r.store.q.push(task.ID, true)
	got := r.finished(task.ID)
	r.acked(d)
	if got.Status != tasks.Failed || !strings.Contains(got.Error, "diverged") || !strings.Contains(got.Error, "deterministic") {
		t.Errorf("task with a journal of another call ended %s: %q %s, want failed saying the replay diverged", got.Status, got.Error, got.Result)
	}
}

// TestStopHandsBack: a worker that stops parks the tasks it holds,
// idempotent or not: each is queued again once its question is answered,
// to be resumed by replay. Run returns once its guests have stopped,
// leaving no goroutine behind (start checks).
func TestStopHandsBack(t *testing.T) {
	r := start(t, tools(t, "confirm_delete"), nil)
	again := r.newTask("confirm_delete", `{"filename":"a.txt"}`, true)
	once := r.newTask("confirm_delete", `{"filename":"b.txt"}`, false)
	da := r.store.q.push(again.ID, false)
	do := r.store.q.push(once.ID, false)
	asked := map[string]*tasks.Task{again.ID: r.asking(again.ID), once.ID: r.asking(once.ID)}

	r.stopWorker()
	r.acked(da)
	r.acked(do)
	for id, before := range asked {
		got, err := r.store.Get(r.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != tasks.InputRequired || len(got.InputRequests) != len(before.InputRequests) {
			t.Errorf("task handed back as %s with questions %v, want input_required with %v", got.Status, keys(got.InputRequests), keys(before.InputRequests))
		}
		select {
		case id := <-r.requeued:
			t.Errorf("task %s queued again before its question was answered", id)
		default:
		}
		r.answerAll(got)
		select {
		case got := <-r.requeued:
			if got != id {
				t.Errorf("queued %s, want %s", got, id)
			}
		case <-r.ctx.Done():
			t.Fatalf("task %s was not queued again once answered", id)
		}
	}
}

// TestEviction: a guest waiting longer than EvictAfter, or the longest
// waiting one while more than MaxSuspended wait, is closed and its task
// parked (the delivery is done with, the question stays); once answered
// the task is queued again and a new run completes it with the answer.
func TestEviction(t *testing.T) {
	t.Run("after", func(t *testing.T) {
		r := startWith(t, tools(t, "confirm_delete"), nil, worker.Options{EvictAfter: 10 * time.Millisecond})
		task := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
		d := r.store.q.push(task.ID, false)
		asked := r.asking(task.ID)
		r.acked(d) // evicted and parked
		if got, _ := r.store.Get(r.ctx, task.ID); got.Status != tasks.InputRequired {
			t.Fatalf("evicted task is %s, want input_required", got.Status)
		}
		r.answerAll(asked)
		d = r.resume(task.ID)
		if got := r.finished(task.ID); got.Status != tasks.Completed || !strings.HasPrefix(resultText(t, got), "Not deleted a.txt") {
			t.Errorf("resumed task ended %s with %q %q", got.Status, got.Result, got.Error)
		}
		r.acked(d)
	})
	t.Run("over the cap", func(t *testing.T) {
		r := startWith(t, tools(t, "confirm_delete"), nil, worker.Options{MaxSuspended: 1, EvictAfter: time.Hour})
		first := r.newTask("confirm_delete", `{"filename":"a.txt"}`, false)
		d1 := r.store.q.push(first.ID, false)
		r.asking(first.ID)
		second := r.newTask("confirm_delete", `{"filename":"b.txt"}`, false)
		d2 := r.store.q.push(second.ID, false)
		r.answerAll(r.asking(second.ID))
		r.acked(d1) // the first, waiting longest, made room
		if got := r.finished(second.ID); got.Status != tasks.Completed {
			t.Errorf("the guest kept resident ended %s %q", got.Status, got.Error)
		}
		r.acked(d2)
		r.answerAll(r.asking(first.ID))
		d1 = r.resume(first.ID)
		if got := r.finished(first.ID); got.Status != tasks.Completed || !strings.HasPrefix(resultText(t, got), "Not deleted a.txt") {
			t.Errorf("resumed task ended %s with %q %q", got.Status, got.Result, got.Error)
		}
		r.acked(d1)
	})
}

func TestRunStopsWhenIdle(t *testing.T) {
	r := start(t, tools(t, "greet"), nil)
	r.stopWorker()
}

// flakyStore is unreachable for Complete until it has refused n times,
// or for good when n < 0.
type flakyStore struct {
	tasks.Store
	n     atomic.Int64
	tries atomic.Int64
	tried chan struct{} // one send per Complete, never blocking
}

func newFlaky(n int64) *flakyStore {
	s := &flakyStore{Store: tasks.NewMemory(), tried: make(chan struct{}, 1000)}
	s.n.Store(n)
	return s
}

func (s *flakyStore) Complete(ctx context.Context, id string, token int64, result json.RawMessage) error {
	s.tries.Add(1)
	select {
	case s.tried <- struct{}{}:
	default:
	}
	if s.n.Load() < 0 || s.n.Add(-1) >= 0 {
		return fmt.Errorf("redis at test: connection refused: %w", tasks.ErrUnavailable)
	}
	return s.Store.Complete(ctx, id, token, result)
}

// TestStoreOutage: a result the store cannot take yet is retried until it
// can; a worker that stops before then leaves the delivery
// unacknowledged, for the queue to hand on.
func TestStoreOutage(t *testing.T) {
	t.Run("short", func(t *testing.T) {
		s := newFlaky(2)
		r := start(t, tools(t, "greet"), s)
		task := r.newTask("greet", `{"name":"Ada"}`, false)
		d := r.store.q.push(task.ID, false)
		if got := r.finished(task.ID); got.Status != tasks.Completed {
			t.Errorf("task ended %s", got.Status)
		}
		r.acked(d)
		if n := s.tries.Load(); n != 3 {
			t.Errorf("Complete tried %d times, want 3", n)
		}
	})
	t.Run("until the worker stops", func(t *testing.T) {
		s := newFlaky(-1)
		r := start(t, tools(t, "greet"), s)
		task := r.newTask("greet", `{"name":"Ada"}`, false)
		d := r.store.q.push(task.ID, false)
		for range 2 { // the first attempt and one retry
			select {
			case <-s.tried:
			case <-r.ctx.Done():
				t.Fatal("the worker never tried to record the result")
			}
		}
		r.stopWorker()
		select {
		case <-d.acked:
			t.Error("a task whose result was never recorded was acknowledged")
		default:
		}
		if got, _ := r.store.Get(r.ctx, task.ID); got.Status != tasks.Working {
			t.Errorf("task is %s", got.Status)
		}
	})
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
