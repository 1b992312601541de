// Package redistest gives tests a real Redis server: its URL, checked once
// per test binary, and a Proxy that can take Redis away from a client and
// give it back. It is test support only; production code must not import
// it.
package redistest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	once    sync.Once
	pingErr error
)

// URL is REDIS_URL (default redis://127.0.0.1:6379). When no server answers
// there, the test fails if CI=true and is skipped, loudly, otherwise: a
// missing service never passes silently in CI.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379"
	}
	once.Do(func() {
		opts, err := redis.ParseURL(u)
		if err != nil {
			pingErr = err
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		pingErr = c.Ping(ctx).Err()
		if pingErr != nil && os.Getenv("CI") != "true" {
			fmt.Fprintf(os.Stderr, "\n*** REDIS TESTS SKIPPED: no Redis at %s (%v).\n*** Start redis-server or set REDIS_URL; with CI=true they fail instead.\n\n", u, pingErr)
		}
	})
	if pingErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s: %v (CI=true: the Redis tests must run)", u, pingErr)
		}
		t.Skipf("SKIPPED: no Redis at %s: %v; start redis-server or set REDIS_URL", u, pingErr)
	}
	return u
}

// Proxy stands between clients and Redis, so that a test can take Redis
// away (Cut) and give it back (Restore) without touching the server other
// tests share.
type Proxy struct {
	// URL is the Redis URL to give clients: the proxy's address.
	URL string

	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// StartProxy proxies to the server at redisURL until t ends.
func StartProxy(t testing.TB, redisURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	u.Host = ln.Addr().String()
	p.URL = u.String()
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

// Cut drops every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
