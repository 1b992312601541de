// Package worker runs queued tasks: it takes a task id from the queue,
// starts a run of the task (tasks.Store.StartRun: a fence token and the
// journal of earlier runs), runs the tool's guest through the host with the
// task's elicit.GuestEnv, which replays that journal, and records the
// outcome in the store under the run's token. It owns the redelivery
// policy and the eviction of guests waiting for a person. It knows nothing
// of MCP: clients, sessions and protocol versions are the front end's.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/stack"
	"github.com/wasmhost/wasmhost/tasks"
)

// Tools finds the plugin serving a tool, prompt or resource, and the exact
// module a task started on after its plugin changed; *host.Catalog is one.
type Tools interface {
	Lookup(name string) (host.ToolEntry, bool)
	LookupPrompt(name string) (host.PromptEntry, bool)
	LookupResource(uri string) (*host.Plugin, bool)
	// Pinned returns a plugin running the module with digest, for the
	// tool (prompt, resource) name; an error wraps host.ErrModuleGone when
	// that module is not kept.
	Pinned(name, digest string) (*host.Plugin, error)
}

// Options configure a Worker. Zero values are defaults.
type Options struct {
	Store tasks.Store
	Tools Tools
	// Concurrency is how many guests run at once; 0 means 8. A guest
	// waiting for its client's answer gives its slot up meanwhile.
	Concurrency int
	// MaxSuspended caps the guests kept waiting for answers (each holds
	// its memory, a few MB); past it the one waiting longest is evicted.
	// 0 means 1000.
	MaxSuspended int
	// EvictAfter is how long a guest may wait for answers before it is
	// evicted: closed, its task parked in the store, resumed by replay on
	// any worker once answered. 0 means 30s.
	EvictAfter time.Duration
	// PerPlugin caps the guests of one plugin running at once, so that one
	// plugin cannot take every slot (see fair.go). 0 means half of
	// Concurrency, at least 1.
	PerPlugin int
	// MaxParked caps the calls waiting, without a slot, for their plugin
	// to fall under PerPlugin. 0 means 1000.
	MaxParked int
	Logger    hclog.Logger
}

// DefaultEvictAfter is Options.EvictAfter's default.
const DefaultEvictAfter = 30 * time.Second

// Worker takes tasks from the store's queue and runs them.
type Worker struct {
	store  tasks.Store
	tools  Tools
	n      int
	logger hclog.Logger

	slots     chan struct{} // one token per running guest
	waiting   *waiting      // guests waiting for an answer, evicted in time
	parked    chan struct{} // one token per call waiting for its plugin's share
	plugins   *counts       // guests running per plugin, up to perPlugin
	toolCaps  *counts       // per tool, for tools that declare a cap
	perPlugin int

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
}

// ErrTaskEnded is the cause given to a guest's context when its task was
// cancelled (or otherwise finished) elsewhere.
var ErrTaskEnded = errors.New("task ended")

// New returns a worker; Run starts it.
func New(opts Options) *Worker {
	w := &Worker{store: opts.Store, tools: opts.Tools, n: opts.Concurrency, logger: opts.Logger, running: map[string]context.CancelCauseFunc{}}
	if w.n <= 0 {
		w.n = 8
	}
	maxSuspended := opts.MaxSuspended
	if maxSuspended <= 0 {
		maxSuspended = 1000
	}
	evictAfter := opts.EvictAfter
	if evictAfter <= 0 {
		evictAfter = DefaultEvictAfter
	}
	w.slots = make(chan struct{}, w.n)
	w.waiting = newWaiting(maxSuspended, evictAfter)
	w.perPlugin = opts.PerPlugin
	if w.perPlugin <= 0 {
		w.perPlugin = max(1, w.n/2)
	}
	w.plugins, w.toolCaps = newCounts(), newCounts()
	maxParked := opts.MaxParked
	if maxParked <= 0 {
		maxParked = 1000
	}
	w.parked = make(chan struct{}, maxParked)
	if w.logger == nil {
		w.logger = hclog.NewNullLogger()
	}
	return w
}

// Run works until ctx ends, then stops the tasks it holds and returns once
// they and every goroutine it started have stopped. A task stopped that way
// is parked (tasks.Store.Park): queued again at once, or when the question
// its guest waited on is answered, for this or another worker to resume by
// replay.
func (w *Worker) Run(ctx context.Context) error {
	watcher, err := tasks.NewWatcher(ctx, w.store, w.onEvent)
	if err != nil {
		return fmt.Errorf("watch task store: %w", err)
	}
	var wg sync.WaitGroup
	w.loop(ctx, &wg)
	wg.Wait()
	<-watcher.Done()
	return nil
}

