package host

import (
	"context"
	"sync"
	"time"
)

// DefaultRunBudget is the run time a call may use when Options.RunBudget
// is 0. Run time counts while the guest runs (computing, sleeping, in a
// host function), not while it waits for a person to answer: a tool that
// asks a question and waits an hour has used none of it, while a tool in
// an endless loop ends after this much instead of the 30 minutes of the
// wall-clock deadline.
const DefaultRunBudget = 2 * time.Minute

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
}

// startRunClock starts measuring; stop it when the call ends.
func startRunClock(budget time.Duration, kill context.CancelCauseFunc) *runClock {
	c := &runClock{budget: budget, kill: kill, start: time.Now()}
	c.mu.Lock()
	c.timer = time.AfterFunc(budget, c.check)
	c.mu.Unlock()
	return c
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

// waiting stops the clock while the guest waits for a person.
func (c *runClock) waiting() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitAt.IsZero() {
		c.waitAt = time.Now()
	}
}

// resumed starts the clock again.
func (c *runClock) resumed() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitAt.IsZero() || c.stopped {
		return
	}
	now := time.Now()
	c.waited += now.Sub(c.waitAt)
	c.waitAt = time.Time{}
	c.timer.Reset(max(c.budget-c.ran(now), 0))
}

func (c *runClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.timer.Stop()
}
