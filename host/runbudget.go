package host

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/wasmhost/wasmhost/internal/stack"
)

// DefaultRunBudget is the run time a call may use when Options.RunBudget
// is 0. Run time counts while the guest runs (computing, sleeping, in a
// host function), not while it waits for a person to answer: a tool that
// asks a question and waits an hour has used none of it, while a tool in
// an endless loop ends after this much instead of the 30 minutes of the
// wall-clock deadline.
const DefaultRunBudget = 2 * time.Minute

// Preemption by budget. A guest in a loop gives its CPU up only when Go
// preempts it (every 10 ms) or the operating system does; beside spinning
// guests, a quick call waited at every hand-off on its path. So the guest
// of a call runs on a thread of its own (locked while it runs), and once
// the call has run demoteAfter, that thread's nice value is raised by
// demotedNice: the operating system then prefers every other thread of
// the process (the host, quick guests) and other processes to it, while
// it still gets all the CPU nobody else wants. Its priority cannot be
// raised back without privilege, so a demoted thread ends with its call.
const (
	demoteAfter = 50 * time.Millisecond
	demotedNice = 10
)

// runClock measures one call's run time and ends the call once it passes
// the budget. Waits for input are bracketed with waiting/resumed.
type runClock struct {
	budget time.Duration
	kill   context.CancelCauseFunc

	mu      sync.Mutex
	start   time.Time
	waited  time.Duration
	waitAt  time.Time // zero unless waiting
	timer   *time.Timer
	stopped bool

	demoteTimer *time.Timer
	demoted     bool
	tid         int // the guest's thread while pinned, else 0
}

// startRunClock starts measuring; stop it when the call ends.
func startRunClock(budget time.Duration, kill context.CancelCauseFunc) *runClock {
	c := &runClock{budget: budget, kill: kill, start: time.Now()}
	c.mu.Lock()
	c.timer = time.AfterFunc(budget, c.check)
	c.demoteTimer = time.AfterFunc(demoteAfter, c.checkDemote)
	c.mu.Unlock()
	return c
}

// run runs the guest's part of the call, f, pinned to a thread of its own
// (see demoteAfter), on a goroutine that ends with it, so that a demoted
// thread is never reused. A panic in f is raised again in the caller.
func (c *runClock) run(f func() error) error {
	if c == nil {
		return f()
	}
	type outcome struct {
		err      error
		panicked any
	}
	done := make(chan outcome, 1)
	go func() {
		stack.Reserve() // a fresh goroutine per guest run
		var o outcome
		defer func() {
			if p := recover(); p != nil {
				o.panicked = p
			}
			c.unpin()
			done <- o
		}()
		c.pin()
		o.err = f()
	}()
	o := <-done
	if o.panicked != nil {
		panic(o.panicked)
	}
	return o.err
}

// pin locks the calling goroutine to its thread and, if the call is
// demoted, lowers the thread's priority.
func (c *runClock) pin() {
	runtime.LockOSThread()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tid = threadID()
	if c.demoted {
		lowerPriority(c.tid)
	}
}

// unpin lets the thread go back to Go, unless it was demoted: then it
// stays locked, and ends with the goroutine.
func (c *runClock) unpin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.demoted || c.tid == 0 {
		return
	}
	c.tid = 0
	runtime.UnlockOSThread()
}

func (c *runClock) checkDemote() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.demoted || !c.waitAt.IsZero() {
		return // resumed re-arms it
	}
	if left := demoteAfter - c.ran(time.Now()); left > 0 {
		c.demoteTimer.Reset(left)
		return
	}
	c.demoted = true
	if c.tid != 0 {
		lowerPriority(c.tid)
	}
}

// ran is the run time so far; c.mu held.
func (c *runClock) ran(now time.Time) time.Duration {
	waited := c.waited
	if !c.waitAt.IsZero() {
		waited += now.Sub(c.waitAt)
	}
	return now.Sub(c.start) - waited
}

func (c *runClock) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	if !c.waitAt.IsZero() {
		return // resumed re-arms the timer
	}
	if left := c.budget - c.ran(time.Now()); left > 0 {
		c.timer.Reset(left)
		return
	}
	c.kill(ErrRunBudget)
}

// waiting stops the clock while the guest waits for a person, and lets
// its thread go meanwhile (unless demoted).
func (c *runClock) waiting() {
	if c == nil {
		return
	}
	c.unpin()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitAt.IsZero() {
		c.waitAt = time.Now()
	}
}

// resumed starts the clock again, on a pinned thread.
func (c *runClock) resumed() {
	if c == nil {
		return
	}
	c.pin()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitAt.IsZero() || c.stopped {
		return
	}
	now := time.Now()
	c.waited += now.Sub(c.waitAt)
	c.waitAt = time.Time{}
	c.timer.Reset(max(c.budget-c.ran(now), 0))
	if !c.demoted {
		c.demoteTimer.Reset(max(demoteAfter-c.ran(now), 0))
	}
}

func (c *runClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.timer.Stop()
	c.demoteTimer.Stop()
}
