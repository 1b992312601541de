package tasks

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

// Memory is the embedded Store: everything lives in this process and is
// lost when it exits. It is the default when no Redis URL is given.
type Memory struct {
	mu    sync.Mutex
	tasks map[string]*memTask
	// expiries orders the tasks by when they expire, so that forgetting
	// the expired ones costs what is forgotten, not a walk over every task
	// (plain calls are kept an hour: a busy server holds many).
	expiries expiryHeap
	watches  map[*memWatch]struct{}
	queue    chan string
	now      func() time.Time
}

type memTask struct {
	task    Task
	answers map[string]abi.InputResponse
	// changed is closed and replaced on every change, waking waiters.
	changed chan struct{}
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return NewMemoryWith(MemoryOptions{}) }

func (m *Memory) Create(_ context.Context, t *Task) error {
	if err := checkNew(t); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked()
	if _, ok := m.tasks[t.ID]; ok {
		return fmt.Errorf("task %s already exists", t.ID)
	}
	mt := &memTask{
		task:    *clone(t),
		answers: map[string]abi.InputResponse{},
		changed: make(chan struct{}),
	}
	m.tasks[t.ID] = mt
	heap.Push(&m.expiries, expiry{id: t.ID, at: mt.task.ExpiresAt()})
	m.broadcastLocked(Event{Kind: EventStatus, TaskID: t.ID, Status: t.Status})
	return nil
}

func (m *Memory) Get(_ context.Context, id string) (*Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.lookupLocked(id)
	if err != nil {
		return nil, err
	}
	return clone(&mt.task), nil
}

func (m *Memory) List(_ context.Context, owner, cursor string, limit int) ([]*Task, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked()
	var all []*Task
	for _, mt := range m.tasks {
		if mt.task.Kind == KindTask && mt.task.Owner == owner {
			all = append(all, &mt.task)
		}
	}
	sortNewestFirst(all)
	return page(all, cursor, limit)
}

func (m *Memory) RequestInput(_ context.Context, id string, reqs map[string]abi.InputRequest) error {
	if len(reqs) == 0 {
		return fmt.Errorf("task %s: no input requests given", id)
	}
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if !CanTransition(t.Status, InputRequired) {
			return transitionError(id, t.Status, InputRequired)
		}
		for key := range reqs {
			_, pending := t.InputRequests[key]
			_, untaken := mt.answers[key]
			if pending || untaken {
				return fmt.Errorf("task %s: input request key %q is still in use", id, key)
			}
		}
		if t.InputRequests == nil {
			t.InputRequests = make(map[string]abi.InputRequest, len(reqs))
		}
		for key, req := range reqs {
			t.InputRequests[key] = cloneRequest(req)
		}
		t.Status = InputRequired
		return nil
	})
}

func (m *Memory) Answer(_ context.Context, id, key string, resp abi.InputResponse) error {
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if t.Status.Terminal() {
			return transitionError(id, t.Status, Working)
		}
		if _, ok := t.InputRequests[key]; !ok {
			return fmt.Errorf("task %s: input request %q: %w", id, key, ErrNotPending)
		}
		delete(t.InputRequests, key)
		mt.answers[key] = cloneResponse(resp)
		if len(t.InputRequests) == 0 {
			t.InputRequests = nil
			t.Status = Working
		}
		return nil
	})
}

func (m *Memory) AwaitAnswers(ctx context.Context, id string, keys []string) (map[string]abi.InputResponse, error) {
	for {
		m.mu.Lock()
		mt, err := m.lookupLocked(id)
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		if mt.task.Status.Terminal() {
			m.mu.Unlock()
			return nil, transitionError(id, mt.task.Status, Working)
		}
		if got, ok := takeAnswers(mt.answers, keys); ok {
			m.mu.Unlock()
			return got, nil
		}
		changed := mt.changed
		expiry := time.NewTimer(mt.task.ExpiresAt().Sub(m.now()))
		m.mu.Unlock()
		select {
		case <-changed:
		case <-expiry.C: // the next lookup reports ErrNotFound
		case <-ctx.Done():
			expiry.Stop()
			return nil, ctx.Err()
		}
		expiry.Stop()
	}
}

// takeAnswers removes and returns the answers to keys once all are there.
func takeAnswers(answers map[string]abi.InputResponse, keys []string) (map[string]abi.InputResponse, bool) {
	for _, k := range keys {
		if _, ok := answers[k]; !ok {
			return nil, false
		}
	}
	got := make(map[string]abi.InputResponse, len(keys))
	for _, k := range keys {
		got[k] = answers[k]
		delete(answers, k)
	}
	return got, true
}

func (m *Memory) Restart(_ context.Context, id string) error {
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if t.Status.Terminal() {
			return transitionError(id, t.Status, Working)
		}
		t.Status = Working
		t.InputRequests = nil
		clear(mt.answers)
		return nil
	})
}

func (m *Memory) Detach(_ context.Context, id string) error {
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if t.Status.Terminal() {
			return transitionError(id, t.Status, t.Status)
		}
		if t.Kind != KindCall || !t.Detachable {
			return fmt.Errorf("task %s: only a detachable call can become a task: %w", id, ErrIllegalTransition)
		}
		t.Kind = KindTask
		return nil
	})
}

func (m *Memory) Complete(_ context.Context, id string, result json.RawMessage) error {
	return m.finish(id, Completed, func(t *Task) { t.Result = slices.Clone(result) })
}

