package tasks_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

// The Redis tests need a real server: REDIS_URL, by default
// redis://127.0.0.1:6379. Without one they fail when CI=true and are
// skipped, loudly, otherwise. Each test uses its own key prefix, so runs
// may share a server, and deletes its keys when it ends.

var (
	redisOnce sync.Once
	redisErr  error
)

func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379"
	}
	redisOnce.Do(func() {
		opts, err := redis.ParseURL(u)
		if err != nil {
			redisErr = err
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		redisErr = c.Ping(ctx).Err()
		if redisErr != nil && os.Getenv("CI") != "true" {
			fmt.Fprintf(os.Stderr, "\n*** REDIS TESTS SKIPPED: no Redis at %s (%v).\n*** Start redis-server or set REDIS_URL; with CI=true they fail instead.\n\n", u, redisErr)
		}
	})
	if redisErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s: %v (CI=true: the Redis tests must run)", u, redisErr)
		}
		t.Skipf("SKIPPED: no Redis at %s: %v; start redis-server or set REDIS_URL", u, redisErr)
	}
	return u
}

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
