package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/grants"
)

// memJournal is a Recorder held in memory: past is what earlier runs
// recorded, added what this run records.
type memJournal struct {
	mu         sync.Mutex
	past       [][]byte
	added      [][]byte
	consumed   []string
	idempotent bool
}

func (m *memJournal) Recorded() [][]byte { return m.past }

func (m *memJournal) Record(_ context.Context, entries [][]byte, consume []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		m.added = append(m.added, bytes.Clone(e))
	}
	m.consumed = append(m.consumed, consume...)
	return nil
}

func (m *memJournal) Idempotent() bool { return m.idempotent }

// all is the whole journal: what the next run would be given.
func (m *memJournal) all() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append(slices.Clone(m.past), m.added...)
}

func (m *memJournal) bytes() int {
	n := 0
	for _, e := range m.all() {
		n += len(e)
	}
	return n
}

// recEnv is a testEnv that keeps a journal.
type recEnv struct {
	*testEnv
	*memJournal
}

func newRecEnv(past [][]byte, input func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error)) *recEnv {
	return &recEnv{testEnv: &testEnv{input: input}, memJournal: &memJournal{past: past}}
}

// evict is an Env.Input that gives the guest up, as a worker evicting it.
func evict(seen *[]abi.InputRequest) func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error) {
	return func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		*seen = append(*seen, reqs...)
		return nil, fmt.Errorf("parked: %w", ErrEvicted)
	}
}

// answer is an Env.Input that accepts every request with content.
func answer(seen *[]abi.InputRequest, content string) func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error) {
	return func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		*seen = append(*seen, reqs...)
		out := make([]abi.InputResponse, len(reqs))
		for i := range out {
			out[i].Result = json.RawMessage(`{"action":"accept","content":` + content + `}`)
		}
		return out, nil
	}
}

// example returns the path of the built example plugin plugins/name.
func example(t testing.TB, name string) string {
	t.Helper()
	guestMu.Lock()
	defer guestMu.Unlock()
	key := "plugins/" + name
	if p, ok := guestPaths[key]; ok {
		return p
	}
	p, _, err := guestBuilder.Build(context.Background(), filepath.Join("..", "plugins", name))
	if err != nil {
		t.Fatalf("build plugin %s: %v", name, err)
	}
	guestPaths[key] = p
	return p
}