func (m *Memory) Fail(_ context.Context, id, message string) error {
	return m.finish(id, Failed, func(t *Task) { t.Error = message; t.StatusMessage = message })
}

func (m *Memory) Cancel(_ context.Context, id, message string) error {
	return m.finish(id, Cancelled, func(t *Task) { t.StatusMessage = message })
}

func (m *Memory) finish(id string, to Status, set func(*Task)) error {
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if !CanTransition(t.Status, to) {
			return transitionError(id, t.Status, to)
		}
		t.Status = to
		t.InputRequests = nil
		clear(mt.answers)
		set(t)
		return nil
	})
}

// update applies change under the lock, stamps the task, wakes waiters and
// tells watchers.
func (m *Memory) update(id string, change func(*memTask) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.lookupLocked(id)
	if err != nil {
		return err
	}
	if err := change(mt); err != nil {
		return err
	}
	mt.task.UpdatedAt = m.now()
	close(mt.changed)
	mt.changed = make(chan struct{})
	m.broadcastLocked(Event{Kind: EventStatus, TaskID: id, Status: mt.task.Status})
	return nil
}

func (m *Memory) lookupLocked(id string) (*memTask, error) {
	mt, ok := m.tasks[id]
	if !ok || expired(&mt.task, m.now()) {
		return nil, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	return mt, nil
}

// sweepLocked forgets expired tasks, waking anything still waiting on them.
func (m *Memory) sweepLocked() {
	now := m.now()
	for len(m.expiries) > 0 && !now.Before(m.expiries[0].at) {
		id := heap.Pop(&m.expiries).(expiry).id
		if mt, ok := m.tasks[id]; ok && expired(&mt.task, now) {
			close(mt.changed)
			delete(m.tasks, id)
		}
	}
}

// expiry is when the task of that id expires.
type expiry struct {
	id string
	at time.Time
}

// expiryHeap is a container/heap of expiries, soonest first.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (m *Memory) Publish(_ context.Context, e Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.broadcastLocked(e)
	return nil
}

func (m *Memory) Watch(ctx context.Context) (<-chan Event, error) {
	w := &memWatch{out: make(chan Event, watchBuffer), ctx: ctx}
	m.mu.Lock()
	m.watches[w] = struct{}{}
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		delete(m.watches, w) // no push after this
		m.mu.Unlock()
		w.pumps.Wait()
		close(w.out)
	})
	return w.out, nil
}

func (m *Memory) broadcastLocked(e Event) {
	for w := range m.watches {
		w.push(e)
	}
}

// watchBuffer is how many events wait in a watch's channel before the
// rest wait in its backlog.
const watchBuffer = 256

// memWatch delivers events to one watcher, in order, without ever
// blocking a store writer or losing an event: straight into the watcher's
// channel while it keeps up (no goroutine in between), into a backlog
// without bound, sent on by a goroutine, while it does not.
type memWatch struct {
	out   chan Event
	ctx   context.Context
	pumps sync.WaitGroup

	mu      sync.Mutex
	backlog []Event
	pumping bool // a pump is sending the backlog: new events queue behind it
}

func (w *memWatch) push(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.pumping {
		select {
		case w.out <- e:
			return
		default:
		}
		w.pumping = true
		w.pumps.Go(w.pump)
	}
	w.backlog = append(w.backlog, e)
}

// pump sends the backlog, oldest first, until it is empty or the watch
// ends.
func (w *memWatch) pump() {
	for {
		w.mu.Lock()
		if len(w.backlog) == 0 {
			w.pumping = false
			w.mu.Unlock()
			return
		}
		e := w.backlog[0]
		w.backlog[0] = Event{}
		w.backlog = w.backlog[1:]
		w.mu.Unlock()
		select {
		case w.out <- e:
		case <-w.ctx.Done():
			return
		}
	}
}

func (m *Memory) Queue() Queue { return memQueue{m.queue} }

func (m *Memory) Close() error { return nil }

type memQueue struct{ ch chan string }

func (q memQueue) Enqueue(ctx context.Context, id string) error {
	select {
	case q.ch <- id:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q memQueue) Next(ctx context.Context) (Delivery, error) {
	select {
	case id := <-q.ch:
		return memDelivery(id), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// memDelivery needs no acknowledgement: a process that dies takes its
// memory store with it.
type memDelivery string

func (d memDelivery) TaskID() string            { return string(d) }
func (d memDelivery) Redelivered() bool         { return false }
func (d memDelivery) Ack(context.Context) error { return nil }

func clone(t *Task) *Task {
	c := *t
	c.Args = slices.Clone(t.Args)
	c.Accepts = slices.Clone(t.Accepts)
	c.ProgressToken = slices.Clone(t.ProgressToken)
	c.Result = slices.Clone(t.Result)
	if t.InputRequests != nil {
		c.InputRequests = make(map[string]abi.InputRequest, len(t.InputRequests))
		for k, r := range t.InputRequests {
			c.InputRequests[k] = cloneRequest(r)
		}
	}
	return &c
}

func cloneRequest(r abi.InputRequest) abi.InputRequest {
	r.Params = slices.Clone(r.Params)
	return r
}

func cloneResponse(r abi.InputResponse) abi.InputResponse {
	r.Result = slices.Clone(r.Result)
	if r.Error != nil {
		e := *r.Error
		r.Error = &e
	}
	return r
}
