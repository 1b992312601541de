package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// prefixKeys lists the keys under prefix.
func prefixKeys(t testing.TB, c *redis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s:*: %v", prefix, err)
	}
	return keys
}

// usedMemory is INFO memory's used_memory, in bytes (0 if Redis does not
// say). Redis is shared with other tests, so it is reported, not asserted.
func usedMemory(c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// waitNoKeys polls until no key is left under prefix but the ones
// docs/redis.md says never expire, and returns how long that took: every
// task key expires with its task, an owner's index with its longest-lived
// task, an inbox once emptied. Of the others, the queue's stream must be
// empty (acknowledged entries are deleted).
func waitNoKeys(t *testing.T, c *redis.Client, prefix string, deadline time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var left []string
		for _, k := range prefixKeys(t, c, prefix) {
			switch {
			case k == prefix+":queue":
				if n := c.XLen(context.Background(), k).Val(); n != 0 {
					t.Fatalf("the queue holds %d entries, want none", n)
				}
			case strings.HasPrefix(k, prefix+":key:"):
			default:
				left = append(left, k)
			}
		}
		if len(left) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > deadline {
			if len(left) > 10 {
				left = left[:10]
			}
			t.Fatalf("keys left under the prefix %s after the tasks' TTL: %v", deadline, left)
		}
		time.Sleep(100 * time.Millisecond) // polling Redis: nothing to wait on
	}
}

func hygieneTask(owner string, kind tasks.Kind, ttl time.Duration) *tasks.Task {
	now := time.Now()
	return &tasks.Task{ID: tasks.NewID(), Kind: kind, Owner: owner, Tool: "soak", Status: tasks.Working, CreatedAt: now, UpdatedAt: now, TTL: ttl}
}

var soakResult = json.RawMessage(`{"content":[{"type":"text","text":"done"}]}`)

