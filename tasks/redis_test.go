package tasks_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/redistest"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

// The Redis tests need a real server: REDIS_URL, by default
// redis://127.0.0.1:6379. Without one they fail when CI=true and are
// skipped, loudly, otherwise. Each test uses its own key prefix, so runs
// may share a server, and deletes its keys when it ends.

func redisURL(t testing.TB) string { return redistest.URL(t) }

// testPrefix is a key prefix no other test or run uses.
func testPrefix(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_", ":", ".").Replace(t.Name())
	return "wasmhost-test:" + name + ":" + hex.EncodeToString(b)
}

// newRedis opens a store on a fresh prefix (unless opts has one) and
// deletes the prefix's keys when the test ends. Block is short, so that
// tests of idle workers are quick.
func newRedis(t testing.TB, opts tasks.RedisOptions) *tasks.Redis {
	t.Helper()
	if opts.URL == "" {
		opts.URL = redisURL(t)
	}
	if opts.Prefix == "" {
		opts.Prefix = testPrefix(t)
		t.Cleanup(func() { deleteKeys(t, opts.Prefix) })
	}
	if opts.Block == 0 {
		opts.Block = 300 * time.Millisecond
	}
	s, err := tasks.NewRedis(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawClient(t testing.TB) *redis.Client {
	opts, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func deleteKeys(t testing.TB, prefix string) {
	opts, _ := redis.ParseURL(redisURL(t))
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

func TestRedis(t *testing.T) {
	redisURL(t)
	storetest.Run(t, func(t *testing.T) tasks.Store { return newRedis(t, tasks.RedisOptions{}) })
}

// TestRedisRaceChecksBite runs the suite's race checks on stores that have
// the races: each check must catch its race, or it proves nothing.
func TestRedisRaceChecksBite(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutant func(*tasks.Redis) tasks.Store
		check  func(context.Context, tasks.Store, int) error
	}{
		{"answer checked before a cancel, written after it", tasks.RacyAnswer, storetest.RaceCancelAnswer},
		{"cancel checked before a completion, written after it", tasks.RacyCancel, storetest.RaceFinish},
		{"run started after a cancel it checked before", tasks.RacyStartRun, storetest.RaceStartRunCancel},
		{"outcome of a run that was taken over", tasks.UnfencedFinish, storetest.RaceTakeover},
		{"answer to a request the task is not waiting on", tasks.UnwaitedAnswer,
			func(ctx context.Context, s tasks.Store, _ int) error { return storetest.StaleAnswer(ctx, s) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.CheckGoroutines(t)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			err := c.check(ctx, c.mutant(newRedis(t, tasks.RedisOptions{})), 300)
			if err == nil {
				t.Fatalf("the check passed a store with this race")
			}
			t.Logf("caught: %v", err)
		})
	}
}

// TestRedisKeyLayout pins the documented keys (docs/redis.md): their
// types, their TTLs, and that the end of a task removes what it no longer
// needs.
func TestRedisKeyLayout(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx := t.Context()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	c := rawClient(t)

	task := storetest.NewTask("alice")
	task.TTL = time.Minute
	if err := s.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	reqs := map[string]abi.InputRequest{"a": {Method: abi.MethodElicit}, "b": {Method: abi.MethodElicit}}
	if err := s.RequestInput(ctx, task.ID, reqs); err != nil {
		t.Fatal(err)
	}
	if err := s.Answer(ctx, task.ID, "a", abi.InputResponse{Result: []byte(`{"action":"accept"}`)}); err != nil {
		t.Fatal(err)
	}
	run, err := s.StartRun(ctx, task.ID, "sha256:aa")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendJournal(ctx, task.ID, run.Token, [][]byte{[]byte("e1"), []byte("e2")}, nil); err != nil {
		t.Fatal(err)
	}
	tk := prefix + ":task:{" + task.ID + "}"
	want := map[string]string{
		tk:                      "hash",
		tk + ":input":           "hash",
		tk + ":answers":         "hash",
		tk + ":journal":         "list",
		prefix + ":owner:alice": "zset",
		prefix + ":queue":       "stream",
	}
	for key, typ := range want {
		if got := c.Type(ctx, key).Val(); got != typ {
			t.Errorf("%s is a %q, want a %s", key, got, typ)
		}
		if key == prefix+":queue" {
			continue // the queue outlives every task
		}
		if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > task.TTL {
			t.Errorf("%s expires in %s, want with the task (within %s)", key, ttl, task.TTL)
		}
	}
	if got := c.HKeys(ctx, tk+":input").Val(); len(got) != 1 || got[0] != "b" {
		t.Errorf("pending requests %v, want [b]", got)
	}
	if got := c.HKeys(ctx, tk+":answers").Val(); len(got) != 1 || got[0] != "a" {
		t.Errorf("answers waiting %v, want [a]", got)
	}
	if got := c.LRange(ctx, tk+":journal", 0, -1).Val(); len(got) != 2 || got[0] != "e1" || got[1] != "e2" {
		t.Errorf("journal %v, want [e1 e2]", got)
	}
	if got := c.HMGet(ctx, tk, "token", "module", "jbytes").Val(); fmt.Sprint(got) != "[1 sha256:aa 4]" {
		t.Errorf("run fields token, module, jbytes = %v, want [1 sha256:aa 4]", got)
	}
	if groups := c.XInfoGroups(ctx, prefix+":queue").Val(); len(groups) != 1 || groups[0].Name != "workers" {
		t.Errorf("queue groups %v, want workers", groups)
	}
	sub := c.Subscribe(ctx, prefix+":events")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, task.ID, 0, nil); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`"taskId":%q`, task.ID); !strings.Contains(msg.Payload, want) || !strings.Contains(msg.Payload, `"status":"completed"`) {
		t.Errorf("event on %s:events = %s", prefix, msg.Payload)
	}
	for _, key := range []string{tk + ":input", tk + ":answers", tk + ":journal", tk + ":waiters"} {
		if n := c.Exists(ctx, key).Val(); n != 0 {
			t.Errorf("%s is left after the task ended", key)
		}
	}
	if ttl := c.PTTL(ctx, tk).Val(); ttl <= 0 {
		t.Errorf("the ended task's record has TTL %s, want it kept until it expires", ttl)
	}
}

// TestRedisCrossProcess: two stores on one prefix are two processes; a
// guest waiting in one is answered and cancelled from the other.
func TestRedisCrossProcess(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	worker := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	front := newRedis(t, tasks.RedisOptions{Prefix: prefix})

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := tasks.NewWatcher(wctx, front, nil)
	if err != nil {
		t.Fatal(err)
	}
	task := storetest.NewTask("alice")
	if err := front.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	asking := make(chan error, 1)
	go func() {
		_, err := w.Wait(ctx, task.ID, func(t *tasks.Task) bool { return t.Status == tasks.InputRequired })
		asking <- err
	}()
	type result struct {
		answers map[string]abi.InputResponse
		err     error
	}
	guest := make(chan result, 2)
	ask := func(key string) {
		if err := worker.RequestInput(ctx, task.ID, map[string]abi.InputRequest{key: {Method: abi.MethodElicit}}); err != nil {
			t.Fatal(err)
		}
		go func() {
			a, err := worker.AwaitAnswers(ctx, task.ID, []string{key})
			guest <- result{a, err}
		}()
	}
	ask("q1")
	if err := <-asking; err != nil {
		t.Fatalf("the front end never saw input_required: %v", err)
	}
	if err := front.Answer(ctx, task.ID, "q1", abi.InputResponse{Result: []byte(`{"action":"accept"}`)}); err != nil {
		t.Fatal(err)
	}
	if r := <-guest; r.err != nil || string(r.answers["q1"].Result) != `{"action":"accept"}` {
		t.Fatalf("guest got %v, %v", r.answers, r.err)
	}
	ask("q2")
	if err := front.Cancel(ctx, task.ID, "stop"); err != nil {
		t.Fatal(err)
	}
	if r := <-guest; !errors.Is(r.err, tasks.ErrTerminal) {
		t.Fatalf("guest waiting when the front end cancelled got %v, want ErrTerminal", r.err)
	}
}

// TestRedisSharedKey: processes on one prefix agree on a key, made once;
// names and prefixes keep keys apart; a key lost with Redis's data is made
// afresh.
func TestRedisSharedKey(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx := t.Context()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	a := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	b := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	other := newRedis(t, tasks.RedisOptions{})

	// Many processes asking at once still get one key.
	keys := make([][]byte, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range keys {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { keys[i], errs[i] = s.SharedKey(ctx, "state") })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("SharedKey: %v", errs[i])
		}
		if len(keys[i]) != tasks.SharedKeySize {
			t.Fatalf("SharedKey is %d bytes, want %d", len(keys[i]), tasks.SharedKeySize)
		}
		if string(keys[i]) != string(keys[0]) {
			t.Fatalf("two processes on one prefix got different keys")
		}
	}
	again, err := b.SharedKey(ctx, "state")
	if err != nil || string(again) != string(keys[0]) {
		t.Errorf("asking again: %x, %v; want the same key", again, err)
	}
	if ttl := rawClient(t).PTTL(ctx, prefix+":key:state").Val(); ttl != -1 {
		t.Errorf("%s:key:state has TTL %s, want none", prefix, ttl)
	}
	for what, s := range map[string]*tasks.Redis{"another name": a, "another prefix": other} {
		name := "state"
		if what == "another name" {
			name = "other"
		}
		k, err := s.SharedKey(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if string(k) == string(keys[0]) {
			t.Errorf("%s got the same key", what)
		}
	}
	for _, bad := range []string{"", "a:b", "{x}", "a b"} {
		if _, err := a.SharedKey(ctx, bad); err == nil {
			t.Errorf("SharedKey(%q) succeeded", bad)
		}
	}

	rawClient(t).Del(ctx, prefix+":key:state") // as a Redis restarted without its data
	fresh, err := a.SharedKey(ctx, "state")
	if err != nil || len(fresh) != tasks.SharedKeySize || string(fresh) == string(keys[0]) {
		t.Errorf("after the key was lost: %x, %v; want a new key", fresh, err)
	}
	rawClient(t).Set(ctx, prefix+":key:state", "short", 0)
	if _, err := a.SharedKey(ctx, "state"); err == nil || !strings.Contains(err.Error(), "delete") {
		t.Errorf("a damaged key: %v, want an error saying to delete it", err)
	}
}