func loadExample(t testing.TB, r *Runtime, name string) *Plugin {
	t.Helper()
	p, err := r.Load(context.Background(), example(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// resultText returns a call's text, failing t if the call failed.
func resultText(t testing.TB) func(*abi.CallResult, error) string {
	return func(res *abi.CallResult, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Content) == 0 {
			t.Fatalf("empty result %+v", res)
		}
		return res.Content[0].Text
	}
}

// TestJournalResumeAfterEviction: a confirm_delete evicted while it waits
// resumes in another runtime (another process, as far as the guest can
// tell) from its journal, and gets the live answer.
func TestJournalResumeAfterEviction(t *testing.T) {
	ctx := context.Background()
	args := json.RawMessage(`{"filename":"notes.txt"}`)
	r1, _ := newRuntime(t, Options{})
	p1 := loadExample(t, r1, "confirm")

	var asked []abi.InputRequest
	first := newRecEnv(nil, evict(&asked))
	_, err := p1.Call(ctx, "confirm_delete", args, first)
	if !errors.Is(err, ErrEvicted) {
		t.Fatalf("evicted call: %v, want ErrEvicted", err)
	}
	if len(asked) != 1 || asked[0].Key != "elicitation-1" {
		t.Fatalf("asked %+v, want one request keyed elicitation-1", asked)
	}
	// The evicted instance is closed, not pooled: with the idle ones let
	// go, no guest memory is held.
	p1.drain()
	if used := r1.budget.used.Load(); used != 0 {
		t.Errorf("%d bytes of guest memory still held after the eviction", used)
	}
	parked := first.all()
	t.Logf("journal when parked: %d entries, %d bytes", len(parked), first.bytes())

	// Resume in a fresh runtime: Input is asked once, under the same key.
	r2, _ := newRuntime(t, Options{})
	p2 := loadExample(t, r2, "confirm")
	asked = nil
	resumed := newRecEnv(parked, answer(&asked, `{"confirm":true}`))
	if got := resultText(t)(p2.Call(ctx, "confirm_delete", args, resumed)); !strings.HasPrefix(got, "Not deleted notes.txt") {
		t.Fatalf("resumed call: %q", got)
	}
	if len(asked) != 1 || asked[0].Key != "elicitation-1" {
		t.Errorf("resume asked %+v, want the journalled question again", asked)
	}
	if !slices.Equal(resumed.consumed, []string{"elicitation-1"}) {
		t.Errorf("consumed %q, want the answered key", resumed.consumed)
	}
	full := resumed.all()
	t.Logf("journal when done: %d entries, %d bytes", len(full), resumed.bytes())

	// Replayed to the end (a worker died after the answer was journalled):
	// the same result without asking anyone.
	asked = nil
	again := newRecEnv(full, answer(&asked, `{"confirm":false}`))
	if got := resultText(t)(p1.Call(ctx, "confirm_delete", args, again)); !strings.HasPrefix(got, "Not deleted notes.txt") {
		t.Fatalf("replayed call: %q", got)
	}
	if len(asked) != 0 {
		t.Errorf("replay asked %+v", asked)
	}
}

// TestJournalReplayDiverged: a guest that asks something else than its
// journal recorded fails, with a message naming the host call.
func TestJournalReplayDiverged(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	var asked []abi.InputRequest
	rec := newRecEnv(nil, answer(&asked, `{}`))
	if _, err := p.Call(ctx, "ask", json.RawMessage(`{"N":1}`), rec); err != nil {
		t.Fatal(err)
	}
	journal := rec.all()

	check := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, ErrReplayDiverged) || !strings.Contains(err.Error(), "host call 1") {
			t.Fatalf("got %v, want ErrReplayDiverged at host call 1", err)
		}
	}
	t.Run("other arguments", func(t *testing.T) {
		_, err := p.Call(ctx, "ask", json.RawMessage(`{"N":2}`), newRecEnv(journal, answer(&asked, `{}`)))
		check(t, err)
	})
	t.Run("edited journal", func(t *testing.T) {
		edited := slices.Clone(journal)
		for i, e := range edited {
			if bytes.Contains(e, []byte(`"k":"input"`)) {
				edited[i] = bytes.Replace(e, []byte(`"h":"`), []byte(`"h":"x`), 1)
			}
		}
		_, err := p.Call(ctx, "ask", json.RawMessage(`{"N":1}`), newRecEnv(edited, answer(&asked, `{}`)))
		check(t, err)
	})
	t.Run("finished early", func(t *testing.T) {
		_, err := p.Call(ctx, "echo", json.RawMessage(`{}`), newRecEnv(journal, answer(&asked, `{}`)))
		check(t, err)
	})
	t.Run("not a journal", func(t *testing.T) {
		_, err := p.Call(ctx, "ask", json.RawMessage(`{"N":1}`), newRecEnv([][]byte{[]byte("{")}, answer(&asked, `{}`)))
		if !errors.Is(err, ErrReplayDiverged) {
			t.Fatalf("got %v, want ErrReplayDiverged", err)
		}
	})
}

// TestJournalQuietReplay: what the guest logged and reported while the
// journal was recorded is not sent again on replay, and the clock readings
// it made (its sleep, the time it reports) are replayed.
func TestJournalQuietReplay(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	var asked []abi.InputRequest
	rec := newRecEnv(nil, answer(&asked, `{}`))
	want := resultText(t)(p.Call(ctx, "log_elicit", nil, rec))
	if len(rec.logs) == 0 || len(rec.progress) == 0 {
		t.Fatalf("recording run: logs %q, progress %v", rec.logs, rec.progress)
	}
	if !slices.ContainsFunc(rec.all(), func(e []byte) bool { return bytes.Contains(e, []byte(`"k":"clock"`)) }) {
		t.Errorf("no clock readings in the journal %q", rec.all())
	}
	for _, e := range rec.all() {
		t.Logf("%s", e)
	}
	replay := newRecEnv(rec.all(), answer(&asked, `{}`))
	if got := resultText(t)(p.Call(ctx, "log_elicit", nil, replay)); got != want {
		t.Errorf("replay returned %q, recorded %q", got, want)
	}
	if len(replay.logs) != 0 || len(replay.progress) != 0 || len(asked) != 1 {
		t.Errorf("replay sent logs %q, progress %v, asked %d times in all", replay.logs, replay.progress, len(asked))
	}
}

