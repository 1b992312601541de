package worker

import (
	"context"
	"sync"
)

// Fair scheduling. Every tool call of every plugin comes through one FIFO
// queue, and the run slots are shared: without a cap, eight calls of one
// spinning tool held all eight slots and every other tool waited for the
// whole call deadline. So each plugin may hold at most a share of the
// slots (Options.PerPlugin, half by default). A call whose plugin is at its
// cap gives its run slot up and waits, parked, for one of its plugin's
// calls to end, so the loop goes on taking work for the other plugins.
// Parked calls are bounded too (Options.MaxParked); past that a capped
// call keeps its slot while it waits, as before.

// plugins counts the guests each plugin has running.
type plugins struct {
	limit int

	mu      sync.Mutex
	running map[string]int
	freed   map[string]chan struct{} // closed when a guest of that plugin ends
}

func newPlugins(limit int) *plugins {
	return &plugins{limit: limit, running: map[string]int{}, freed: map[string]chan struct{}{}}
}

// tryTake counts one more guest of key unless it is at the limit.
func (p *plugins) tryTake(key string) (ok bool, freed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running[key] < p.limit {
		p.running[key]++
		return true, nil
	}
	ch, have := p.freed[key]
	if !have {
		ch = make(chan struct{})
		p.freed[key] = ch
	}
	return false, ch
}

// force counts one more guest of key, over the limit if need be: a guest
// resuming after its client answered must not wait behind new work.
func (p *plugins) force(key string) {
	p.mu.Lock()
	p.running[key]++
	p.mu.Unlock()
}

func (p *plugins) give(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running[key]--; p.running[key] <= 0 {
		delete(p.running, key)
	}
	if ch, ok := p.freed[key]; ok {
		close(ch)
		delete(p.freed, key)
	}
}

// enter takes a place for s's guest in its plugin's share, parking (slot
// given up) while the plugin is at its cap. It fails only when ctx ends.
func (w *Worker) enter(ctx context.Context, s *slot, key string) bool {
	parked := false
	defer func() {
		if parked {
			<-w.parked
		}
	}()
	for {
		ok, freed := w.plugins.tryTake(key)
		if ok {
			s.key, s.inPlugin = key, true
			if !s.held && !w.acquire(ctx) {
				w.plugins.give(key)
				s.inPlugin = false
				return false
			}
			s.held = true
			return true
		}
		if !parked {
			select {
			case w.parked <- struct{}{}:
				parked = true
				s.release() // let the loop take work for other plugins
			default: // too many parked: wait holding the slot
			}
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return false
		}
	}
}

// leave gives s's place in its plugin's share back.
func (s *slot) leave() {
	if s.inPlugin {
		s.w.plugins.give(s.key)
		s.inPlugin = false
	}
}
