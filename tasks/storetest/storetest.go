// Package storetest is the conformance suite every tasks.Store must pass:
// the memory store and the Redis store run the same tests, so they behave
// the same. It is a test helper; production code never imports it.
//
// Run runs everything. The race checks (RaceFinish, RaceCancelAnswer,
// RaceAnswerAnswer, RaceStartRunCancel, RaceTakeover, StaleAnswer) are
// exported on their own as well, so that a store's own tests can show they
// catch a deliberately broken store.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// Run runs the suite. newStore returns a fresh, empty store each time it is
// called; its Watch must see only its own events (give each Redis store its
// own key prefix). Run closes the store when the subtest ends and fails the
// subtest if the store left goroutines behind.
func Run(t *testing.T, newStore func(t *testing.T) tasks.Store) {
	t.Run("NewID", testNewID)
	for _, c := range []struct {
		name string
		fn   func(*testing.T, tasks.Store)
	}{
		{"CreateGet", testCreateGet},
		{"Isolation", testIsolation},
		{"List", testList},
		{"Transitions", testTransitions},
		{"Input", testInput},
		{"Reask", testReask},
		{"Detach", testDetach},
		{"Runs", testRuns},
		{"Fencing", testFencing},
		{"Consume", testConsume},
		{"Park", testPark},
		{"StartRunKeepsQuestions", testStartRunKeepsQuestions},
		{"JournalBound", testJournalBound},
		{"AwaitWakes", testAwaitWakes},
		{"Expiry", testExpiry},
		{"Races", testRaces},
		{"Watch", testWatch},
		{"Watcher", testWatcher},
		{"Queue", testQueue},
	} {
		t.Run(c.name, func(t *testing.T) {
			CheckGoroutines(t)
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, s)
		})
	}
}

// testContext bounds a test so that a hang fails it instead of the run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// NewTask returns a valid task, ready to Create: working, an hour to live,
// every optional field set so that a store that drops one is caught.
func NewTask(owner string) *tasks.Task {
	now := time.Now()
	return &tasks.Task{
		ID:            tasks.NewID(),
		Kind:          tasks.KindTask,
		Owner:         owner,
		Tool:          "echo",
		Args:          json.RawMessage(`{"text":"hello"}`),
		Accepts:       []string{abi.MethodElicit, abi.MethodSample},
		ProgressToken: json.RawMessage(`"tok-1"`),
		Idempotent:    true,
		Status:        tasks.Working,
		CreatedAt:     now,
		UpdatedAt:     now,
		TTL:           time.Hour,
		PollInterval:  2 * time.Second,
	}
}

func create(t *testing.T, ctx context.Context, s tasks.Store, task *tasks.Task) *tasks.Task {
	t.Helper()
	if err := s.Create(ctx, task); err != nil {
		t.Fatalf("Create %s: %v", task.ID, err)
	}
	return task
}

func get(t *testing.T, ctx context.Context, s tasks.Store, id string) *tasks.Task {
	t.Helper()
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return got
}

// request is an elicitation input request whose params name key, so that a
// mixed-up answer or request is visible.
func request(key string) abi.InputRequest {
	return abi.InputRequest{Method: abi.MethodElicit, Params: json.RawMessage(fmt.Sprintf(`{"message":%q}`, "question "+key))}
}

// answer is an accepted elicitation whose content names tag.
func answer(tag string) abi.InputResponse {
	return abi.InputResponse{Result: json.RawMessage(fmt.Sprintf(`{"action":"accept","content":{"tag":%q}}`, tag))}
}

func requests(keys ...string) map[string]abi.InputRequest {
	m := make(map[string]abi.InputRequest, len(keys))
	for _, k := range keys {
		m[k] = request(k)
	}
	return m
}

