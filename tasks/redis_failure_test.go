package tasks_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/redistest"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

func TestRedisUnreachable(t *testing.T) {
	storetest.CheckGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	_, err = tasks.NewRedis(ctx, tasks.RedisOptions{URL: "redis://user:s3cret@" + addr + "/0"})
	if !errors.Is(err, tasks.ErrUnavailable) {
		t.Errorf("NewRedis with nothing listening: %v, want ErrUnavailable", err)
	}
	msg := err.Error()
	for _, want := range []string{addr, "redis-server", "URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q shows the password", msg)
	}
	for _, bad := range []string{"", "http://" + addr, "redis://" + addr + "/notadb"} {
		if _, err := tasks.NewRedis(ctx, tasks.RedisOptions{URL: bad}); err == nil || errors.Is(err, tasks.ErrUnavailable) {
			t.Errorf("NewRedis(%q): %v, want an error about the URL", bad, err)
		}
	}
}

// TestRedisOutage takes Redis away from a working store: every call fails
// soon with ErrUnavailable instead of hanging, and when Redis is back the
// same store works again, its watch announces the gap with EventResync, and
// a guest that was waiting through it gets its answer.
func TestRedisOutage(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p := redistest.StartProxy(t, redisURL(t))
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{URL: p.URL, Prefix: prefix})
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, err := s.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	task := storetest.NewTask("alice")
	if err := s.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, task.ID, map[string]abi.InputRequest{"k": {Method: abi.MethodElicit}}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		answers map[string]abi.InputResponse
		err     error
	}
	guest := make(chan result, 1)
	go func() {
		a, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
		guest <- result{a, err}
	}()
	waitWaiting(t, ctx, s, prefix, task.ID)

	p.Cut()
	started := time.Now()
	calls := map[string]func() error{
		"Get":     func() error { _, err := s.Get(ctx, task.ID); return err },
		"List":    func() error { _, _, err := s.List(ctx, "alice", "", 0); return err },
		"Answer":  func() error { return s.Answer(ctx, task.ID, "k", abi.InputResponse{}) },
		"Cancel":  func() error { return s.Cancel(ctx, task.ID, "x") },
		"Publish": func() error { return s.Publish(ctx, tasks.Event{Kind: tasks.EventLog, TaskID: task.ID}) },
		"Enqueue": func() error { return s.Queue().Enqueue(ctx, task.ID) },
		"Next":    func() error { _, err := s.Queue().Next(ctx); return err },
		"Watch":   func() error { _, err := s.Watch(ctx); return err },
		"AwaitAnswers": func() error {
			_, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
			return err
		},
		"NewRedis": func() error {
			_, err := tasks.NewRedis(ctx, tasks.RedisOptions{URL: p.URL, Prefix: prefix})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, tasks.ErrUnavailable) {
			t.Errorf("%s while Redis is away: %v, want ErrUnavailable", name, err)
		}
	}
	if took := time.Since(started); took > 20*time.Second {
		t.Errorf("%d calls against an unreachable Redis took %s", len(calls), took)
	}

	p.Restore()
	if _, err := s.Get(ctx, task.ID); err != nil {
		t.Fatalf("Get once Redis is back: %v", err)
	}
	for e := range events {
		if e.Kind == tasks.EventResync {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("no EventResync after Redis came back")
	}
	if err := s.Publish(ctx, tasks.Event{Kind: tasks.EventLog, TaskID: task.ID, Data: []byte(`{"level":0,"message":"back"}`)}); err != nil {
		t.Fatal(err)
	}
	for e := range events {
		if e.Kind == tasks.EventLog && string(e.Data) == `{"level":0,"message":"back"}` {
			break
		}
	}
	if err := s.Answer(ctx, task.ID, "k", abi.InputResponse{Result: []byte(`{"action":"accept"}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-guest:
		if r.err != nil || string(r.answers["k"].Result) != `{"action":"accept"}` {
			t.Errorf("guest that waited through the outage got %v, %v", r.answers, r.err)
		}
	case <-ctx.Done():
		t.Fatal("the guest that waited through the outage never got its answer")
	}
	stopWatch()
	for range events {
	}
}

// waitWaiting returns once a guest of s is waiting on the task's answers:
// registered in Redis, and past the reply that registered it. Registration
// is written by the guest's first round trip, whose reply may still be in
// flight; a first round that fails (a cut before the reply arrives) is an
// outage before the wait began, which AwaitAnswers rightly reports. So it
// wakes the guest, as a change to the task would, for a second round: once
// the guest registers again, it has seen the first reply.
func waitWaiting(t *testing.T, ctx context.Context, s *tasks.Redis, prefix, id string) {
	t.Helper()
	waitRegistered(t, ctx, prefix, id)
	c := rawClient(t)
	if err := c.Del(ctx, prefix+":task:{"+id+"}:waiters").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.RPush(ctx, tasks.Inbox(s), id).Err(); err != nil {
		t.Fatal(err)
	}
	waitRegistered(t, ctx, prefix, id)
}

// waitRegistered returns once a guest has registered as waiting on the
// task's answers in Redis (see waitWaiter).
func waitRegistered(t *testing.T, ctx context.Context, prefix, id string) {
	t.Helper()
	if err := waitWaiter(ctx, rawClient(t), prefix, id); err != nil {
		t.Fatal(err)
	}
}

// TestRedisLongOutage: a guest waiting while Redis is away for longer than
// ClaimIdle gives up with ErrUnavailable (its queue entry may have gone to
// another worker by then) instead of waiting forever.
func TestRedisLongOutage(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p := redistest.StartProxy(t, redisURL(t))
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	const claimIdle = time.Second
	s := newRedis(t, tasks.RedisOptions{URL: p.URL, Prefix: prefix, ClaimIdle: claimIdle})
	task := storetest.NewTask("alice")
	if err := s.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, task.ID, map[string]abi.InputRequest{"k": {Method: abi.MethodElicit}}); err != nil {
		t.Fatal(err)
	}
	guest := make(chan error, 1)
	go func() {
		_, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
		guest <- err
	}()
	waitWaiting(t, ctx, s, prefix, task.ID)
	p.Cut()
	cutAt := time.Now()
	select {
	case err := <-guest:
		if !errors.Is(err, tasks.ErrUnavailable) {
			t.Errorf("guest waiting through a long outage got %v, want ErrUnavailable", err)
		}
		if took := time.Since(cutAt); took < claimIdle {
			t.Errorf("the guest gave up after %s, before ClaimIdle (%s)", took, claimIdle)
		}
	case <-ctx.Done():
		t.Fatal("the guest waited forever for an unreachable Redis")
	}
	p.Restore()
}

// TestRedisClose: closing the store ends its waits and watches at once.
func TestRedisClose(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	task := storetest.NewTask("alice")
	if err := s.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestInput(ctx, task.ID, map[string]abi.InputRequest{"k": {Method: abi.MethodElicit}}); err != nil {
		t.Fatal(err)
	}
	guest := make(chan error, 1)
	go func() {
		_, err := s.AwaitAnswers(ctx, task.ID, []string{"k"})
		guest <- err
	}()
	waitRegistered(t, ctx, prefix, task.ID)
	events, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-guest:
		if !errors.Is(err, tasks.ErrUnavailable) {
			t.Errorf("a guest waiting when the store closed got %v, want ErrUnavailable", err)
		}
	case <-ctx.Done():
		t.Fatal("a guest waiting when the store closed never returned")
	}
	for range events {
	}
	if took := time.Since(closed); took > 5*time.Second {
		t.Errorf("waits and watches took %s to end after Close", took)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