// TestRedisKeysExpire: 10 000 tasks through the Redis store, each ending
// completed, cancelled or failed, some after questions and answers, some
// with a guest waiting; then, once their TTL has passed, no key of theirs
// is left. Key count and Redis memory before, at the peak and after are
// in the log.
func TestRedisKeysExpire(t *testing.T) {
	const (
		n       = 10000
		ttl     = 2 * time.Second
		workers = 8
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	raw := rawClient(t)
	memBefore := usedMemory(raw)

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := soakOne(ctx, s, raw, prefix, int(i), ttl); err != nil {
					errs <- fmt.Errorf("task %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ran := time.Since(start)
	peak, memPeak := len(prefixKeys(t, raw, prefix)), usedMemory(raw)
	took := waitNoKeys(t, raw, prefix, time.Minute)
	memAfter := usedMemory(raw)
	t.Logf("%d tasks (TTL %s) in %s: %d keys under the prefix when the last ended, none but the empty queue %s later; Redis used_memory %d before, %d at the end, %d after (a shared server: other tests' keys count too)",
		n, ttl, ran.Round(time.Millisecond), peak, took.Round(time.Millisecond), memBefore, memPeak, memAfter)
}

// soakOne runs task i to one of its ends. Every tenth runs, journals, is
// asked two questions and answered one (leaving a pending question and an
// unconsumed answer), and parks; every hundredth has a guest waiting for
// the other when it ends.
func soakOne(ctx context.Context, s *tasks.Redis, raw *redis.Client, prefix string, i int, ttl time.Duration) error {
	task := hygieneTask("soak-owner", tasks.KindTask, ttl)
	if i%2 == 1 {
		task.Kind, task.Owner = tasks.KindCall, "" // plain calls: no index entry
	}
	if err := s.Create(ctx, task); err != nil {
		return err
	}
	var waiting chan error
	if i%10 == 0 {
		run, err := s.StartRun(ctx, task.ID, "sha256:soak")
		if err != nil {
			return err
		}
		if err := s.AppendJournal(ctx, task.ID, run.Token, [][]byte{[]byte("clock"), []byte("random")}, nil); err != nil {
			return err
		}
		q := abi.InputRequest{Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"sure?"}`)}
		if err := s.RequestInput(ctx, task.ID, map[string]abi.InputRequest{"a": q, "b": q}); err != nil {
			return err
		}
		if err := s.Park(ctx, task.ID, run.Token); err != nil {
			return err
		}
		if err := s.Answer(ctx, task.ID, "a", abi.InputResponse{Result: json.RawMessage(`{"action":"decline"}`)}); err != nil {
			return err
		}
		if i%100 == 0 {
			waiting = make(chan error, 1)
			go func() {
				_, err := s.AwaitAnswers(ctx, task.ID, []string{"a", "b"})
				waiting <- err
			}()
			if err := waitWaiter(ctx, raw, prefix, task.ID); err != nil {
				return err
			}
		}
	}
	var err error
	switch i % 3 {
	case 0:
		err = s.Complete(ctx, task.ID, 0, soakResult)
	case 1:
		err = s.Cancel(ctx, task.ID, "cancelled by the soak")
	default:
		err = s.Fail(ctx, task.ID, 0, "failed by the soak")
	}
	if err != nil {
		return err
	}
	if waiting != nil {
		if err := <-waiting; !errors.Is(err, tasks.ErrTerminal) {
			return fmt.Errorf("the waiting guest got %v, want ErrTerminal", err)
		}
	}
	return nil
}

// waitWaiter returns once a guest waits on the task: its process is in
// the task's waiters set. AwaitAnswers has nothing else to show, so this
// looks, until ctx ends. It returns an error rather than failing the test:
// soak goroutines call it.
func waitWaiter(ctx context.Context, c *redis.Client, prefix, id string) error {
	for c.SCard(ctx, prefix+":task:{"+id+"}:waiters").Val() == 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("no guest ever waited on task %s", id)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// TestRedisVanishedClientLeavesNoKeys: tasks whose client went away
// mid-task, each with a journal: a question never answered while a guest
// waits for it (parked), an answer the guest never took, a task nobody
// finished. Once their TTL has
// passed the waiting guest gives up (ErrNotFound) and no key is left.
func TestRedisVanishedClientLeavesNoKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	raw := rawClient(t)
	q := abi.InputRequest{Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"still there?"}`)}
	const ttl = 2 * time.Second

	unanswered := hygieneTask("gone", tasks.KindTask, ttl)
	untaken := hygieneTask("gone", tasks.KindTask, ttl)
	abandoned := hygieneTask("", tasks.KindCall, ttl)
	for _, task := range []*tasks.Task{unanswered, untaken, abandoned} {
		if err := s.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	for _, task := range []*tasks.Task{unanswered, untaken, abandoned} {
		run, err := s.StartRun(ctx, task.ID, "sha256:gone")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AppendJournal(ctx, task.ID, run.Token, [][]byte{[]byte("entry")}, nil); err != nil {
			t.Fatal(err)
		}
		if task == abandoned {
			continue
		}
		if err := s.RequestInput(ctx, task.ID, map[string]abi.InputRequest{"q": q, "r": q}); err != nil {
			t.Fatal(err)
		}
		if err := s.Park(ctx, task.ID, run.Token); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Answer(ctx, untaken.ID, "q", abi.InputResponse{Result: json.RawMessage(`{"action":"decline"}`)}); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := s.AwaitAnswers(ctx, unanswered.ID, []string{"q", "r"})
		waited <- err
	}()
	if err := waitWaiter(ctx, raw, prefix, unanswered.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d keys while the tasks wait", len(prefixKeys(t, raw, prefix)))

	select {
	case err := <-waited:
		if !errors.Is(err, tasks.ErrNotFound) {
			t.Errorf("the guest waiting on an expired task got %v, want ErrNotFound", err)
		}
	case <-ctx.Done():
		t.Fatal("the guest waiting on an expired task never gave up")
	}
	took := waitNoKeys(t, raw, prefix, 30*time.Second)
	t.Logf("no keys left %s after the guest gave up", took.Round(time.Millisecond))
}

// TestRedisOwnerIndexStaysBounded: an owner that never lists its tasks
// (List drops expired entries it meets) keeps creating them; its index
// holds about its live tasks, not one entry per task ever created.
func TestRedisOwnerIndexStaysBounded(t *testing.T) {
	const n = 1000
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	raw := rawClient(t)
	index := prefix + ":owner:busy"
	create := func(ttl time.Duration) *tasks.Task {
		var last *tasks.Task
		for range n {
			last = hygieneTask("busy", tasks.KindTask, ttl)
			if err := s.Create(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
		return last
	}
	// One long-lived task keeps the index itself alive throughout.
	if err := s.Create(ctx, hygieneTask("busy", tasks.KindTask, time.Hour)); err != nil {
		t.Fatal(err)
	}
	last := create(time.Second)
	for raw.Exists(ctx, prefix+":task:{"+last.ID+"}").Val() == 1 { // all expired
		if ctx.Err() != nil {
			t.Fatal("the first tasks never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := raw.ZCard(ctx, index).Val()
	create(time.Hour)
	after := raw.ZCard(ctx, index).Val()
	t.Logf("index entries: %d after %d tasks expired, %d after %d more were created", before, n, after, n)
	if after > n+1+n/5 {
		t.Errorf("the index holds %d entries for %d live tasks: expired tasks' entries stay", after, n)
	}
}
