package worker

import (
	"context"
	"os"
	"runtime"
	"sync"
)

// Fair scheduling. Every tool call of every plugin comes through one FIFO
// queue, and the run slots are shared: without a cap, eight calls of one
// spinning tool held all eight slots and every other tool waited for the
// whole call deadline. So each plugin may hold at most a share of the
// slots (Options.PerPlugin, half by default), and a tool that declares
// abi.Tool.MaxConcurrency at most that many within it. A call over a cap
// gives its run slot up and waits, parked, for a call of its plugin (or
// tool) to end, so the loop goes on taking work for the others. Parked
// calls are bounded too (Options.MaxParked); past that a capped call keeps
// its slot while it waits, as before.

// counts counts the guests running per key (a plugin, or a tool).
type counts struct {
	mu      sync.Mutex
	running map[string]int
	freed   map[string]chan struct{} // closed when a guest of that key ends
}

func newCounts() *counts {
	return &counts{running: map[string]int{}, freed: map[string]chan struct{}{}}
}

// tryTake counts one more guest of key unless it is at limit; if it is,
// freed is closed when one ends.
func (c *counts) tryTake(key string, limit int) (ok bool, freed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[key] < limit {
		c.running[key]++
		return true, nil
	}
	ch, have := c.freed[key]
	if !have {
		ch = make(chan struct{})
		c.freed[key] = ch
	}
	return false, ch
}

// force counts one more guest of key, over the limit if need be: a guest
// resuming after its client answered must not wait behind new work.
func (c *counts) force(key string) {
	c.mu.Lock()
	c.running[key]++
	c.mu.Unlock()
}

func (c *counts) give(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[key]--; c.running[key] <= 0 {
		delete(c.running, key)
	}
	if ch, ok := c.freed[key]; ok {
		close(ch)
		delete(c.freed, key)
	}
}

// share is what a guest counts against: its plugin, and its tool when the
// tool declares a cap.
type share struct {
	plugin, tool string
	toolLimit    int
}

// take counts the guest against both caps, or neither.
func (w *Worker) take(sh share) (ok bool, freed <-chan struct{}) {
	if ok, freed = w.plugins.tryTake(sh.plugin, w.perPlugin); !ok {
		return false, freed
	}
	if sh.toolLimit > 0 {
		if ok, freed = w.toolCaps.tryTake(sh.tool, sh.toolLimit); !ok {
			w.plugins.give(sh.plugin)
			return false, freed
		}
	}
	return true, nil
}

func (w *Worker) give(sh share) {
	w.plugins.give(sh.plugin)
	if sh.toolLimit > 0 {
		w.toolCaps.give(sh.tool)
	}
}

func (w *Worker) force(sh share) {
	w.plugins.force(sh.plugin)
	if sh.toolLimit > 0 {
		w.toolCaps.force(sh.tool)
	}
}

// enter takes a place for s's guest within its caps, parking (slot given
// up) while it is over one. It fails only when ctx ends.
func (w *Worker) enter(ctx context.Context, s *slot, sh share) bool {
	parked := false
	defer func() {
		if parked {
			<-w.parked
		}
	}()
	for {
		ok, freed := w.take(sh)
		if ok {
			if !s.held {
				select {
				case w.slots <- struct{}{}:
					s.held = true
				default:
					// Never wait for a slot holding a place: the guests
					// holding the slots may be waiting for that place.
					w.give(sh)
					if !w.acquire(ctx) {
						return false
					}
					s.held = true
					continue
				}
			}
			s.share, s.counted = sh, true
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

// leave gives s's place within its caps back.
func (s *slot) leave() {
	if s.counted {
		s.w.give(s.share)
		s.counted = false
	}
}

// ReserveProcs raises GOMAXPROCS to the CPUs Go would use plus
// concurrency, so that the guests a worker runs at once can never hold
// every P. A guest in a loop gives its P up only when Go's scheduler
// preempts it, every 10 ms; with every P held by spinning guests, each
// hand-off on a quick call's path (queue, worker, guest, store, watcher)
// waited up to that long, and greet beside 8 spinning calls took 60–94 ms
// at p99 on 2 CPUs. With spare Ps the operating system schedules the
// threads, and the host lowers a long call's thread's priority (see
// host/runbudget.go): 5–8 ms (BenchmarkGreetBesideSpinners). An
// operator's GOMAXPROCS environment variable is left alone. It returns
// what GOMAXPROCS was.
func ReserveProcs(concurrency int) (previous int) {
	previous = runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || concurrency <= 0 {
		return previous
	}
	runtime.GOMAXPROCS(previous + concurrency)
	return previous
}