// acquire takes a slot for a new guest, or fails when ctx ends first.
func (w *Worker) acquire(ctx context.Context) bool {
	select {
	case w.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// slot is the run slot of one guest, which it gives up while it waits for
// its client's answer, and its place in its plugin's share (fair.go).
type slot struct {
	w    *Worker
	held bool

	share   share // what the guest counts against, once entered
	counted bool
}

func (s *slot) release() {
	if s.held {
		<-s.w.slots
		s.held = false
	}
}

// suspend is the guest's hook for waiting on its client: it gives the slot
// up, registers the guest for eviction (evict takes it away) and returns
// how to resume. A resuming guest takes a slot back if one is free and runs
// anyway if not: the slots bound how many guests start, and a guest that
// had an answer must not wait behind new work.
func (s *slot) suspend(evict func()) (resume func()) {
	done := s.w.waiting.add(evict)
	s.release()
	sh, counted := s.share, s.counted
	s.leave() // a guest waiting for a person does not count against its plugin
	return func() {
		done()
		select {
		case s.w.slots <- struct{}{}:
			s.held = true
		default:
		}
		if counted {
			s.w.force(sh)
			s.counted = true
		}
	}
}

// onEvent stops a guest as soon as its task ends elsewhere (tasks/cancel).
func (w *Worker) onEvent(e tasks.Event) {
	if e.Kind != tasks.EventStatus || !e.Status.Terminal() {
		return
	}
	w.mu.Lock()
	cancel := w.running[e.TaskID]
	w.mu.Unlock()
	if cancel != nil {
		cancel(ErrTaskEnded)
	}
}

// loop takes one task at a time from the queue, whenever a run slot is
// free, and runs each on its own goroutine.
func (w *Worker) loop(ctx context.Context, wg *sync.WaitGroup) {
	q := w.store.Queue()
	failing := false
	for {
		if !w.acquire(ctx) {
			return
		}
		s := &slot{w: w, held: true}
		d, err := q.Next(ctx)
		if ctx.Err() != nil {
			s.release()
			if d != nil {
				w.release(ctx, d)
			}
			return
		}
		if err != nil {
			s.release()
			// Next paces itself against a failing backend. Say so once
			// per outage, not once a second.
			if !failing {
				w.logger.Error("could not take work from the queue; retrying", "error", err)
			} else {
				w.logger.Debug("could not take work from the queue", "error", err)
			}
			failing = true
			continue
		}
		if failing {
			w.logger.Info("taking work from the queue again")
			failing = false
		}
		wg.Go(func() {
			stack.Reserve() // a fresh goroutine per task
			defer s.release()
			defer s.leave()
			var err error
			switch w.handle(ctx, d, s) {
			case handOn:
				return // left unacknowledged for another worker
			case done:
				err = w.retry(ctx, d.Ack)
			case fenced:
				err = w.retry(ctx, d.Drop)
			}
			if err != nil {
				w.logger.Error("could not acknowledge task", "task", d.TaskID(), "error", err)
			}
		})
	}
}

// outcome is what becomes of a delivery once handled.
type outcome int

const (
	// done: the task's outcome is recorded (or it is parked): acknowledge
	// the entry.
	done outcome = iota
	// handOn: leave the entry unacknowledged, for the queue to hand on
	// (the store could not be reached before the worker stopped).
	handOn
	// fenced: another run owns the task; drop the entry unless the worker
	// running that run holds it now (tasks.Delivery.Drop).
	fenced
)

// handBackTimeout bounds the store calls that give a task back while the
// worker stops (a full queue must not hold up the shutdown).
const handBackTimeout = 5 * time.Second

// release gives back a delivery taken as the worker stopped, before its
// guest ran: queued afresh, for the next worker.
func (w *Worker) release(ctx context.Context, d tasks.Delivery) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), handBackTimeout)
	defer cancel()
	if err := w.store.Queue().Enqueue(bg, d.TaskID()); err != nil {
		w.logger.Warn("could not give back a task taken while stopping; the queue will hand it on", "task", d.TaskID(), "error", err)
		return
	}
	if err := d.Ack(bg); err != nil {
		w.logger.Warn("could not acknowledge a task given back", "task", d.TaskID(), "error", err)
	}
}

