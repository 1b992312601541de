package logsink

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuck is an output nobody reads: every write blocks until released.
type stuck struct {
	release chan struct{}
	mu      sync.Mutex
	got     bytes.Buffer
}

func (s *stuck) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

func TestWriteNeverBlocks(t *testing.T) {
	out := &stuck{release: make(chan struct{})}
	w := New(out, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 {
			w.Write([]byte("a line of log output\n"))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Write blocked on an output nobody reads")
	}
	close(out.release)
	if err := w.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
	got := out.got.String()
	if !strings.Contains(got, "a line of log output\n") || !strings.Contains(got, "dropped") {
		t.Fatalf("output = %.200q", got)
	}
	if n := strings.Count(got, "a line of log output\n"); n >= 10_000 {
		t.Fatalf("all %d lines kept, though the buffer holds 1 KiB", n)
	}
	if n, _ := w.Dropped(); n != 0 {
		t.Fatalf("%d drops not reported", n)
	}
	for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if line != "a line of log output" && !strings.Contains(line, "dropped") {
			t.Fatalf("a line was cut: %q", line)
		}
	}
}

func TestCloseGivesUp(t *testing.T) {
	out := &stuck{release: make(chan struct{})}
	defer close(out.release)
	w := New(out, 0)
	w.Write([]byte("x\n"))
	if err := w.Close(10 * time.Millisecond); err == nil {
		t.Fatal("Close returned nil with the output stuck")
	}
}
