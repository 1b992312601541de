package tasks

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
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
	expiries   expiryHeap
	watches    map[*memWatch]struct{}
	queue      *memQueue
	now        func() time.Time
	maxJournal int64
}

type memTask struct {
	task    Task
	answers map[string]answered // by key, until AppendJournal consumes them
	// changed is closed and replaced on every change, waking waiters.
	changed chan struct{}

	token        int64    // the current run's fence token; 0 before the first
	module       string   // pinned module digest
	journal      [][]byte // entries of every run so far
	journalBytes int64
	parked       bool // the run gave its guest up: queue the task once answered
}

// answered is an answer and the question it answers, so that a replay
// asking the same question again is recognised.
type answered struct {
	req  abi.InputRequest
	resp abi.InputResponse
}

// errUnchanged, returned by an update's change, means success without any
// change to announce.
var errUnchanged = errors.New("unchanged")

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
		answers: map[string]answered{},
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
		if t.Status.Terminal() {
			return transitionError(id, t.Status, InputRequired)
		}
		var fresh []string
		for key, req := range reqs {
			if asked, pending := t.InputRequests[key]; pending {
				if !sameRequest(asked, req) {
					return fmt.Errorf("task %s: input request key %q is still in use", id, key)
				}
			} else if a, untaken := mt.answers[key]; untaken {
				if !sameRequest(a.req, req) {
					return fmt.Errorf("task %s: input request key %q is still in use", id, key)
				}
			} else {
				fresh = append(fresh, key)
			}
		}
		if len(fresh) == 0 {
			return errUnchanged // asked again by a replay: nothing new
		}
		if t.InputRequests == nil {
			t.InputRequests = make(map[string]abi.InputRequest, len(fresh))
		}
		for _, key := range fresh {
			t.InputRequests[key] = cloneRequest(reqs[key])
		}
		t.Status = InputRequired
		return nil
	})
}

