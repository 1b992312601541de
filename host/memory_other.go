//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

// Elsewhere than Linux guest memory is wazero's default (a Go slice); the
// budget is checked when an instance starts, but growth is not counted.

type mmapMemory struct{}

func (m *mmapMemory) unmap() {}

func (b *memBudget) allocator(**mmapMemory) experimental.MemoryAllocator { return nil }

func defaultMemoryBudget() int64 { return 0 }
