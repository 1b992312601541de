// Package logsink makes writing a log never block the writer: a Writer
// keeps a bounded buffer that one goroutine drains into the real output
// (stderr), and when the buffer is full it drops whole writes, counts them,
// and says how much it dropped once the output keeps up again.
//
// Why: a guest's log line is written while the guest is inside a host
// function, where it cannot be interrupted; if the process reading our
// stderr stops reading, a blocking write would hold the guest (and its
// deadline) forever. It owns only this buffering; it knows nothing of log
// formats or of where the lines come from.
package logsink

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultBuffer is the buffer size New uses for 0.
const DefaultBuffer = 1 << 20

// Writer is a non-blocking io.Writer. Each Write is kept whole or dropped
// whole, so lines are never cut. Close it to flush.
type Writer struct {
	out io.Writer
	max int

	mu      sync.Mutex
	buf     []byte
	dropped int // writes dropped since the last report
	bytes   int // their bytes
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

// New starts a Writer draining into out with a buffer of max bytes (0
// means DefaultBuffer).
func New(out io.Writer, max int) *Writer {
	if max <= 0 {
		max = DefaultBuffer
	}
	w := &Writer{out: out, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.drain()
	return w
}

// Write queues p, or drops it if the buffer has no room. It never blocks
// on the output and never fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed || len(w.buf)+len(p) > w.max {
		w.dropped++
		w.bytes += len(p)
		w.mu.Unlock()
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Dropped reports the writes and bytes dropped and not yet reported.
func (w *Writer) Dropped() (writes, bytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped, w.bytes
}

func (w *Writer) drain() {
	defer close(w.done)
	var spare []byte
	for {
		w.mu.Lock()
		buf, closed := w.buf, w.closed
		w.buf = spare[:0]
		if w.dropped > 0 {
			buf = fmt.Appendf(buf, "[logsink] %d log writes (%d bytes) dropped: the log output was not read fast enough\n", w.dropped, w.bytes)
			w.dropped, w.bytes = 0, 0
		}
		w.mu.Unlock()
		// buf is ours now, written or empty: it becomes the next spare.
		// (Keeping the old spare when buf was empty would hand writers the
		// buffer they had just been given back, while it is written.)
		spare = buf
		if len(buf) > 0 {
			w.out.Write(buf)
			continue
		}
		if closed {
			return
		}
		<-w.wake
	}
}

// Close stops taking writes and waits until the buffer is written or
// timeout passes (the output may never drain).
func (w *Writer) Close(timeout time.Duration) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("logsink: log output not drained after %v", timeout)
	}
}