// sameTask reports how got differs from want, field by field; "" if not.
func sameTask(got, want *tasks.Task) string {
	var diffs []string
	add := func(field string, g, w any) { diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Kind != want.Kind {
		add("Kind", got.Kind, want.Kind)
	}
	if got.Owner != want.Owner {
		add("Owner", got.Owner, want.Owner)
	}
	if got.Tool != want.Tool {
		add("Tool", got.Tool, want.Tool)
	}
	if !sameJSON(got.Args, want.Args) {
		add("Args", string(got.Args), string(want.Args))
	}
	if !slices.Equal(got.Accepts, want.Accepts) {
		add("Accepts", got.Accepts, want.Accepts)
	}
	if !sameJSON(got.ProgressToken, want.ProgressToken) {
		add("ProgressToken", string(got.ProgressToken), string(want.ProgressToken))
	}
	if got.Idempotent != want.Idempotent {
		add("Idempotent", got.Idempotent, want.Idempotent)
	}
	if got.Status != want.Status {
		add("Status", got.Status, want.Status)
	}
	if got.StatusMessage != want.StatusMessage {
		add("StatusMessage", got.StatusMessage, want.StatusMessage)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		add("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		add("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	}
	if got.TTL != want.TTL {
		add("TTL", got.TTL, want.TTL)
	}
	if got.PollInterval != want.PollInterval {
		add("PollInterval", got.PollInterval, want.PollInterval)
	}
	if d := sameRequests(got.InputRequests, want.InputRequests); d != "" {
		diffs = append(diffs, "InputRequests: "+d)
	}
	if !sameJSON(got.Result, want.Result) {
		add("Result", string(got.Result), string(want.Result))
	}
	if got.Error != want.Error {
		add("Error", got.Error, want.Error)
	}
	return strings.Join(diffs, "; ")
}

func sameRequests(got, want map[string]abi.InputRequest) string {
	if len(got) != len(want) {
		return fmt.Sprintf("keys %v, want %v", sortedKeys(got), sortedKeys(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Sprintf("keys %v, want %v", sortedKeys(got), sortedKeys(want))
		}
		if g.Method != w.Method || !sameJSON(g.Params, w.Params) {
			return fmt.Sprintf("%s = %s %s, want %s %s", k, g.Method, g.Params, w.Method, w.Params)
		}
	}
	return ""
}

func sameResponse(got, want abi.InputResponse) bool {
	if !sameJSON(got.Result, want.Result) || (got.Error == nil) != (want.Error == nil) {
		return false
	}
	return got.Error == nil || *got.Error == *want.Error
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sameJSON compares JSON documents ignoring insignificant white space.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// wantErr fails unless err wraps target and names the task, so that the
// person reading a log line knows which task it was about.
func wantErr(t *testing.T, what string, err, target error, id string) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Errorf("%s: %v, want success", what, err)
	case target == nil:
	case !errors.Is(err, target):
		t.Errorf("%s: error %v, want %v", what, err, target)
	case id != "" && !strings.Contains(err.Error(), id):
		t.Errorf("%s: error %q does not name task %s", what, err, id)
	}
}

// CheckGoroutines fails t if, once it ends, goroutines that run this
// module's or go-redis's code are left that were not there at its start.
// Call it first, so that its check runs after every other cleanup.
func CheckGoroutines(t *testing.T) {
	before := map[string]bool{}
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			var leaked []string
			for _, g := range goroutines() {
				if !before[g.id] && g.ours() {
					leaked = append(leaked, g.stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutine(s) left running:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			// Settling: closed connections and cancelled contexts take a
			// moment to unwind. This waits for nothing in particular.
			runtime.Gosched()
			time.Sleep(5 * time.Millisecond)
		}
	})
}

type goroutine struct{ id, stack string }

func (g goroutine) ours() bool {
	if strings.Contains(g.stack, "testing.tRunner") {
		return false // a test, perhaps a parallel one
	}
	return strings.Contains(g.stack, "github.com/wasmhost/wasmhost/") || strings.Contains(g.stack, "github.com/redis/go-redis/")
}

func goroutines() []goroutine {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for _, block := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(block, " [")
		if id, ok := strings.CutPrefix(head, "goroutine "); ok {
			gs = append(gs, goroutine{id: id, stack: block})
		}
	}
	return gs
}