// handle runs one delivery and says what becomes of its queue entry.
//
// Every delivery starts a new run, whether the queue hands the task out
// for the first time, again after its worker died, or after its guest was
// evicted: the run replays what earlier runs journalled, so a tool that is
// not idempotent is resumed, not repeated (docs/rationale.md, "Redelivery
// policy").
func (w *Worker) handle(ctx context.Context, d tasks.Delivery, s *slot) outcome {
	id := d.TaskID()
	var t *tasks.Task
	err := w.retry(ctx, func(ctx context.Context) (err error) {
		t, err = w.store.Get(ctx, id)
		return err
	})
	switch {
	case errors.Is(err, tasks.ErrUnavailable):
		return handOn
	case err != nil:
		w.logger.Warn("queued task is gone", "task", id, "error", err)
		return done
	case t.Status.Terminal():
		return done
	}
	target, found := w.target(t)
	digest := ""
	if found {
		digest = target.plugin.Digest()
	}
	var run tasks.Run
	err = w.retry(ctx, func(ctx context.Context) (err error) {
		run, err = w.store.StartRun(ctx, id, digest)
		return err
	})
	switch {
	case errors.Is(err, tasks.ErrUnavailable):
		return handOn
	case errors.Is(err, tasks.ErrTerminal), errors.Is(err, tasks.ErrNotFound):
		return done
	case err != nil:
		w.logger.Error("could not start a run of the task", "task", id, "error", err)
		return done
	}
	w.logger.Debug("starting a run", "task", id, "run", run.Token, "journal", len(run.Journal), "redelivered", d.Redelivered())
	if len(run.Journal) > 0 || d.Redelivered() {
		w.logger.Info("resuming a task by replay", "task", id, "tool", t.Tool, "journal", len(run.Journal), "redelivered", d.Redelivered())
	}
	if !found {
		return w.fail(ctx, t, run, fmt.Sprintf("%s %s is not served by any plugin any more", t.Op.Noun(), t.Tool))
	}
	if run.Module != "" && run.Module != digest {
		// The plugin changed since the task started: its journal replays
		// only on the module it was recorded with.
		p, err := w.tools.Pinned(t.Tool, run.Module)
		if err != nil {
			return w.fail(ctx, t, run, fmt.Sprintf("the plugin serving %s %s changed since the task started, and the task cannot be resumed: %v", t.Op.Noun(), t.Tool, err))
		}
		w.logger.Info("resuming a task on the module it started with", "task", id, "tool", t.Tool, "module", run.Module, "current", digest)
		target = w.on(t, p, target.share)
	}
	return w.run(ctx, t, run, target, s)
}

// run executes t's guest and records how it ended.
func (w *Worker) run(ctx context.Context, t *tasks.Task, run tasks.Run, target target, s *slot) outcome {
	if !w.enter(ctx, s, target.share) {
		return w.interrupted(ctx, t, run)
	}
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	w.running[t.ID] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, t.ID)
		w.mu.Unlock()
	}()
	// The task may have been cancelled before we registered for the event.
	if cur, err := w.store.Get(ctx, t.ID); err == nil && cur.Status.Terminal() {
		return done
	}

	env := elicit.NewGuestEnv(w.store, t, run, w.logger)
	env.Suspend = s.suspend
	res, err := target.invoke(callCtx, env)
	switch {
	case errors.Is(context.Cause(callCtx), ErrTaskEnded):
		return done // cancelled through the store: that already recorded the outcome
	case errors.Is(err, tasks.ErrFenced):
		w.logger.Info("another run took the task over; this one stops without recording anything", "task", t.ID, "run", run.Token)
		return fenced
	case errors.Is(err, host.ErrEvicted):
		return w.park(ctx, t, run)
	case err == nil:
		return w.complete(ctx, t, run, res)
	case ctx.Err() != nil:
		return w.interrupted(ctx, t, run)
	default:
		return w.fail(ctx, t, run, err.Error())
	}
}

// park gives the task up until its questions are answered: the store
// queues it again then, and whichever worker takes it resumes it by
// replay.
func (w *Worker) park(ctx context.Context, t *tasks.Task, run tasks.Run) outcome {
	err := w.retry(ctx, func(ctx context.Context) error { return w.store.Park(ctx, t.ID, run.Token) })
	switch {
	case err == nil:
		w.logger.Debug("parked a task waiting for its client", "task", t.ID, "tool", t.Tool)
		return done
	case errors.Is(err, tasks.ErrFenced):
		return fenced
	case errors.Is(err, tasks.ErrUnavailable):
		w.logger.Warn("could not park the task; the queue will hand it on", "task", t.ID, "error", err)
		return handOn
	}
	w.logger.Debug("task ended before it could be parked", "task", t.ID, "error", err)
	return done
}

// interrupted hands back a task stopped because the worker is stopping: it
// is parked, so queued again at once (or once its guest's questions are
// answered) and resumed by replay, on another worker or this one when it
// comes back.
func (w *Worker) interrupted(ctx context.Context, t *tasks.Task, run tasks.Run) outcome {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), handBackTimeout)
	defer cancel()
	o := w.park(bg, t, run)
	if o == done {
		w.logger.Info("handed back a task on shutdown", "task", t.ID, "tool", t.Tool)
	}
	return o
}

