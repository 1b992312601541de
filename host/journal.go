package host

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/safetext"
)

// Durable suspension: a call whose Env is a Recorder keeps a journal of
// everything the guest learned from the host (answers, capability results,
// detach, clock and random readings), so that a run that lost its guest can
// be resumed in a fresh instance, in any process, by running the same export
// again and answering its host calls from the journal until it is used up.
// Guests are deterministic given those answers: WebAssembly runs one thread,
// and the instance starts from a state derived from the module alone (see
// startState). The entry encoding is in abi/README.md, "The journal".

// Recorder is implemented by an Env whose caller keeps a journal of the call,
// so that the call can be resumed by replay in another instance or process
// (durable suspension).
type Recorder interface {
	// Recorded returns the journal entries of earlier runs of this call,
	// oldest first. The host replays them before running live.
	Recorded() [][]byte
	// Record makes entries durable before it returns, appended after
	// everything recorded so far. consume names input keys whose answers
	// these entries record: the store drops those answers in the same
	// atomic step. An error stops the call (the guest never sees a result
	// that is not durable).
	Record(ctx context.Context, entries [][]byte, consume []string) error
	// Idempotent reports whether the tool may repeat an unfinished side
	// effect on replay.
	Idempotent() bool
}

// DefaultMaxJournalBytes bounds one call's journal when
// Options.MaxJournalBytes is 0.
const DefaultMaxJournalBytes = 8 << 20

// Kinds of journal entry.
const (
	kindClock  = "clock"
	kindRandom = "random"
	kindInput  = "input"
	kindElicit = "elicit"
	kindCap    = "cap"
	kindDetach = "detach"
	// kindAsk is a question the host put to a person while performing a
	// capability (may the plugin reach this host?): part of that call.
	kindAsk = "ask"
)

// journalEntry is one journal entry, encoded as JSON (abi/README.md, "The
// journal").
type journalEntry struct {
	Kind string `json:"k"`
	// Hash identifies the request (input batch, capability request), with
	// the plugin's secrets redacted, so that replay can tell a guest that
	// asks something else.
	Hash string `json:"h,omitempty"`
	// What names the host call for people: the keys asked, the capability
	// (an HTTP request as method and URL without its query).
	What string `json:"d,omitempty"`
	// Result is what the guest learned: the input responses, the
	// capability result, detach's answer.
	Result json.RawMessage `json:"r,omitempty"`
	// Secret names the secret a capability call read: its value is never
	// journalled, replay reads it from the grants again.
	Secret string `json:"s,omitempty"`
	// Started marks a side effect made durable before it is performed;
	// its result follows in the next entry.
	Started bool `json:"started,omitempty"`
	// Mono and Wall are clock readings, as zig-zag varint deltas from the
	// previous reading of the same clock in the journal (base64 in JSON).
	Mono []byte `json:"m,omitempty"`
	Wall []byte `json:"t,omitempty"`
	// Bytes is what random_get returned.
	Bytes []byte `json:"b,omitempty"`

	// mono and wall are Mono and Wall decoded: nanoseconds.
	mono, wall []int64
}

// describe names a host call for a divergence message.
func describe(kind, what string) string {
	switch kind {
	case kindCap:
		return "capability " + what
	case kindRandom:
		return "random_get of " + what
	case kindDetach:
		return "detach"
	case kindAsk:
		return "a question asked for a capability (" + what + ")"
	}
	return kind + " " + what
}

// clockBatchBytes is how many bytes of clock and random readings a call
// keeps in memory before making them durable on their own: a guest that
// reads the clock in a loop must not grow the host without bound.
const clockBatchBytes = 32 << 10

// journal is one call's journal: what earlier runs recorded, being
// replayed, and what this run records.
type journal struct {
	ctx  context.Context
	rec  Recorder
	caps *capabilities
	max  int // bytes, Options.MaxJournalBytes
	size int // bytes recorded so far, earlier runs included

	replay []journalEntry
	pos    int // next entry of replay
	calls  int // host calls the guest made (clock readings not counted)
	// monoQ and wallQ are the readings of the clock entries before the
	// next host call, still to be served.
	monoQ, wallQ []int64

	// chainMono and chainWall are the last clock readings in the journal:
	// new readings are recorded as deltas from them.
	chainMono, chainWall int64
	// The live monotonic clock reads monoBase plus the time since
	// monoStart: it starts at the instance's clock and continues from the
	// last reading replayed.
	monoBase  int64
	monoStart time.Time

	// batch holds clock and random entries not yet durable; curMono and
	// curWall the clock entry being filled.
	batch            []journalEntry
	curMono, curWall []byte
	batchBytes       int
}

