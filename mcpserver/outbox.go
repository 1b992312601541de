package mcpserver

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// How store events reach clients (docs/protocol.md, "Delivery"):
//
//   - One goroutine (dispatch) reads the store's events in order and files
//     each into the outbox of the session that owns the task. It never
//     waits on a client, and it asks the store about a task at most once
//     (taskInfo caches who owns it): no store round trip per log line.
//   - Each session has its own bounded outbox and its own writer, so a
//     client that reads slowly delays only itself. Log lines beyond the
//     bound are dropped and counted (a "dropped" message follows when there
//     is room again); under a backlog, progress is coalesced to the latest
//     report per task;
//     status changes are never dropped. Lines below the session's log level
//     are not queued at all.
//   - A task's terminal status event passes through the same outbox after
//     its logs and progress, and the call's result is held until it has
//     (taskInfo.flushed): every notification of a call reaches the client
//     before its result, over stdio and on the request's own HTTP stream.

// Outbox bounds, per session.
const (
	maxQueuedLogs     = 256
	maxQueuedLogBytes = 1 << 20
	// coalesceAfter is the backlog from which a progress report replaces
	// the one of the same task still queued: a client that keeps up sees
	// every report; one that falls behind sees the latest.
	coalesceAfter = 16
	// flushWait bounds how long a finished call's result waits for its
	// notifications when the terminal event never comes through (a lost
	// Redis subscription): a late result beats none.
	flushWait = 5 * time.Second
	// pingWait bounds the ping that makes sure a stdio client handled a
	// call's progress before its result (awaitFlushed); clients must
	// answer pings promptly.
	pingWait = 2 * time.Second
	// infoRetention is how long a finished task's routing entry is kept
	// for stragglers (a tasks/result after the end) before it is dropped.
	infoRetention = time.Minute
)

// taskInfo is what routing an event needs to know about a task, learnt once.
type taskInfo struct {
	id            string
	owner         string
	tool          string
	progressToken json.RawMessage
	// followKind says whether status events need the record: tasks send
	// status notifications, and a detachable call may become a task.
	followKind bool

	mu   sync.Mutex
	kind tasks.Kind
	ctx  context.Context // where notifications go: the call's request, else the session

	progressed atomic.Bool // a progress notification of it was written

	flushed   chan struct{} // closed once the terminal event went through the outbox
	flushOnce sync.Once
	doneAt    time.Time // when flushed; zero while live (under Server.infoMu)
	expires   time.Time // when the store forgets the task
}

func (ti *taskInfo) markFlushed() { ti.flushOnce.Do(func() { close(ti.flushed) }) }

func (ti *taskInfo) notifyCtx(fallback context.Context) context.Context {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if ti.ctx == nil || ti.ctx.Err() != nil {
		return fallback
	}
	return ti.ctx
}

func newTaskInfo(t *tasks.Task, ctx context.Context) *taskInfo {
	return &taskInfo{
		id:            t.ID,
		owner:         t.Owner,
		tool:          t.Tool,
		progressToken: t.ProgressToken,
		followKind:    t.Kind == tasks.KindTask || t.Detachable,
		kind:          t.Kind,
		ctx:           ctx,
		flushed:       make(chan struct{}),
		expires:       t.ExpiresAt(),
	}
}

// track registers a task this front end created; ctx is where its
// notifications go while its request is open.
func (s *Server) track(t *tasks.Task, ctx context.Context) *taskInfo {
	ti := newTaskInfo(t, ctx)
	s.infoMu.Lock()
	s.infos[t.ID] = ti
	s.infoMu.Unlock()
	return ti
}

// info returns the routing entry of task id, reading the record once for a
// task this process did not create (another front end's, or one created
// before a restart). nil: the task is gone.
func (s *Server) info(ctx context.Context, id string) *taskInfo {
	s.infoMu.Lock()
	ti := s.infos[id]
	s.infoMu.Unlock()
	if ti != nil {
		return ti
	}
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return nil
	}
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	if ti = s.infos[id]; ti == nil {
		ti = newTaskInfo(t, nil)
		if t.Status.Terminal() {
			// Finished before we heard of it: nothing of it is queued
			// here for a result to wait on.
			ti.markFlushed()
			ti.doneAt = time.Now()
		}
		s.infos[id] = ti
	}
	return ti
}

// finished marks ti done and forgets entries done long enough ago.
func (s *Server) finished(ti *taskInfo) {
	ti.markFlushed()
	now := time.Now()
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	ti.doneAt = now
	if now.Before(s.nextSweep) {
		return
	}
	s.nextSweep = now.Add(infoRetention)
	for id, e := range s.infos {
		if (!e.doneAt.IsZero() && now.Sub(e.doneAt) > infoRetention) || now.After(e.expires) {
			delete(s.infos, id)
		}
	}
}

