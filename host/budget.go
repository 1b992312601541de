package host

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Guest linear memory lives in its own anonymous mapping, reserved at the
// instance's cap (MemoryLimitMiB) and never moved: growing it maps nothing
// new and copies nothing, so a guest costs the host the pages it touched,
// at most its cap (wazero's default grows a Go slice by append, which
// holds old and new copies at once and leaves them to the GC). Closing the
// instance gives the pages back to the system at once.
//
// Every byte of guest memory counts against the runtime's memory budget
// (Options.MemoryBudgetMiB): a new instance that would not fit is refused
// with ErrMemoryBudget, and a guest that would grow past it sees
// memory.grow fail (Go guests then die with "out of memory").

// ErrMemoryBudget is returned (wrapped) when starting an instance would
// take the guests' memory past Options.MemoryBudgetMiB.
var ErrMemoryBudget = errors.New("memory budget for guests used up")

// memBudget counts the bytes of guest linear memory in use.
type memBudget struct {
	limit int64 // bytes; 0 means none
	used  atomic.Int64
}

// take reserves n bytes, unless that would pass the limit.
func (b *memBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if b.limit > 0 && used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *memBudget) give(n int64) { b.used.Add(-n) }

// check says whether n more bytes would fit, with a clear error if not.
func (b *memBudget) check(n int64) error {
	if b.limit > 0 && b.used.Load()+n > b.limit {
		return fmt.Errorf("%w: %d MiB of %d MiB held by running and idle guests; retry when calls finish, or raise the budget (--memory-budget)",
			ErrMemoryBudget, b.used.Load()>>20, b.limit>>20)
	}
	return nil
}