// TestJournalDetach: detach's answer is replayed, not asked again.
func TestJournalDetach(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	type detachRec struct {
		*detachEnv
		*memJournal
	}
	first := detachRec{&detachEnv{answer: true}, &memJournal{}}
	if got := resultText(t)(p.Call(ctx, "detach", nil, first)); got != "1 1" || first.calls != 1 {
		t.Fatalf("detach: %q after %d Detach calls", got, first.calls)
	}
	replay := detachRec{&detachEnv{answer: false}, &memJournal{past: first.all()}}
	if got := resultText(t)(p.Call(ctx, "detach", nil, replay)); got != "1 1" || replay.calls != 0 {
		t.Errorf("replayed detach: %q after %d Detach calls", got, replay.calls)
	}
}

// TestJournalSideEffects: an HTTP POST is journalled as started before it
// is sent; a replay never sends it again, and one whose result is missing
// fails unless the tool is idempotent.
func TestJournalSideEffects(t *testing.T) {
	ctx := context.Background()
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		fmt.Fprintf(w, "got %s", r.Method)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	grant := fmt.Sprintf(`{"hosts": [{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true, "methods": ["GET", "POST"]}]}`, u.Port())
	r, _ := newRuntime(t, Options{Grants: policy(t, "", grant)})
	p := load(t, r, "capable")
	args, _ := json.Marshal(map[string]string{"method": "POST", "url": srv.URL + "/orders?secret=1", "body": "one"})
	call := func(rec *recEnv) (fetchOut, error) {
		res, err := p.Call(ctx, "fetch", args, rec)
		var out fetchOut
		if err == nil {
			err = json.Unmarshal(res.StructuredContent, &out)
		}
		return out, err
	}
	var asked []abi.InputRequest
	rec := newRecEnv(nil, answer(&asked, `{}`))
	if out, err := call(rec); err != nil || out.Body != "got POST" {
		t.Fatalf("recording run: %+v, %v", out, err)
	}
	journal := rec.all()
	started := slices.IndexFunc(journal, func(e []byte) bool { return bytes.Contains(e, []byte(`"started":true`)) })
	if started < 0 || started == len(journal)-1 {
		t.Fatalf("no started entry followed by a result in %q", journal)
	}

	if out, err := call(newRecEnv(journal, answer(&asked, `{}`))); err != nil || out.Body != "got POST" || posts.Load() != 1 {
		t.Fatalf("replay: %+v, %v, %d POSTs", out, err, posts.Load())
	}
	unfinished := journal[:started+1]
	_, err := call(newRecEnv(unfinished, answer(&asked, `{}`)))
	if !errors.Is(err, ErrUnfinishedSideEffect) || !strings.Contains(err.Error(), "POST "+srv.URL+"/orders") || strings.Contains(err.Error(), "secret=1") {
		t.Fatalf("unfinished side effect: %v", err)
	}
	if posts.Load() != 1 {
		t.Fatalf("the unfinished side effect was repeated")
	}
	idem := newRecEnv(unfinished, answer(&asked, `{}`))
	idem.idempotent = true
	if out, err := call(idem); err != nil || out.Body != "got POST" || posts.Load() != 2 {
		t.Fatalf("idempotent: %+v, %v, %d POSTs", out, err, posts.Load())
	}
	if got := idem.all(); len(got) != len(journal) {
		t.Errorf("idempotent replay left %d entries, want %d (its result after the started one)", len(got), len(journal))
	}
}

