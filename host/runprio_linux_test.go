package host

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// threadNice reads thread tid's nice value from /proc.
func threadNice(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var nice int
	fmt.Sscan(fields[16], &nice) // field 19, counted after pid and comm
	return nice
}

// TestLongCallsAreDemoted: a call that has run demoteAfter runs on, at a
// lower priority, on a thread of its own; a short one keeps its priority,
// and its thread goes back to Go.
func TestLongCallsAreDemoted(t *testing.T) {
	// Every thread Go keeps has the process's nice value (a demoted one is
	// never given back): the test may run under nice itself.
	base := threadNice(t, threadID())
	_, kill := context.WithCancelCause(context.Background())
	short := startRunClock(time.Hour, kill)
	var shortNice int
	short.run(func() error { shortNice = threadNice(t, threadID()); return nil })
	short.stop()
	if shortNice != base || short.tid != 0 {
		t.Errorf("a short call: nice %d (the process's: %d), still pinned to %d", shortNice, base, short.tid)
	}

	long := startRunClock(time.Hour, kill)
	defer long.stop()
	var before, after int
	start := time.Now()
	long.run(func() error {
		tid := threadID()
		before = threadNice(t, tid)
		for { // a guest computing until the clock demotes it
			long.mu.Lock()
			demoted := long.demoted
			long.mu.Unlock()
			if demoted {
				break
			}
			if time.Since(start) > time.Minute {
				return nil
			}
		}
		after = threadNice(t, tid)
		return nil
	})
	if want := min(19, base+demotedNice); before != base || after != want {
		t.Fatalf("a long call: nice %d, then %d after %v; want %d, then %d", before, after, time.Since(start), base, want)
	}
	if time.Since(start) < demoteAfter {
		t.Errorf("demoted after %v, before demoteAfter", time.Since(start))
	}
}
