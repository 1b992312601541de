package tasks

import (
	"context"
	"encoding/json"

	"github.com/wasmhost/wasmhost/abi"
)

// Store keeps task records and carries everything that happens to them
// between processes. Every method that changes a task is one atomic step:
// when an answer, a cancellation, a failure and a completion race, exactly
// one wins and the others get ErrTerminal, ErrNotPending or
// ErrIllegalTransition.
//
// Nothing waits by polling: AwaitAnswers blocks on the store's own
// primitive (a channel, a Redis blocking pop) and Watch pushes events.
type Store interface {
	// Create stores a new task; its Status must be Working.
	Create(ctx context.Context, t *Task) error
	// Get returns a copy of the task, or ErrNotFound (also once expired).
	Get(ctx context.Context, id string) (*Task, error)
	// List returns KindTask tasks of owner, newest first, a page at a time.
	// An empty cursor starts at the beginning; an empty next cursor ends.
	List(ctx context.Context, owner, cursor string, limit int) (page []*Task, next string, err error)

	// RequestInput adds questions and moves the task to InputRequired. A
	// key that is pending, or answered with the answer not yet consumed
	// (AppendJournal), may be asked again only with an equal request, and
	// that changes nothing: a replaying run asks its questions again under
	// the same keys. Once consumed a key may be asked afresh.
	RequestInput(ctx context.Context, id string, reqs map[string]abi.InputRequest) error
	// Answer records the response to one pending question. The answered
	// key stops being pending; when none remain the task is Working again,
	// and queued again if its run was parked (Park).
	Answer(ctx context.Context, id, key string, resp abi.InputResponse) error
	// AwaitAnswers blocks until every key is answered and returns the
	// responses, or fails when the task ends (ErrTerminal) or ctx does. It
	// does not take the answers: AppendJournal consumes them once the run
	// has recorded them.
	AwaitAnswers(ctx context.Context, id string, keys []string) (map[string]abi.InputResponse, error)

	// StartRun begins a new run of the task's guest: it increments the
	// fence token (every later run holds a larger one, and the calls of
	// older runs are refused with ErrFenced), pins module if none is
	// pinned yet, keeps pending questions and unconsumed answers (the
	// replay asks the same keys again), sets the task Working unless
	// questions are pending, clears Park's mark and returns the journal.
	// A finished task is refused (ErrTerminal).
	StartRun(ctx context.Context, id, module string) (Run, error)
	// AppendJournal appends entries to the journal of run token and drops
	// the answers to consume, in one atomic step. ErrFenced if token is not
	// the task's current run; ErrJournalFull if the journal would outgrow
	// the store's bound (DefaultMaxJournalBytes unless configured); either
	// way nothing changes.
	AppendJournal(ctx context.Context, id string, token int64, entries [][]byte, consume []string) error
	// Park records that run token gave its guest up while it waited for
	// input. When the last pending question is answered (at once, if none
	// is pending) the store queues the task again, so that some worker
	// resumes it by replay. ErrFenced if token is not the current run.
	Park(ctx context.Context, id string, token int64) error

	// Detach turns a Detachable KindCall into a KindTask: the client
	// stops waiting for the call and follows it as a task from now on.
	Detach(ctx context.Context, id string) error

	// Complete ends the task with a CallToolResult. token is the run
	// recording it, refused with ErrFenced unless current, or 0 from
	// outside any run (the front end).
	Complete(ctx context.Context, id string, token int64, result json.RawMessage) error
	// Fail ends the task with a protocol-level error message; token as for
	// Complete.
	Fail(ctx context.Context, id string, token int64, message string) error
	// Cancel ends the task as cancelled and wakes anything waiting on it.
	Cancel(ctx context.Context, id, message string) error

	// Publish sends a transient event (log, progress) about a task to every
	// watcher; nothing is stored.
	Publish(ctx context.Context, e Event) error
	// Watch delivers every event from any process until ctx ends. The
	// channel is closed when the watch stops.
	Watch(ctx context.Context) (<-chan Event, error)

	// Queue returns the work queue that shares this store's backend.
	Queue() Queue
	Close() error
}

// Run is one run of a task's guest (StartRun).
type Run struct {
	// Token fences the run: the store refuses the journal writes, parks
	// and outcomes of any run but the latest.
	Token int64
	// Journal holds the entries recorded by earlier runs, oldest first.
	// The slices are the caller's.
	Journal [][]byte
	// Module is the module digest pinned by the first run that named one
	// ("" before).
	Module string
}

// DefaultMaxJournalBytes bounds a task's journal (the sum of its entries'
// lengths) unless the store is configured otherwise: 8 MiB, far above what
// a guest asking people questions records (a few hundred bytes a question),
// and small enough that a guest looping on host calls fails its task
// instead of filling the store.
const DefaultMaxJournalBytes = 8 << 20

// EventKind says what an Event reports.
type EventKind string

const (
	// EventStatus: the task's status or pending input requests changed;
	// Get it for the details.
	EventStatus EventKind = "status"
	// EventLog carries a guest log line (Data is abi-level JSON:
	// {"level":…, "message":…}).
	EventLog EventKind = "log"
	// EventProgress carries an abi.Progress as Data.
	EventProgress EventKind = "progress"
	// EventResync says events may have been lost (a reconnect); every
	// watcher should re-read whatever it waits on.
	EventResync EventKind = "resync"
)

// Event is something that happened to a task.
type Event struct {
	Kind   EventKind       `json:"kind"`
	TaskID string          `json:"taskId,omitempty"`
	Status Status          `json:"status,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// LogData is the Data of an EventLog.
type LogData struct {
	Level   abi.LogLevel `json:"level"`
	Message string       `json:"message"`
}

// Queue hands task ids to workers. A delivery that is never acknowledged
// (its worker died) is handed to another worker.
type Queue interface {
	Enqueue(ctx context.Context, taskID string) error
	// Next blocks until a task is available or ctx ends.
	Next(ctx context.Context) (Delivery, error)
}

// Delivery is one task handed to one worker.
type Delivery interface {
	TaskID() string
	// Redelivered reports that an earlier worker took this task and did
	// not finish it.
	Redelivered() bool
	// Ack marks the work done; it is idempotent.
	Ack(ctx context.Context) error
	// Drop gives the entry up because another run of the task owns it
	// (ErrFenced): acknowledged if this process still holds it, left to
	// the worker that took it over otherwise. Idempotent.
	Drop(ctx context.Context) error
}
