// Package distributed_test runs wasmhost as separate processes sharing a
// real Redis (front ends, workers), kills them with SIGKILL and SIGTERM,
// cuts Redis away from them, and drives them with a raw MCP client. See
// README.md.
package distributed_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/internal/redistest"
)

var (
	buildFlags []string // for go build of the binary (race_test.go adds -race)
	bin        string   // the wasmhost binary, built by TestMain
	pluginsDir string   // the example plugins
	cacheDir   string   // plugin builds and compiled code, shared with other tests
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmhost-distributed-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "wasmhost")
	args := append(append([]string{"build"}, buildFlags...), "-o", bin, "github.com/wasmhost/wasmhost/cmd/wasmhost")
	build := exec.Command("go", args...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building wasmhost: %v\n%s", err, out)
		os.Exit(1)
	}
	pluginsDir, _ = filepath.Abs(filepath.Join("..", "..", "plugins"))
	cacheDir = filepath.Join(os.TempDir(), "wasmhost-test-cache")
	// Build and compile the plugins once, here, so that the processes the
	// tests start (several at once) find them cached instead of all
	// building them at the same time on a loaded machine.
	var dirs []string
	entries, _ := os.ReadDir(pluginsDir)
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(pluginsDir, e.Name()))
		}
	}
	warm := exec.Command(bin, append(append([]string{"build"}, dirs...), "--cache-dir", cacheDir, "--log-level", "warn")...)
	if out, err := warm.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the plugins: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// timeout bounds every wait in these tests: long enough for a loaded CI
// machine, short enough that a hang fails the test rather than the run.
const timeout = 90 * time.Second

// claimIdle is the --claim-idle of the crash tests.
const claimIdle = 2 * time.Second

// redisURL is the Redis the tests share (see redistest.URL: CI fails
// without one).
func redisURL(t testing.TB) string { return redistest.URL(t) }

// cluster is one deployment: processes sharing a Redis URL and a key
// prefix of their own, deleted when the test ends.
type cluster struct {
	t      testing.TB
	url    string
	prefix string
}

func newCluster(t testing.TB) *cluster {
	u := redisURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	c := &cluster{t: t, url: u, prefix: "wasmhost-e2e:" + t.Name() + ":" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		opts, _ := redis.ParseURL(u)
		rc := redis.NewClient(opts)
		defer rc.Close()
		ctx := context.Background()
		iter := rc.Scan(ctx, 0, c.prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	return c
}

func (c *cluster) storeArgs(redisURL string) []string {
	return []string{"--redis", redisURL, "--redis-prefix", c.prefix, "--claim-idle", claimIdle.String(),
		"--plugins", pluginsDir, "--cache-dir", cacheDir, "--log-level", "info"}
}

// worker starts `wasmhost worker`, reaching Redis at redisURL ("" for the
// cluster's).
func (c *cluster) worker(name, redisURL string) *proc {
	return startProc(c.t, name, false, append([]string{"worker", "--workers", "4"}, c.storeArgs(or(redisURL, c.url))...)...)
}

// frontEnd starts `wasmhost serve --workers 0` over stdio and connects a
// client to it.
func (c *cluster) frontEnd(name, redisURL string) (*proc, *client) {
	p := startProc(c.t, name, true, append([]string{"serve", "--workers", "0"}, c.storeArgs(or(redisURL, c.url))...)...)
	return p, newClient(c.t, name, p.stdout, p.stdin)
}

// httpFrontEnd starts `wasmhost serve --workers 0 --http` on a free port
// and returns its MCP endpoint.
func (c *cluster) httpFrontEnd(name string) (*proc, string) {
	p := startProc(c.t, name, false, append([]string{"serve", "--workers", "0", "--http", "127.0.0.1:0"}, c.storeArgs(c.url)...)...)
	m := p.waitLog(regexp.MustCompile(`serving MCP over HTTP: url=(\S+)`))
	return p, m[1]
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// proc is one wasmhost process. Its stderr (the log) is kept, searchable
// while it runs, and shown if the test fails.
type proc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// stdout is the JSON-RPC channel of a stdio front end.
	stdout io.Reader
	log    *logLines
	exited chan struct{}
	err    error // once exited is closed
}

func startProc(t testing.TB, name string, stdio bool, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), log: newLogLines(), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "WASMHOST_REDIS_URL=", "WASMHOST_REDIS_PREFIX=")
	p.cmd.Stderr = p.log
	if stdio {
		var err error
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("--- log of %s (%s):\n%s", name, strings.Join(args, " "), p.log.String())
		}
	})
	return p
}

// kill ends the process with SIGKILL, as a crash would: no clean-up runs.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9 %s: %v", p.name, err)
	}
	<-p.exited
}

// terminate sends SIGTERM and returns how the process exited and how long
// it took.
func (p *proc) terminate() (error, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
		return p.err, time.Since(start)
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s of SIGTERM", p.name, timeout)
		return nil, 0
	}
}

// waitLog waits for a log line matching re and returns its submatches.
func (p *proc) waitLog(re *regexp.Regexp) []string {
	p.t.Helper()
	m, err := p.log.wait(re, p.exited, timeout)
	if err != nil {
		p.t.Fatalf("%s: waiting for a log line matching %q: %v", p.name, re, err)
	}
	return m
}

// logLines collects a process's stderr line by line and wakes whoever
// waits for a line.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{}
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(b), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + string(l.partial)
}

func (l *logLines) wait(re *regexp.Regexp, exited <-chan struct{}, d time.Duration) ([]string, error) {
	deadline := time.After(d)
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.lines); seen++ {
			if m := re.FindStringSubmatch(l.lines[seen]); m != nil {
				l.mu.Unlock()
				return m, nil
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-exited:
			return nil, fmt.Errorf("the process exited")
		case <-deadline:
			return nil, fmt.Errorf("not within %s", d)
		}
	}
}

// scanLines is bufio.Scanner with room for large MCP messages.
func scanLines(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return sc
}