// TestJournalKeepsNoSecrets: a secret read is journalled by name and read
// again from the grants; a response that echoes it is journalled redacted.
func TestJournalKeepsNoSecrets(t *testing.T) {
	ctx := context.Background()
	const secret = "tok-5e1f0a9b33"
	t.Setenv("WASMHOST_TEST_CAPABLE_TOKEN", secret)
	srv, port := loopback(t)
	grant := fmt.Sprintf(`{"hosts": [{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true}],
		"secrets": {"token": {"env": "WASMHOST_TEST_CAPABLE_TOKEN"}}}`, port)
	r, _ := newRuntime(t, Options{Grants: policy(t, "", grant)})
	p := load(t, r, "capable")
	var asked []abi.InputRequest
	for _, c := range []struct {
		tool string
		args any
	}{
		{"secret_len", map[string]string{"key": "token"}},
		{"leak", map[string]string{"key": "token"}},
		{"fetch", map[string]any{"url": srv.URL + "/hello", "header": map[string]string{"Authorization": "Bearer " + secret}}},
	} {
		args, _ := json.Marshal(c.args)
		rec := newRecEnv(nil, answer(&asked, `{}`))
		want, err := p.Call(ctx, c.tool, args, rec)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rec.all() {
			if bytes.Contains(e, []byte(secret)) {
				t.Errorf("%s: journal entry %s holds the secret", c.tool, e)
			}
		}
		got, err := p.Call(ctx, c.tool, args, newRecEnv(rec.all(), answer(&asked, `{}`)))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		if !bytes.Equal(w, g) {
			t.Errorf("%s: replayed %s, recorded %s", c.tool, g, w)
		}
	}
}

// TestJournalFull: a call whose journal would pass the bound fails.
func TestJournalFull(t *testing.T) {
	r, _ := newRuntime(t, Options{MaxJournalBytes: 200})
	p := load(t, r, "echo")
	var asked []abi.InputRequest
	_, err := p.Call(context.Background(), "ask", json.RawMessage(`{"N":3}`), newRecEnv(nil, answer(&asked, `{"text":"`+strings.Repeat("x", 200)+`"}`)))
	if !errors.Is(err, ErrJournalFull) || !strings.Contains(err.Error(), "200 bytes") {
		t.Fatalf("got %v, want ErrJournalFull", err)
	}
}

// snapshotHash identifies a plugin's snapshot: memory and globals.
func snapshotHash(s *snapshot) [32]byte {
	h := sha256.New()
	for _, c := range s.chunks {
		if c == nil {
			c = make([]byte, snapshotChunk)
		}
		h.Write(c)
	}
	fmt.Fprint(h, s.values, s.clock, s.size)
	return [32]byte(h.Sum(nil))
}

// memoryHash identifies an instance's memory.
func memoryHash(t *testing.T, inst *instance) [32]byte {
	t.Helper()
	mem := inst.mod.Memory()
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		t.Fatal("cannot read memory")
	}
	return sha256.Sum256(b)
}

// TestDeterministicStart: two runtimes (two processes, as far as a guest
// can tell) build the same snapshot of a module, and an instance started
// fresh is in the snapshot's state: a journal recorded in one replays in
// any other.
func TestDeterministicStart(t *testing.T) {
	ctx := context.Background()
	r1, _ := newRuntime(t, Options{})
	r2, _ := newRuntime(t, Options{CacheDir: t.TempDir()})
	for _, name := range []string{"confirm", "greet"} {
		p1, p2 := loadExample(t, r1, name), loadExample(t, r2, name)
		if p1.snap == nil || p2.snap == nil {
			t.Fatalf("%s: no snapshot", name)
		}
		if snapshotHash(p1.snap) != snapshotHash(p2.snap) {
			t.Errorf("%s: two runtimes built different snapshots", name)
		}
		fresh, err := p1.freshInstance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		restored, err := p2.fromSnapshot(ctx, p2.snap)
		if err != nil {
			t.Fatal(err)
		}
		if memoryHash(t, fresh) != memoryHash(t, restored) || fresh.start.now != p2.snap.clock {
			t.Errorf("%s: a fresh instance differs from a restored one", name)
		}
		fresh.close()
		restored.close()
	}

	// And a journal recorded with fresh instances replays in a pooled one.
	rf, _ := newRuntime(t, Options{FreshInstances: true})
	pf := loadExample(t, rf, "confirm")
	var asked []abi.InputRequest
	rec := newRecEnv(nil, evict(&asked))
	args := json.RawMessage(`{"filename":"a"}`)
	if _, err := pf.Call(ctx, "confirm_delete", args, rec); !errors.Is(err, ErrEvicted) {
		t.Fatal(err)
	}
	p1 := loadExample(t, r1, "confirm")
	if got := resultText(t)(p1.Call(ctx, "confirm_delete", args, newRecEnv(rec.all(), answer(&asked, `{"confirm":true}`)))); !strings.HasPrefix(got, "Not deleted a") {
		t.Errorf("resumed across instance kinds: %q", got)
	}
}