// awaitFlushed holds a finished call's result until its notifications are
// out (see the top of this file).
func (s *Server) awaitFlushed(ctx context.Context, sess *session, id string) {
	s.infoMu.Lock()
	ti := s.infos[id]
	s.infoMu.Unlock()
	if ti == nil {
		return // not ours to deliver: nothing queued for it here
	}
	ctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	select {
	case <-ti.flushed:
	case <-ctx.Done():
		return
	case <-sess.ctx.Done():
		return
	}
	if sess.conn != nil && ti.progressed.Load() {
		ctx, cancel := context.WithTimeout(ctx, pingWait)
		defer cancel()
		// The TypeScript SDK client handles a notification a microtask
		// later than a response, and forgets a call's progress handler when
		// its response comes: progress read in the same chunk as the result
		// is lost ("unknown token"). A ping answered means the client has
		// handled everything written before it. Stdio only: over HTTP the
		// client reads events one at a time.
		_ = sess.ss.Ping(ctx, nil)
	}
}

// dispatch files store events into the outboxes of this process's
// sessions, in the order the store sent them.
func (s *Server) dispatch(ctx context.Context, events <-chan tasks.Event) {
	for e := range events {
		if e.TaskID == "" {
			continue
		}
		if e.Kind == tasks.EventResync {
			continue // waiters re-read; an event lost is a notification lost
		}
		ti := s.info(ctx, e.TaskID)
		if ti == nil {
			continue // expired or gone; nobody to tell
		}
		sess := s.sessionOf(ti.owner)
		terminal := e.Kind == tasks.EventStatus && e.Status.Terminal()
		if sess == nil {
			if terminal {
				s.finished(ti) // served by another front end, or its client left
			}
			continue
		}
		sess.out.add(outItem{kind: e.Kind, task: ti, status: e.Status, data: e.Data})
	}
}

type outItem struct {
	kind   tasks.EventKind
	task   *taskInfo
	status tasks.Status
	data   json.RawMessage
}

// outbox is one session's queue of notifications, drained by its own
// writer goroutine.
type outbox struct {
	sess *session
	wake chan struct{}

	mu       sync.Mutex
	items    []outItem
	writing  bool // run is writing an item it took
	logs     int  // log items queued
	logBytes int
	dropped  map[*taskInfo]int // log lines dropped, per task, not yet reported
}

func newOutbox(sess *session) *outbox {
	return &outbox{sess: sess, wake: make(chan struct{}, 1), dropped: make(map[*taskInfo]int)}
}

// add queues one event, applying the bounds; it never blocks.
func (o *outbox) add(it outItem) {
	if it.kind == tasks.EventLog && !o.sess.wantsLog(it.data) {
		return
	}
	o.mu.Lock()
	switch it.kind {
	case tasks.EventLog:
		if o.logs >= maxQueuedLogs || o.logBytes+len(it.data) > maxQueuedLogBytes {
			o.dropped[it.task]++
			o.mu.Unlock()
			return
		}
		o.logs++
		o.logBytes += len(it.data)
	case tasks.EventStatus:
		if it.status.Terminal() && !it.task.followKind && len(o.items) == 0 && !o.writing && o.dropped[it.task] == 0 {
			// Everything before it is written: a plain call's result may
			// go now, without a hop through run.
			o.mu.Unlock()
			o.sess.s.finished(it.task)
			return
		}
	case tasks.EventProgress:
		if len(o.items) < coalesceAfter {
			break
		}
		for i := range o.items {
			if o.items[i].kind == tasks.EventProgress && o.items[i].task == it.task {
				o.items[i].data = it.data // only the latest report matters
				o.mu.Unlock()
				return
			}
		}
	}
	o.items = append(o.items, it)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// next pops the oldest item; ok is false when the outbox is empty.
func (o *outbox) next() (it outItem, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) == 0 {
		return outItem{}, false
	}
	it = o.items[0]
	o.items[0] = outItem{}
	o.items = o.items[1:]
	o.writing = true
	if it.kind == tasks.EventLog {
		o.logs--
		o.logBytes -= len(it.data)
	}
	return it, true
}

// takeDropped returns and resets the count of dropped lines of task ti, or
// of every task when ti is nil and the queue has room again.
func (o *outbox) takeDropped(ti *taskInfo) map[*taskInfo]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.dropped) == 0 {
		return nil
	}
	out := map[*taskInfo]int{}
	if ti != nil {
		if n := o.dropped[ti]; n > 0 {
			out[ti] = n
			delete(o.dropped, ti)
		}
		return out
	}
	if o.logs > maxQueuedLogs/2 {
		return nil // no room yet
	}
	out, o.dropped = o.dropped, make(map[*taskInfo]int)
	return out
}

