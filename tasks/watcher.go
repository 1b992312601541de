package tasks

import (
	"context"
	"sync"
)

// Watcher shares one Store.Watch among everything in a process that waits
// on tasks, so a thousand waiting calls cost one subscription.
type Watcher struct {
	store   Store
	onEvent func(Event)

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
	done    chan struct{}
}

// NewWatcher starts watching store until ctx ends. onEvent, if not nil, sees
// every event in order; it runs on the watch goroutine and must not block.
func NewWatcher(ctx context.Context, store Store, onEvent func(Event)) (*Watcher, error) {
	events, err := store.Watch(ctx)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		store:   store,
		onEvent: onEvent,
		waiters: make(map[string]map[chan struct{}]struct{}),
		done:    make(chan struct{}),
	}
	go w.run(events)
	return w, nil
}

// Done is closed when the watch has stopped.
func (w *Watcher) Done() <-chan struct{} { return w.done }

func (w *Watcher) run(events <-chan Event) {
	defer close(w.done)
	for e := range events {
		if w.onEvent != nil {
			w.onEvent(e)
		}
		switch e.Kind {
		case EventStatus:
			w.poke(e.TaskID)
		case EventResync:
			w.pokeAll()
		}
	}
	w.pokeAll() // wake waiters so they see the watch is gone
}

func (w *Watcher) poke(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (w *Watcher) pokeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, set := range w.waiters {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Wait returns the task as soon as cond holds for it, re-reading it after
// every change. It fails with the store's error (ErrNotFound once the task
// expired) or ctx's.
func (w *Watcher) Wait(ctx context.Context, id string, cond func(*Task) bool) (*Task, error) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.waiters[id] == nil {
		w.waiters[id] = make(map[chan struct{}]struct{})
	}
	w.waiters[id][ch] = struct{}{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.waiters[id], ch)
		if len(w.waiters[id]) == 0 {
			delete(w.waiters, id)
		}
		w.mu.Unlock()
	}()
	for {
		t, err := w.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if cond(t) {
			return t, nil
		}
		select {
		case <-ch:
		case <-w.done:
			return nil, ErrWatchStopped
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// IsTerminal is a Wait condition: the task has finished.
func IsTerminal(t *Task) bool { return t.Status.Terminal() }
