package worker

import (
	"container/list"
	"sync"
	"time"
)

// Eviction. A guest waiting for a person holds its instance (megabytes)
// for as long as the person takes. Its task's journal holds everything it
// learnt from the host, so it can be closed and resumed later by replay on
// any worker: the worker evicts a guest that has waited EvictAfter, and,
// while more than MaxSuspended wait, the one waiting longest. The evicted
// guest's Input fails with host.ErrEvicted, the host stops it, and the
// worker parks the task (tasks.Store.Park) until its answers are in.

// waiting holds the guests waiting for answers, longest waiting first.
type waiting struct {
	max   int
	after time.Duration

	mu    sync.Mutex
	order *list.List // of *waiter
}

type waiter struct {
	evict func()
	elem  *list.Element // nil once it is no longer waiting
	timer *time.Timer
}

func newWaiting(max int, after time.Duration) *waiting {
	return &waiting{max: max, after: after, order: list.New()}
}

// add registers a guest that starts waiting; evict takes it away. It
// returns what to call when the guest stops waiting (answered, or gone).
func (ws *waiting) add(evict func()) (done func()) {
	wt := &waiter{evict: evict}
	ws.mu.Lock()
	wt.elem = ws.order.PushBack(wt)
	wt.timer = time.AfterFunc(ws.after, func() { ws.evict(wt) })
	var over []*waiter
	for ws.order.Len() > ws.max {
		oldest := ws.order.Front().Value.(*waiter)
		ws.removeLocked(oldest)
		over = append(over, oldest)
	}
	ws.mu.Unlock()
	for _, o := range over {
		o.evict()
	}
	return func() {
		ws.mu.Lock()
		ws.removeLocked(wt)
		ws.mu.Unlock()
	}
}

// evict takes wt away unless it stopped waiting meanwhile.
func (ws *waiting) evict(wt *waiter) {
	ws.mu.Lock()
	still := wt.elem != nil
	ws.removeLocked(wt)
	ws.mu.Unlock()
	if still {
		wt.evict()
	}
}

func (ws *waiting) removeLocked(wt *waiter) {
	if wt.elem == nil {
		return
	}
	ws.order.Remove(wt.elem)
	wt.elem = nil
	wt.timer.Stop()
}
