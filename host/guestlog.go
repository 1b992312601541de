package host

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/safetext"
)

// Budgets for what one call (one instance) may send to the host's log and,
// through its Env, to the client. Each is a token bucket: a burst, then a
// steady rate, so a long call that logs now and then is never cut off,
// while one that floods (13 MB/s of stderr, 200 000 notifications in 4 s
// were measured) costs a bounded amount. What is over budget is dropped and
// counted, and a marker line says how much. See docs/security.md.
const (
	logBurstLines   = 1000
	logLinesPerSec  = 20
	logBurstBytes   = 1 << 20
	logBytesPerSec  = 64 << 10
	notifyBurst     = 500
	notifiesPerSec  = 20
	trapLineMaxSize = 512
)

// bucket is a token bucket.
type bucket struct {
	tokens, burst, rate float64
	last                time.Time
}

func newBucket(burst, rate float64) bucket {
	return bucket{tokens: burst, burst: burst, rate: rate, last: time.Now()}
}

func (b *bucket) take(n float64) bool {
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// guestOutput is what one instance may still log and notify, shared by its
// stdout, stderr and the log and progress imports.
type guestOutput struct {
	log hclog.Logger

	mu                        sync.Mutex
	lines, bytes, notes       bucket
	droppedLines, droppedSize int
	droppedNotes              int
}

func newGuestOutput(log hclog.Logger) *guestOutput {
	return &guestOutput{
		log:   log,
		lines: newBucket(logBurstLines, logLinesPerSec),
		bytes: newBucket(logBurstBytes, logBytesPerSec),
		notes: newBucket(notifyBurst, notifiesPerSec),
	}
}

// admitLine reports whether a log line of n bytes is within budget, after
// reporting lines dropped before it.
func (o *guestOutput) admitLine(n int) bool {
	o.mu.Lock()
	ok := o.lines.take(1) && o.bytes.take(float64(n))
	var lines, size int
	if ok {
		lines, size = o.droppedLines, o.droppedSize
		o.droppedLines, o.droppedSize = 0, 0
	} else {
		o.droppedLines++
		o.droppedSize += n
	}
	o.mu.Unlock()
	if lines > 0 {
		o.log.Warn("guest log lines dropped: over the per-call budget", "dropped", lines, "bytes", size)
	}
	return ok
}

// admitNote reports whether a notification to the client is within
// budget; dropped is the number dropped before it, to report first.
func (o *guestOutput) admitNote() (ok bool, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.notes.take(1) {
		o.droppedNotes++
		return false, 0
	}
	dropped, o.droppedNotes = o.droppedNotes, 0
	return true, dropped
}

// flush reports what was dropped and not yet reported, to the log and,
// when env is not nil, to the client.
func (o *guestOutput) flush(env Env) {
	o.mu.Lock()
	lines, size, notes := o.droppedLines, o.droppedSize, o.droppedNotes
	o.droppedLines, o.droppedSize, o.droppedNotes = 0, 0, 0
	o.mu.Unlock()
	if lines > 0 {
		o.log.Warn("guest log lines dropped: over the per-call budget", "dropped", lines, "bytes", size)
	}
	if notes > 0 {
		o.log.Warn("guest notifications dropped: over the per-call budget", "dropped", notes)
		if env != nil {
			env.Log(abi.LogWarning, droppedNotice(notes))
		}
	}
}

func droppedNotice(n int) string {
	return fmt.Sprintf("wasmhost: %d log and progress notifications from this tool dropped (over the per-call budget)", n)
}

// logLine writes one guest log line, escaped and within budget.
func (o *guestOutput) logLine(log hclog.Logger, level abi.LogLevel, msg string, args ...any) {
	if !o.admitLine(len(msg)) {
		return
	}
	msg = safetext.Line(msg)
	switch level {
	case abi.LogDebug:
		log.Debug(msg, args...)
	case abi.LogInfo, abi.LogNotice:
		log.Info(msg, args...)
	case abi.LogWarning:
		log.Warn(msg, args...)
	default:
		log.Error(msg, args...)
	}
}

// notify passes a log line or progress report to the client through env,
// within budget, saying first how many were dropped before it.
func (o *guestOutput) notify(env Env, send func()) {
	ok, dropped := o.admitNote()
	if !ok {
		return
	}
	if dropped > 0 {
		env.Log(abi.LogWarning, droppedNotice(dropped))
	}
	send()
}
