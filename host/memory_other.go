//go:build !linux

package host

import (
	"errors"

	"github.com/tetratelabs/wazero/experimental"
)

// Elsewhere than Linux guest memory is wazero's default (a Go slice); the
// budget is checked when an instance starts, but growth is not counted.

type mmapMemory struct{}

func (m *mmapMemory) unmap() {}

func (m *mmapMemory) revert() bool { return false }

type memImage struct{}

func newMemImage([]byte) (*memImage, error) { return nil, errNoImage }

func (*memImage) close() {}

var errNoImage = errors.New("no copy-on-write snapshots on this system")

func (b *memBudget) allocator(**mmapMemory, *memImage) experimental.MemoryAllocator { return nil }

func defaultMemoryBudget() int64 { return 0 }

func (m *mmapMemory) imageMapped() bool { return false }