// target is what runs a task's guest: its plugin, how to call it, and what
// it counts against for fair scheduling (its plugin's path, and its tool's
// own cap).
type target struct {
	plugin *host.Plugin
	invoke func(context.Context, host.Env) (any, error)
	share  share
}

// target finds what runs t's guest now.
func (w *Worker) target(t *tasks.Task) (target, bool) {
	switch t.Op {
	case tasks.OpGetPrompt:
		e, ok := w.tools.LookupPrompt(t.Tool)
		if !ok {
			return target{}, false
		}
		return w.on(t, e.Plugin, share{plugin: e.Plugin.Path()}), true
	case tasks.OpReadResource:
		p, ok := w.tools.LookupResource(t.Tool)
		if !ok {
			return target{}, false
		}
		return w.on(t, p, share{plugin: p.Path()}), true
	}
	e, ok := w.tools.Lookup(t.Tool)
	if !ok {
		return target{}, false
	}
	path := e.Plugin.Path()
	return w.on(t, e.Plugin, share{plugin: path, tool: path + "\x00" + t.Tool, toolLimit: e.Tool.MaxConcurrency}), true
}

// on is what runs t's guest on plugin p.
func (w *Worker) on(t *tasks.Task, p *host.Plugin, sh share) target {
	invoke := func(ctx context.Context, env host.Env) (any, error) {
		return p.Call(ctx, t.Tool, t.Args, env)
	}
	switch t.Op {
	case tasks.OpGetPrompt:
		invoke = func(ctx context.Context, env host.Env) (any, error) {
			return p.GetPrompt(ctx, t.Tool, t.Args, env)
		}
	case tasks.OpReadResource:
		invoke = func(ctx context.Context, env host.Env) (any, error) {
			return p.ReadResource(ctx, t.Tool, env)
		}
	}
	return target{plugin: p, invoke: invoke, share: sh}
}

// complete records the guest's result (a CallResult, PromptResult or
// ResourceResult) as the task's outcome.
func (w *Worker) complete(ctx context.Context, t *tasks.Task, run tasks.Run, res any) outcome {
	raw, err := json.Marshal(res)
	if err != nil {
		return w.fail(ctx, t, run, fmt.Sprintf("encode result: %v", err))
	}
	return w.record(t, w.retry(ctx, func(ctx context.Context) error { return w.store.Complete(ctx, t.ID, run.Token, raw) }))
}

func (w *Worker) fail(ctx context.Context, t *tasks.Task, run tasks.Run, msg string) outcome {
	err := w.retry(ctx, func(ctx context.Context) error { return w.store.Fail(ctx, t.ID, run.Token, msg) })
	if err == nil {
		w.logger.Warn("task failed", "task", t.ID, "tool", t.Tool, "reason", msg)
	}
	return w.record(t, err)
}

// record logs how recording an outcome went and says what becomes of the
// delivery.
func (w *Worker) record(t *tasks.Task, err error) outcome {
	switch {
	case err == nil:
	case errors.Is(err, tasks.ErrTerminal):
		w.logger.Debug("task ended elsewhere first", "task", t.ID, "error", err)
	case errors.Is(err, tasks.ErrFenced):
		// Another run owns the task (this process lost its claim): its
		// outcome is the one that counts, and the queue entry is its own.
		w.logger.Warn("another run took the task over; its outcome counts, not this one's", "task", t.ID, "error", err)
		return fenced
	case errors.Is(err, tasks.ErrUnavailable):
		w.logger.Error("could not record task outcome before stopping; the queue will hand the task on", "task", t.ID, "error", err)
		return handOn
	default:
		w.logger.Error("could not record task outcome", "task", t.ID, "error", err)
	}
	return done
}

// retry calls fn until it succeeds or fails for a reason other than an
// unreachable store, pausing between attempts (100ms doubling to 2s). Once
// ctx has ended it makes one more attempt and gives up after it. Each
// attempt gets a context that outlives ctx, so that a stopping worker can
// still record what its guests did.
func (w *Worker) retry(ctx context.Context, fn func(context.Context) error) error {
	var pause time.Duration
	for {
		err := fn(context.WithoutCancel(ctx))
		if err == nil || !errors.Is(err, tasks.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		if pause == 0 {
			w.logger.Warn("task store unavailable; retrying", "error", err)
		}
		pause = min(max(2*pause, 100*time.Millisecond), 2*time.Second)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}