// backlog reports the log lines queued and those dropped and not yet
// reported.
func (o *outbox) backlog() (logs, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.dropped {
		dropped += n
	}
	return o.logs, dropped
}

// run writes the outbox to the client until the session ends.
func (o *outbox) run(ctx context.Context) {
	for {
		it, ok := o.next()
		if !ok {
			select {
			case <-o.wake:
				continue
			case <-ctx.Done():
				o.abandon()
				return
			}
		}
		o.write(it)
		for ti, n := range o.takeDropped(nil) {
			o.sess.reportDropped(ti, n)
		}
		o.mu.Lock()
		o.writing = false
		o.mu.Unlock()
	}
}

// abandon releases every call waiting for notifications that will never be
// written: the client is gone.
func (o *outbox) abandon() {
	o.mu.Lock()
	items := o.items
	o.items = nil
	o.mu.Unlock()
	for _, it := range items {
		if it.kind == tasks.EventStatus && it.status.Terminal() {
			o.sess.s.finished(it.task)
		}
	}
}

func (o *outbox) write(it outItem) {
	sess := o.sess
	switch it.kind {
	case tasks.EventLog:
		sess.log(it.task, it.data)
	case tasks.EventProgress:
		sess.progress(it.task, it.data)
	case tasks.EventStatus:
		if it.task.followKind {
			sess.s.statusChanged(sess, it.task, it.status)
		}
		if it.status.Terminal() {
			for ti, n := range o.takeDropped(it.task) {
				sess.reportDropped(ti, n)
			}
			sess.s.finished(it.task)
		}
	}
}

// statusChanged reads the record once per status change of a task (never
// per log line) to notify the client and push its questions.
func (s *Server) statusChanged(sess *session, ti *taskInfo, status tasks.Status) {
	t, err := s.store.Get(sess.ctx, ti.id)
	if err != nil {
		return
	}
	if t.Kind == tasks.KindTask {
		ti.mu.Lock()
		ti.kind = tasks.KindTask
		ti.ctx = nil // detached, or a task all along: the session's stream from now on
		ti.mu.Unlock()
	}
	s.onStatus(sess, t, status)
}

// logLevels orders MCP's log levels, lowest first.
var logLevels = map[mcp.LoggingLevel]int{
	"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7,
}

// setLogLevel records what logging/setLevel asked for, and makes the
// session due to be kept again (keepSession) so that a front end taking
// it over knows the new level.
func (sess *session) setLogLevel(level mcp.LoggingLevel) {
	sess.mu.Lock()
	sess.logLevel = level
	sess.saved = time.Time{}
	sess.mu.Unlock()
}

// logFloor is the client's log level as a task records it (the lines its
// guest may publish): muted before logging/setLevel and above error.
func (sess *session) logFloor() (muted bool, floor abi.LogLevel) {
	sess.mu.Lock()
	level, set := logLevels[sess.logLevel]
	sess.mu.Unlock()
	if !set || level >= len(mcpLogLevels) {
		return true, 0
	}
	return false, abi.LogLevel(level)
}

// wantsLog reports whether the client's log level lets a guest log line
// (tasks.LogData) through; before logging/setLevel, none goes (as go-sdk).
func (sess *session) wantsLog(data json.RawMessage) bool {
	sess.mu.Lock()
	min, set := logLevels[sess.logLevel]
	sess.mu.Unlock()
	if !set {
		return false
	}
	var l tasks.LogData
	if json.Unmarshal(data, &l) != nil {
		return false
	}
	return logLevels[mcpLevel(l.Level)] >= min
}

// reportDropped tells the client how many log lines of a task it missed.
func (sess *session) reportDropped(ti *taskInfo, n int) {
	err := sess.ss.Log(ti.notifyCtx(sess.ctx), &mcp.LoggingMessageParams{
		Level:  "warning",
		Logger: "wasmhost",
		Data:   map[string]any{"dropped": n, "message": "log messages dropped: the client reads them slower than the tool writes them"},
		Meta:   ti.relatedMeta(),
	})
	if err != nil {
		sess.s.logger.Warn("could not send dropped-log notice", "task", ti.id, "error", err)
	}
}

// relatedMeta ties a notification to the task, when the client knows it as
// one (SEP-1686).
func (ti *taskInfo) relatedMeta() mcp.Meta {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if ti.kind != tasks.KindTask {
		return nil
	}
	return mcp.Meta{metaRelatedTask: relatedTask(ti.id)}
}
