//go:build linux

package host

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestGuestMemoryHugePages: a guest's memory is eligible for transparent
// huge pages wherever the system gives them on request.
func TestGuestMemoryHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skipf("this system gives no transparent huge pages (%q, %v)", mode, err)
	}
	var m *mmapMemory
	budget := &memBudget{limit: 64 << 20}
	lm := budget.allocator(&m, nil).Allocate(0, 16<<20)
	buf := lm.Reallocate(8 << 20)
	defer lm.Free()
	clear(buf)
	addr := uint64(uintptr(unsafe.Pointer(&buf[0])))
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	inside := false
	for _, line := range strings.Split(string(smaps), "\n") {
		var lo, hi uint64
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			inside = lo <= addr && addr < hi
			continue
		}
		if inside && strings.HasPrefix(line, "THPeligible:") {
			if strings.TrimSpace(strings.TrimPrefix(line, "THPeligible:")) != "1" {
				t.Fatalf("guest memory at %#x: %s", addr, line)
			}
			return
		}
	}
	t.Fatalf("guest memory at %#x not found in /proc/self/smaps", addr)
}