func newJournal(ctx context.Context, rec Recorder, caps *capabilities, max int) (*journal, error) {
	j := &journal{ctx: ctx, rec: rec, caps: caps, max: max}
	recorded := rec.Recorded()
	j.replay = make([]journalEntry, len(recorded))
	for i, b := range recorded {
		j.size += len(b)
		e := &j.replay[i]
		if err := json.Unmarshal(b, e); err != nil || e.Kind == "" {
			return nil, tag(ErrReplayDiverged, fmt.Errorf("journal entry %d is not one this wasmhost understands", i+1))
		}
		if e.Kind != kindClock {
			continue
		}
		var ok bool
		if e.mono, ok = decodeDeltas(e.Mono, &j.chainMono); ok {
			e.wall, ok = decodeDeltas(e.Wall, &j.chainWall)
		}
		if !ok {
			return nil, tag(ErrReplayDiverged, fmt.Errorf("journal entry %d holds malformed clock readings", i+1))
		}
	}
	return j, nil
}

func decodeDeltas(b []byte, chain *int64) ([]int64, bool) {
	var out []int64
	for len(b) > 0 {
		d, n := binary.Varint(b)
		if n <= 0 {
			return nil, false
		}
		*chain += d
		out = append(out, *chain)
		b = b[n:]
	}
	return out, true
}

// startClock starts the live monotonic clock at the instance's.
func (j *journal) startClock(base int64) {
	j.monoBase, j.monoStart = base, time.Now()
}

// replaying reports whether the guest is still being answered from the
// journal. Nil-safe: a call without a journal never replays.
func (j *journal) replaying() bool {
	return j != nil && (j.pos < len(j.replay) || len(j.monoQ) > 0 || len(j.wallQ) > 0)
}

// nextClock serves the next recorded reading of one clock, if the guest is
// still before the next recorded host call.
func (j *journal) nextClock(q *[]int64) (int64, bool) {
	for len(*q) == 0 && j.pos < len(j.replay) && j.replay[j.pos].Kind == kindClock {
		e := &j.replay[j.pos]
		j.monoQ = append(j.monoQ, e.mono...)
		j.wallQ = append(j.wallQ, e.wall...)
		j.pos++
	}
	if len(*q) == 0 {
		return 0, false
	}
	v := (*q)[0]
	*q = (*q)[1:]
	return v, true
}

// mono is WASI's monotonic clock. Readings are lenient: served from the
// journal while there are recorded ones before the next host call, live
// (continuing from the last one served) otherwise, and recorded once the
// journal is used up.
func (j *journal) mono() int64 {
	if v, ok := j.nextClock(&j.monoQ); ok {
		j.monoBase, j.monoStart = v, time.Now()
		return v
	}
	v := j.monoBase + int64(time.Since(j.monoStart))
	if !j.replaying() {
		j.recordClock(&j.curMono, &j.chainMono, v)
	}
	return v
}

// wall is WASI's wall clock, journalled as mono is.
func (j *journal) wall() int64 {
	if v, ok := j.nextClock(&j.wallQ); ok {
		return v
	}
	v := time.Now().UnixNano()
	if !j.replaying() {
		j.recordClock(&j.curWall, &j.chainWall, v)
	}
	return v
}

func (j *journal) recordClock(cur *[]byte, chain *int64, v int64) {
	*cur = binary.AppendVarint(*cur, v-*chain)
	*chain = v
	if j.batchBytes+len(j.curMono)+len(j.curWall) > clockBatchBytes {
		j.record(nil, nil)
	}
}

// random is WASI's random_get: strict, like a host call.
func (j *journal) random(b []byte) {
	if e := j.match(kindRandom, "", fmt.Sprintf("%d bytes", len(b))); e != nil {
		if len(e.Bytes) != len(b) {
			j.diverged(e, describe(kindRandom, fmt.Sprintf("%d bytes", len(b))))
		}
		copy(b, e.Bytes)
		return
	}
	if j.size+j.batchBytes+len(b)*4/3 > j.max {
		j.full() // before copying what a guest may have made huge
	}
	_, _ = rand.Read(b) // never fails (crypto/rand)
	j.closeClock()
	j.batch = append(j.batch, journalEntry{Kind: kindRandom, Bytes: append([]byte(nil), b...)})
	j.batchBytes += len(b)*4/3 + 16
	if j.batchBytes > clockBatchBytes {
		j.record(nil, nil)
	}
}

// next returns the entry recorded for the guest's next host call, or nil
// when the journal is used up and the call runs live. Clock readings
// recorded before it that the guest did not read are dropped.
func (j *journal) next() *journalEntry {
	j.calls++
	j.monoQ, j.wallQ = nil, nil
	for j.pos < len(j.replay) && j.replay[j.pos].Kind == kindClock {
		j.pos++
	}
	if j.pos == len(j.replay) {
		return nil
	}
	e := &j.replay[j.pos]
	j.pos++
	return e
}