// TestJournalSize reports the journal of the example tools, in bytes per
// task, as docs/performance.md quotes them.
func TestJournalSize(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{})
	var asked []abi.InputRequest
	greet := newRecEnv(nil, answer(&asked, `{}`))
	if _, err := loadExample(t, r, "greet").Call(ctx, "greet", json.RawMessage(`{"name":"Ada"}`), greet); err != nil {
		t.Fatal(err)
	}
	confirm := newRecEnv(nil, answer(&asked, `{"confirm":true}`))
	if _, err := loadExample(t, r, "confirm").Call(ctx, "confirm_delete", json.RawMessage(`{"filename":"notes.txt"}`), confirm); err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string]*recEnv{"greet": greet, "confirm_delete": confirm} {
		t.Logf("%s: %d entries, %d bytes", name, len(rec.all()), rec.bytes())
		for _, e := range rec.all() {
			t.Logf("  %.160s", e)
		}
	}
	if n := confirm.bytes(); n == 0 || n > 4096 {
		t.Errorf("confirm_delete journal of %d bytes; want some, and under 4 KiB", n)
	}
}

// BenchmarkResumeEvicted: an evicted guest resumed from its journal: an
// instance from the pool, replay up to the live question. resume-p50-ms is
// the median time from Call to Env.Input. confirm_delete is evicted at its
// only question (nothing to replay); elicit_loop at its tenth (nine answers
// to replay).
func BenchmarkResumeEvicted(b *testing.B) {
	ctx := context.Background()
	r, _ := newRuntime(b, Options{})
	cases := []struct {
		name, tool string
		p          *Plugin
		args       json.RawMessage
		questions  int // the question it is evicted at
	}{
		{"confirm_delete", "confirm_delete", loadExample(b, r, "confirm"), json.RawMessage(`{"filename":"notes.txt"}`), 1},
		{"elicit_loop", "elicit_loop", load(b, r, "echo"), json.RawMessage(`{"Rounds":10}`), 10},
	}
	accept := abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"confirm":true}}`)}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			rec := newRecEnv(nil, func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
				if n++; n == c.questions {
					return nil, ErrEvicted
				}
				return []abi.InputResponse{accept}, nil
			})
			if _, err := c.p.Call(ctx, c.tool, c.args, rec); !errors.Is(err, ErrEvicted) {
				b.Fatal(err)
			}
			parked := rec.all()
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				var start time.Time
				reached := false
				env := newRecEnv(parked, func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
					if !reached { // the first live question: the guest is back
						reached = true
						times = append(times, time.Since(start))
					}
					return []abi.InputResponse{accept}, nil
				})
				start = time.Now()
				if _, err := c.p.Call(ctx, c.tool, c.args, env); err != nil {
					b.Fatal(err)
				}
				if !reached {
					b.Fatal("Env.Input not reached")
				}
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "resume-p50-ms")
			b.ReportMetric(float64(len(parked)), "journal-entries")
		})
	}
}

// TestReplayReopensAPersonsDirectory: a directory a person allowed for one
// call ("once") is part of that call's history. A replay after an eviction
// at a later question sees it mounted again without asking, and the call
// carries on where it stopped.
func TestReplayReopensAPersonsDirectory(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rootJSON, _ := json.Marshal(root)
	file := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(file, []byte(`{"ask": true, "askDirsRoot": `+string(rootJSON)+`, "plugins": {"notes": {}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := grants.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newRuntime(t, Options{Grants: pol})
	p := loadExample(t, r, "notes")
	note := filepath.Join(root, "notes", "notes", "shopping.md")
	if err := os.MkdirAll(filepath.Dir(note), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(note, []byte("milk"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := json.RawMessage(`{"name":"shopping"}`)

	// The person allows /notes once; the guest is then evicted at the
	// confirmation.
	var asked []abi.InputRequest
	first := newRecEnv(nil, func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		asked = append(asked, reqs...)
		if len(asked) == 1 {
			return []abi.InputResponse{{Result: json.RawMessage(`{"action":"accept","content":{"decision":"once"}}`)}}, nil
		}
		return nil, fmt.Errorf("parked: %w", ErrEvicted)
	})
	if _, err := p.Call(ctx, "delete_note", args, first); !errors.Is(err, ErrEvicted) {
		t.Fatalf("first run: %v (asked %d), want ErrEvicted at the confirmation", err, len(asked))
	}

	// The resumed run asks only the confirmation, and the yes deletes.
	asked = nil
	resumed := newRecEnv(first.all(), answer(&asked, `{"confirm":true}`))
	if got := resultText(t)(p.Call(ctx, "delete_note", args, resumed)); got != "Deleted shopping" {
		t.Fatalf("resumed call: %q", got)
	}
	if len(asked) != 1 {
		t.Errorf("the resumed call asked %d questions, want the confirmation only", len(asked))
	}
	if _, err := os.Stat(note); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the note is still there: %v", err)
	}
}

// TestJournalAskForCapability: a person asked whether the plugin may reach
// a host is part of that capability call: replay is not asked again.
func TestJournalAskForCapability(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{Grants: policy(t, `"ask": true, `, `{}`)})
	p := load(t, r, "capable")
	args := json.RawMessage(`{"url":"https://localhost/hello"}`)
	var asked []abi.InputRequest
	rec := newRecEnv(nil, answer(&asked, `{"decision":"once"}`))
	want, err := p.Call(ctx, "fetch", args, rec)
	if err != nil || len(asked) != 1 {
		t.Fatalf("recording run: %v after %d questions", err, len(asked))
	}
	var kinds []string
	for _, e := range rec.all() {
		var je journalEntry
		json.Unmarshal(e, &je)
		kinds = append(kinds, je.Kind)
	}
	if strings.Join(kinds, ",") != "ask,cap" {
		t.Errorf("journal kinds %q, want the question, then the result", kinds)
	}
	asked = nil
	got, err := p.Call(ctx, "fetch", args, newRecEnv(rec.all(), answer(&asked, `{"decision":"deny"}`)))
	if err != nil || len(asked) != 0 {
		t.Fatalf("replay: %v after %d questions", err, len(asked))
	}
	if w, g := string(want.StructuredContent), string(got.StructuredContent); w != g {
		t.Errorf("replayed %s, recorded %s", g, w)
	}
}

// TestJournalRandom: crypto/rand is replayed, and strictly.
func TestJournalRandom(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	var asked []abi.InputRequest
	rec := newRecEnv(nil, answer(&asked, `{}`))
	want := resultText(t)(p.Call(ctx, "random", nil, rec))
	journal := rec.all()
	if got := resultText(t)(p.Call(ctx, "random", nil, newRecEnv(journal, answer(&asked, `{}`)))); got != want {
		t.Errorf("replayed %q, recorded %q", got, want)
	}
	without := slices.DeleteFunc(slices.Clone(journal), func(e []byte) bool { return bytes.Contains(e, []byte(`"k":"random"`)) })
	if len(without) == len(journal) {
		t.Fatalf("no random entry in %q", journal)
	}
	_, err := p.Call(ctx, "random", nil, newRecEnv(without, answer(&asked, `{}`)))
	if !errors.Is(err, ErrReplayDiverged) || !strings.Contains(err.Error(), "random_get") {
		t.Errorf("journal without the random bytes: %v, want ErrReplayDiverged naming random_get", err)
	}
}

// TestJournalClockLoopBounded: clock readings are made durable in batches
// and count against the bound, so a guest reading the clock in a loop
// fails its call instead of growing the host's memory.
func TestJournalClockLoopBounded(t *testing.T) {
	r, _ := newRuntime(t, Options{MaxJournalBytes: 64 << 10})
	p := load(t, r, "echo")
	rec := newRecEnv(nil, nil)
	_, err := p.Call(context.Background(), "clock_loop", json.RawMessage(`{"N":1000000}`), rec)
	if !errors.Is(err, ErrJournalFull) {
		t.Fatalf("got %v, want ErrJournalFull", err)
	}
	if n := rec.bytes(); n == 0 || n > 64<<10 {
		t.Errorf("%d bytes recorded before the bound of %d", n, 64<<10)
	}
}