// sameRequest reports whether two requests are the same question, as the
// Redis store compares them: equal once encoded.
func sameRequest(a, b abi.InputRequest) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func (m *Memory) Answer(_ context.Context, id, key string, resp abi.InputResponse) error {
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if t.Status.Terminal() {
			return transitionError(id, t.Status, Working)
		}
		req, ok := t.InputRequests[key]
		if !ok {
			return fmt.Errorf("task %s: input request %q: %w", id, key, ErrNotPending)
		}
		delete(t.InputRequests, key)
		mt.answers[key] = answered{req: req, resp: cloneResponse(resp)}
		if len(t.InputRequests) == 0 {
			t.InputRequests = nil
			t.Status = Working
			if mt.parked {
				mt.parked = false
				m.queue.push(id)
			}
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
		if got, ok := readAnswers(mt.answers, keys); ok {
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

// readAnswers returns copies of the answers to keys once all are there.
func readAnswers(answers map[string]answered, keys []string) (map[string]abi.InputResponse, bool) {
	for _, k := range keys {
		if _, ok := answers[k]; !ok {
			return nil, false
		}
	}
	got := make(map[string]abi.InputResponse, len(keys))
	for _, k := range keys {
		got[k] = cloneResponse(answers[k].resp)
	}
	return got, true
}

func (m *Memory) StartRun(_ context.Context, id, module string) (Run, error) {
	var run Run
	err := m.update(id, func(mt *memTask) error {
		t := &mt.task
		if t.Status.Terminal() {
			return transitionError(id, t.Status, Working)
		}
		mt.token++
		if mt.module == "" {
			mt.module = module
		}
		mt.parked = false
		if len(t.InputRequests) == 0 {
			t.Status = Working
		}
		run = Run{Token: mt.token, Module: mt.module, Journal: make([][]byte, len(mt.journal))}
		for i, e := range mt.journal {
			run.Journal[i] = slices.Clone(e)
		}
		return nil
	})
	return run, err
}

func (m *Memory) AppendJournal(_ context.Context, id string, token int64, entries [][]byte, consume []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.runLocked(id, token)
	if err != nil {
		return err
	}
	var size int64
	for _, e := range entries {
		size += int64(len(e))
	}
	if mt.journalBytes+size > m.maxJournal {
		return journalFullError(id, mt.journalBytes+size, m.maxJournal)
	}
	for _, e := range entries {
		mt.journal = append(mt.journal, slices.Clone(e))
	}
	mt.journalBytes += size
	for _, k := range consume {
		delete(mt.answers, k)
	}
	return nil
}

func (m *Memory) Park(_ context.Context, id string, token int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt, err := m.runLocked(id, token)
	if err != nil {
		return err
	}
	if len(mt.task.InputRequests) == 0 {
		m.queue.push(id) // answered already: resume now
		return nil
	}
	mt.parked = true
	return nil
}

// runLocked looks up a task for a call of run token: refused unless the run
// is current and the task has not finished.
func (m *Memory) runLocked(id string, token int64) (*memTask, error) {
	mt, err := m.lookupLocked(id)
	if err != nil {
		return nil, err
	}
	if token <= 0 || token != mt.token {
		return nil, fencedError(id, token, mt.token)
	}
	if mt.task.Status.Terminal() {
		return nil, transitionError(id, mt.task.Status, Working)
	}
	return mt, nil
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

func (m *Memory) Complete(_ context.Context, id string, token int64, result json.RawMessage) error {
	return m.finish(id, token, Completed, func(t *Task) { t.Result = slices.Clone(result) })
}

func (m *Memory) Fail(_ context.Context, id string, token int64, message string) error {
	return m.finish(id, token, Failed, func(t *Task) { t.Error = message; t.StatusMessage = message })
}

func (m *Memory) Cancel(_ context.Context, id, message string) error {
	return m.finish(id, 0, Cancelled, func(t *Task) { t.StatusMessage = message })
}

// finish ends the task; token 0 is unfenced.
func (m *Memory) finish(id string, token int64, to Status, set func(*Task)) error {
	return m.update(id, func(mt *memTask) error {
		t := &mt.task
		if token != 0 && token != mt.token {
			return fencedError(id, token, mt.token)
		}
		if !CanTransition(t.Status, to) {
			return transitionError(id, t.Status, to)
		}
		t.Status = to
		t.InputRequests = nil
		clear(mt.answers)
		mt.journal, mt.journalBytes, mt.parked = nil, 0, false
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
	if err := change(mt); err == errUnchanged {
		return nil
	} else if err != nil {
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

func (m *Memory) Queue() Queue { return m.queue }

func (m *Memory) Close() error { return nil }

// memQueue is an unbounded FIFO: the store queues parked tasks while it
// holds its lock, so queueing must never block.
type memQueue struct {
	mu    sync.Mutex
	ids   []string
	ready chan struct{} // closed and replaced when an id is pushed
}

func newMemQueue() *memQueue { return &memQueue{ready: make(chan struct{})} }

func (q *memQueue) push(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	close(q.ready)
	q.ready = make(chan struct{})
}

func (q *memQueue) Enqueue(_ context.Context, id string) error {
	q.push(id)
	return nil
}

func (q *memQueue) Next(ctx context.Context) (Delivery, error) {
	for {
		q.mu.Lock()
		if len(q.ids) > 0 {
			id := q.ids[0]
			q.ids[0] = ""
			q.ids = q.ids[1:]
			q.mu.Unlock()
			return memDelivery(id), nil
		}
		ready := q.ready
		q.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// memDelivery needs no acknowledgement: a process that dies takes its
// memory store with it.
type memDelivery string

func (d memDelivery) TaskID() string             { return string(d) }
func (d memDelivery) Redelivered() bool          { return false }
func (d memDelivery) Ack(context.Context) error  { return nil }
func (d memDelivery) Drop(context.Context) error { return nil }

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