// skipAsks passes over the questions asked while performing the
// capability call being replayed, whose result is journalled after them,
// and returns how many there were.
func (j *journal) skipAsks() int {
	n := 0
	for {
		j.monoQ, j.wallQ = nil, nil
		for j.pos < len(j.replay) && j.replay[j.pos].Kind == kindClock {
			j.pos++
		}
		if j.pos == len(j.replay) || j.replay[j.pos].Kind != kindAsk {
			return n
		}
		j.pos++
		n++
	}
}

// match returns the entry recorded for the guest's host call (kind, hash,
// what), nil when the call runs live, and stops the call when the guest
// made another call than the one recorded.
func (j *journal) match(kind, hash, what string) *journalEntry {
	e := j.next()
	if e == nil {
		return nil
	}
	if e.Kind != kind || e.Hash != hash || (what != "" && e.What != "" && e.What != what) {
		got := describe(kind, what)
		if e.Kind == kind && e.What == what {
			got += " with a different request"
		}
		j.diverged(e, got)
	}
	return e
}

// matchDetach is match for detach; nil-safe.
func (j *journal) matchDetach() *journalEntry {
	if j == nil {
		return nil
	}
	return j.match(kindDetach, "", "")
}

// diverged stops the call: the guest did not do what the journal says it
// did.
func (j *journal) diverged(e *journalEntry, got string) {
	abort(j.divergence(e, got))
}

func (j *journal) divergence(e *journalEntry, got string) error {
	what := e.What
	if e.Kind == kindRandom {
		what = fmt.Sprintf("%d bytes", len(e.Bytes))
	}
	return tag(ErrReplayDiverged, fmt.Errorf("replay diverged at host call %d: journal has %s, guest made %s; the plugin is not deterministic (see the sdk/guest docs, \"Determinism\")",
		j.calls, describe(e.Kind, what), got))
}

// finish checks, after the guest returned, that it used the whole journal.
func (j *journal) finish() error {
	for j.pos < len(j.replay) && j.replay[j.pos].Kind == kindClock {
		j.pos++
	}
	if j.pos == len(j.replay) {
		return nil
	}
	j.calls++
	return &abortError{err: j.divergence(&j.replay[j.pos], "none (it returned its result)")}
}

// closeClock ends the clock entry being filled.
func (j *journal) closeClock() {
	if len(j.curMono) == 0 && len(j.curWall) == 0 {
		return
	}
	j.batch = append(j.batch, journalEntry{Kind: kindClock, Mono: j.curMono, Wall: j.curWall})
	j.batchBytes += (len(j.curMono)+len(j.curWall))*4/3 + 24
	j.curMono, j.curWall = nil, nil
}

// record makes the batched readings and entries durable, in that order,
// and consumes the answers of keys; it stops the call if it cannot.
func (j *journal) record(entries []journalEntry, consume []string) {
	j.closeClock()
	all := append(j.batch, entries...)
	if len(all) == 0 && len(consume) == 0 {
		return
	}
	enc := make([][]byte, len(all))
	n := 0
	for i := range all {
		b, err := json.Marshal(&all[i])
		if err != nil {
			abort(fmt.Errorf("journal: %w", err))
		}
		if all[i].Kind != kindClock && all[i].Kind != kindRandom {
			b = j.caps.redactJSON(b)
		}
		enc[i] = b
		n += len(b)
	}
	if j.size+n > j.max {
		j.full()
	}
	if err := j.rec.Record(j.ctx, enc, consume); err != nil {
		abort(fmt.Errorf("journal: %w", err))
	}
	j.size += n
	j.batch, j.batchBytes = j.batch[:0], 0
}

// full stops the call: its journal would pass the bound.
func (j *journal) full() {
	abort(tag(ErrJournalFull, fmt.Errorf("task journal is over %d bytes: the call learned more from the host (answers, responses, clock and random readings) than a task may keep", j.max)))
}

// digestOf identifies a request in the journal: 96 bits of its SHA-256.
func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(s[:12])
}

// sideEffect reports whether performing req may change something outside:
// HTTP other than GET, HEAD and OPTIONS.
func sideEffect(req abi.CapabilityRequest) bool {
	if req.Op != abi.OpHTTP || req.HTTP == nil {
		return false
	}
	switch strings.ToUpper(req.HTTP.Method) {
	case "GET", "HEAD", "OPTIONS":
		return false
	}
	return true
}

// capWhat names a capability request for people: an HTTP request by method
// and URL without its query (which may carry what is nobody's business).
func capWhat(req abi.CapabilityRequest) string {
	what := req.Op + " " + req.Name
	if req.Op == abi.OpHTTP && req.HTTP != nil {
		u := req.HTTP.URL
		if p, err := url.Parse(u); err == nil {
			p.RawQuery, p.Fragment, p.User = "", "", nil
			u = p.String()
		}
		what = req.Op + " " + req.HTTP.Method + " " + u
	}
	return safetext.Cut(safetext.Line(what), 200)
}
