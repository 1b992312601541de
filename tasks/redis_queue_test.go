package tasks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

// twoWorkers opens two stores on one prefix: two worker processes.
func twoWorkers(t *testing.T, claimIdle time.Duration) (a, b *tasks.Redis, prefix string) {
	prefix = testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	a = newRedis(t, tasks.RedisOptions{Prefix: prefix, ClaimIdle: claimIdle, Consumer: "a"})
	b = newRedis(t, tasks.RedisOptions{Prefix: prefix, ClaimIdle: claimIdle, Consumer: "b"})
	return a, b, prefix
}

// TestRedisQueueReclaim: an entry whose worker died goes to another
// worker, marked redelivered, once it has been idle for ClaimIdle.
func TestRedisQueueReclaim(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const claimIdle = 400 * time.Millisecond
	a, b, _ := twoWorkers(t, claimIdle)
	id := tasks.NewID()
	if err := a.Queue().Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	d, err := a.Queue().Next(ctx)
	if err != nil || d.TaskID() != id {
		t.Fatalf("Next = %v, %v", d, err)
	}
	took := time.Now()
	_ = a.Close() // the worker dies without acknowledging

	got, err := b.Queue().Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.TaskID() != id || !got.Redelivered() {
		t.Errorf("Next = %s, redelivered %v; want %s redelivered", got.TaskID(), got.Redelivered(), id)
	}
	if since := time.Since(took); since < claimIdle {
		t.Errorf("reclaimed after %s, before ClaimIdle (%s)", since, claimIdle)
	}
	for range 2 {
		if err := got.Ack(ctx); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
	short, stop := context.WithTimeout(ctx, 3*claimIdle)
	defer stop()
	if d, err := b.Queue().Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after the ack, Next = %v, %v; want nothing", d, err)
	}
}

// TestRedisQueueHeartbeat: a live worker keeps its entry however long the
// work takes; nobody reclaims it, and its delivery count stays 1.
func TestRedisQueueHeartbeat(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const claimIdle = 300 * time.Millisecond
	a, b, prefix := twoWorkers(t, claimIdle)
	id := tasks.NewID()
	if err := a.Queue().Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	d, err := a.Queue().Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The other worker looks for abandoned work for six times ClaimIdle.
	long, stop := context.WithTimeout(ctx, 6*claimIdle)
	defer stop()
	if got, err := b.Queue().Next(long); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a live worker's entry went to another: %v, %v", got, err)
	}
	pending, err := rawClient(t).XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: prefix + ":queue", Group: "workers", Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Consumer != "a" || pending[0].RetryCount != 1 || pending[0].Idle >= claimIdle {
		t.Errorf("pending entries %+v; want one, held by a, delivered once, idle less than %s", pending, claimIdle)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRedisQueueLostGroup: a Redis that restarted without its data has no
// stream and no group; the queue makes them again.
func TestRedisQueueLostGroup(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix})
	if err := rawClient(t).Del(ctx, prefix+":queue").Err(); err != nil {
		t.Fatal(err)
	}
	id := tasks.NewID()
	if err := s.Queue().Enqueue(ctx, id); err != nil {
		t.Fatal(err)
	}
	d, err := s.Queue().Next(ctx)
	if err != nil || d.TaskID() != id {
		t.Fatalf("Next after the group was lost = %v, %v; want %s", d, err, id)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRedisQueueDrop: a fenced-off run drops its entry: gone if its
// process still holds it, left alone if another worker reclaimed it.
func TestRedisQueueDrop(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a, _, prefix := twoWorkers(t, time.Minute)
	raw := rawClient(t)
	stream := prefix + ":queue"
	take := func() tasks.Delivery {
		if err := a.Queue().Enqueue(ctx, tasks.NewID()); err != nil {
			t.Fatal(err)
		}
		d, err := a.Queue().Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	mine := take()
	for range 2 {
		if err := mine.Drop(ctx); err != nil {
			t.Fatalf("Drop: %v", err)
		}
	}
	if n := raw.XLen(ctx, stream).Val(); n != 0 {
		t.Errorf("after dropping the only entry the stream holds %d", n)
	}

	taken := take()
	// Another worker reclaims it (its process was cut off, say).
	pending := raw.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "workers", Start: "-", End: "+", Count: 10}).Val()
	if len(pending) != 1 {
		t.Fatalf("pending %v, want one entry", pending)
	}
	if err := raw.XClaimJustID(ctx, &redis.XClaimArgs{Stream: stream, Group: "workers", Consumer: "b", Messages: []string{pending[0].ID}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := taken.Drop(ctx); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	pending = raw.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "workers", Start: "-", End: "+", Count: 10}).Val()
	if len(pending) != 1 || pending[0].Consumer != "b" {
		t.Errorf("after a dropped an entry b took over: pending %v, want it still b's", pending)
	}
}

// TestRedisQueueIdleWorkerIsListed: a worker waiting on an empty queue is a
// consumer of the group (XINFO CONSUMERS lists it), though Redis creates
// none for a blocked XREADGROUP; and again after the group was lost.
func TestRedisQueueIdleWorkerIsListed(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix, Consumer: "idle"})
	raw := rawClient(t)
	listed := func() bool {
		cs, err := raw.XInfoConsumers(ctx, prefix+":queue", "workers").Result()
		return err == nil && len(cs) == 1 && cs[0].Name == "idle"
	}
	waitListed := func(what string) {
		t.Helper()
		waiting, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = s.Queue().Next(waiting)
		}()
		for !listed() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: the waiting worker is not in XINFO CONSUMERS", what)
			case <-time.After(20 * time.Millisecond): // polling Redis state, which has no notification
			}
		}
		stop()
		<-done
	}
	waitListed("first wait")
	if err := raw.Del(ctx, prefix+":queue").Err(); err != nil {
		t.Fatal(err)
	}
	// A lost group is made again by the next Next, which then lists the
	// worker again.
	waitListed("after the group was lost")
}
