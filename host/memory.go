//go:build linux

package host

import (
	"sync"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory is one instance's linear memory (experimental.LinearMemory).
type mmapMemory struct {
	budget *memBudget
	max    uint64

	mu   sync.Mutex
	buf  []byte // the whole reservation, len max; nil until first use
	size uint64 // bytes in use (and counted against the budget)
}

// allocator returns a wazero memory allocator that records the memory it
// makes in *out, so that the instance can unmap it once closed.
func (b *memBudget) allocator(out **mmapMemory) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		m := &mmapMemory{budget: b, max: max}
		*out = m
		return m
	})
}

// Reallocate implements experimental.LinearMemory: it hands out more of the
// reservation, in place. nil (memory.grow fails) past the cap or budget.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > m.max {
		return nil
	}
	if m.buf == nil {
		buf, err := syscall.Mmap(-1, 0, int(max(m.max, 1)), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return nil
		}
		m.buf = buf
	}
	if size > m.size {
		// The first allocation (instantiation) was checked before it
		// started; only growth is refused here.
		if grow := int64(size - m.size); m.size == 0 {
			m.budget.used.Add(grow)
		} else if !m.budget.take(grow) {
			return nil
		}
		m.size = size
	}
	return m.buf[:size]
}

// Free implements experimental.LinearMemory: wazero calls it when the
// module closes. The pages go back to the system now; the mapping itself
// stays until unmap, since a closed module may still be unwinding a call.
func (m *mmapMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf != nil && m.size > 0 {
		_ = syscall.Madvise(m.buf[:m.size], syscall.MADV_DONTNEED)
	}
	m.budget.give(int64(m.size))
	m.size = 0
}

// unmap releases the reservation. Only for a closed instance that runs no
// call.
func (m *mmapMemory) unmap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.size > 0 {
		m.budget.give(int64(m.size))
		m.size = 0
	}
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}

// defaultMemoryBudget is half the machine's memory, or none when that
// cannot be read.
func defaultMemoryBudget() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit) / 2
}
