package elicit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/tasks"
)

// timedClient answers at once and notes when each question arrived.
type timedClient struct {
	arrived chan time.Time
	answer  chan time.Time
}

func (c *timedClient) Ask(context.Context, *tasks.Task, abi.InputRequest) (json.RawMessage, error) {
	c.arrived <- time.Now()
	c.answer <- time.Now()
	return json.RawMessage(`{"action":"accept","content":{"confirm":true}}`), nil
}

// benchmarkRelay measures the relay's two halves through store: a guest
// asks → the client has the question; the client answers → the guest has
// the answer. It reports their p50 and p99.
func benchmarkRelay(b *testing.B, store tasks.Store) {
	relay := elicit.NewRelay(store, hclog.NewNullLogger())
	defer relay.Close()
	c := &timedClient{arrived: make(chan time.Time, 1), answer: make(chan time.Time, 1)}
	front(b, store, relay, c)
	q := []abi.InputRequest{elicitation("confirm?")}
	var asked, resumed []time.Duration
	b.ResetTimer()
	for b.Loop() {
		env := elicit.NewGuestEnv(store, newTask(b, store, abi.MethodElicit), tasks.Run{}, hclog.NewNullLogger())
		start := time.Now()
		if _, err := env.Input(context.Background(), q); err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		asked = append(asked, (<-c.arrived).Sub(start))
		resumed = append(resumed, end.Sub(<-c.answer))
	}
	report(b, "ask", asked)
	report(b, "resume", resumed)
}

func report(b *testing.B, name string, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), name+"-p99-µs")
}

func BenchmarkRelayRoundTrip(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchmarkRelay(b, tasks.NewMemory()) })
	b.Run("redis", func(b *testing.B) { benchmarkRelay(b, newRedis(b)) })
}

// newRedis opens a Redis store at REDIS_URL (default
// redis://127.0.0.1:6379) on a key prefix of its own, deleted afterwards.
// Without a server it fails when CI=true and skips otherwise.
func newRedis(b *testing.B) tasks.Store {
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379"
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := "wasmhost-bench:" + b.Name() + ":" + hex.EncodeToString(rnd[:])
	s, err := tasks.NewRedis(context.Background(), tasks.RedisOptions{URL: u, Prefix: prefix})
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal(err)
		}
		b.Skipf("SKIPPED: %v", err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		opts, _ := redis.ParseURL(u)
		c := redis.NewClient(opts)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return s
}
