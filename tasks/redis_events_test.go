package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/tasks"
)

// The Redis event store is a go-sdk EventStore.
var _ mcp.EventStore = (*tasks.RedisEventStore)(nil)

func replay(t *testing.T, s *tasks.RedisEventStore, session, stream string, index int) ([]string, error) {
	t.Helper()
	var got []string
	for data, err := range s.After(context.Background(), session, stream, index) {
		if err != nil {
			return got, err
		}
		got = append(got, string(data))
	}
	return got, nil
}

func TestRedisEventStoreReplaysWhatWasMissed(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	// Two front ends on one Redis and prefix.
	one := newRedis(t, tasks.RedisOptions{Prefix: prefix}).EventStore(tasks.StreamRetention{MaxEvents: 4})
	two := newRedis(t, tasks.RedisOptions{Prefix: prefix}).EventStore(tasks.StreamRetention{MaxEvents: 4})

	if got, err := replay(t, two, "s1", "a", -1); err != nil || len(got) != 0 {
		t.Fatalf("a stream with nothing yet: %v %v", got, err)
	}
	for i := range 3 {
		if err := one.Append(ctx, "s1", "a", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := one.Append(ctx, "s1", "b", []byte("other stream")); err != nil {
		t.Fatal(err)
	}
	got, err := replay(t, two, "s1", "a", 0) // saw m0, missed m1 and m2
	if err != nil || fmt.Sprint(got) != "[m1 m2]" {
		t.Fatalf("after 0: %v %v", got, err)
	}
	if got, err := replay(t, two, "s1", "a", 2); err != nil || len(got) != 0 {
		t.Fatalf("after the last: %v %v", got, err)
	}

	// Beyond MaxEvents the oldest go; asking for them is an error, never a
	// partial replay.
	for i := 3; i < 6; i++ {
		_ = one.Append(ctx, "s1", "a", fmt.Appendf(nil, "m%d", i))
	}
	if got, err := replay(t, two, "s1", "a", 0); !errors.Is(err, tasks.ErrEventsDropped) || len(got) != 0 {
		t.Fatalf("after a dropped event: %v %v", got, err)
	}
	if got, err := replay(t, two, "s1", "a", 1); err != nil || fmt.Sprint(got) != "[m2 m3 m4 m5]" {
		t.Fatalf("after 1: %v %v", got, err)
	}

	// A session closed by one front end (it shuts down) can still be
	// resumed on another; a forgotten one cannot.
	if err := one.SessionClosed(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if got, err := replay(t, two, "s1", "a", 4); err != nil || fmt.Sprint(got) != "[m5]" {
		t.Fatalf("after SessionClosed: %v %v", got, err)
	}
	if err := two.ForgetSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := replay(t, one, "s1", "a", 1); !errors.Is(err, tasks.ErrEventsDropped) {
		t.Fatalf("after ForgetSession: %v", err)
	}
}

func TestRedisEventStoreExpires(t *testing.T) {
	prefix := testPrefix(t)
	t.Cleanup(func() { deleteKeys(t, prefix) })
	s := newRedis(t, tasks.RedisOptions{Prefix: prefix}).EventStore(tasks.StreamRetention{TTL: 50 * time.Millisecond})
	if err := s.Append(context.Background(), "s", "a", []byte("m0")); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t)
	ttl := c.PTTL(context.Background(), prefix+":sse:{s}:a").Val()
	if ttl <= 0 || ttl > 50*time.Millisecond {
		t.Fatalf("stream key TTL %v, want (0, 50ms]", ttl)
	}
}
