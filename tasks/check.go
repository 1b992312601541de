package tasks

import (
	"fmt"
	"time"
)

// checkNew validates a task handed to Store.Create; every store applies it.
func checkNew(t *Task) error {
	if t.ID == "" {
		return fmt.Errorf("task has no id")
	}
	if t.Status != Working {
		return fmt.Errorf("task %s: must be created working, not %q: %w", t.ID, t.Status, ErrIllegalTransition)
	}
	if t.TTL <= 0 {
		return fmt.Errorf("task %s: ttl must be positive, not %s", t.ID, t.TTL)
	}
	return nil
}

// expired reports whether t has outlived its TTL at now. A task expires at
// ExpiresAt exactly, so a store clock that stands still never sees a task
// that is both live and due.
func expired(t *Task, now time.Time) bool { return !now.Before(t.ExpiresAt()) }
