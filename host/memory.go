//go:build linux

package host

import (
	"sync"
	"syscall"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// mmapMemory is one instance's linear memory (experimental.LinearMemory).
type mmapMemory struct {
	budget *memBudget
	max    uint64

	image  *memImage // mapped copy-on-write at the bottom, or nil
	imaged bool      // image is mapped

	mu   sync.Mutex
	buf  []byte // the whole reservation, len max; nil until first use
	size uint64 // bytes in use (and counted against the budget)
}

// memImage is a snapshot's memory in a memfd, mapped privately (copy on
// write) under the instances made from it: an instance costs the host only
// the pages its calls wrote, and restoring it drops those (revert).
type memImage struct {
	fd   int
	size uint64
}

// newMemImage copies b into a new memfd.
func newMemImage(b []byte) (*memImage, error) {
	fd, err := unix.MemfdCreate("wasmhost-snapshot", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	for off := 0; off < len(b); {
		n, err := syscall.Pwrite(fd, b[off:], int64(off))
		if err != nil {
			syscall.Close(fd)
			return nil, err
		}
		off += n
	}
	return &memImage{fd: fd, size: uint64(len(b))}, nil
}

// close closes the memfd; mappings made from it stay valid.
func (im *memImage) close() {
	if im != nil {
		syscall.Close(im.fd)
	}
}

// imageMapped reports whether the snapshot image is mapped here.
func (m *mmapMemory) imageMapped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.imaged
}

// revert drops every page written since the image was mapped, so that the
// memory below the image's size reads as the image again. It reports false
// when the image is not mapped here (the caller copies instead).
func (m *mmapMemory) revert() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.imaged || m.buf == nil {
		return false
	}
	return syscall.Madvise(m.buf[:m.image.size], syscall.MADV_DONTNEED) == nil
}

// allocator returns a wazero memory allocator that records the memory it
// makes in *out, so that the instance can unmap it once closed. image, if
// not nil, is mapped copy-on-write at the bottom of the memory.
func (b *memBudget) allocator(out **mmapMemory, image *memImage) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		m := &mmapMemory{budget: b, max: max, image: image}
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
		// Huge pages where the system gives them on request (the usual
		// "madvise" mode): a restore copies the guest's memory after every
		// call and a call walks much of it; in 4 KiB pages both spent
		// their time on TLB misses, which a VM pays twice over (a greet
		// call's guest run 63 -> 45 µs, the call inside serve 360 -> 277
		// µs: docs/performance.md). A guest's resident memory grows in
		// 2 MiB steps instead.
		_ = unix.Madvise(buf, unix.MADV_HUGEPAGE)
		if im := m.image; im != nil && im.size > 0 && im.size <= m.max {
			_, _, errno := syscall.Syscall6(syscall.SYS_MMAP, uintptr(unsafe.Pointer(&buf[0])), uintptr(im.size),
				syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_FIXED, uintptr(im.fd), 0)
			// On failure the reservation stays anonymous: restore copies.
			m.imaged = errno == 0
		}
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
