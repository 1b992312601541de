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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// raw reaches Redis directly, never through a test's proxy, so that
	// tests can look at what the processes stored: the tests' window on
	// behaviour no client sees (a queue entry handed back, a consumer
	// gone).
	raw *redis.Client
}

func newCluster(t testing.TB) *cluster {
	u := redisURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, url: u, prefix: "wasmhost-e2e:" + t.Name() + ":" + hex.EncodeToString(b), raw: redis.NewClient(opts)}
	t.Cleanup(func() {
		defer c.raw.Close()
		ctx := context.Background()
		iter := c.raw.Scan(ctx, 0, c.prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.raw.Del(ctx, iter.Val())
		}
	})
	return c
}

// storedStatus is task id's status as Redis holds it ("" once it is gone).
func (c *cluster) storedStatus(id string) string {
	return c.raw.HGet(context.Background(), c.prefix+":task:{"+id+"}", "status").Val()
}

// taskField is a field of task id's hash in Redis: "token" counts the runs
// started, "parked" is "1" while the task waits, guest evicted, for its
// answers.
func (c *cluster) taskField(id, field string) string {
	return c.raw.HGet(context.Background(), c.prefix+":task:{"+id+"}", field).Val()
}

// waitRuns waits until n runs of task id have started and returns when
// that was seen.
func (c *cluster) waitRuns(id string, n int) time.Time {
	c.t.Helper()
	want := strconv.Itoa(n)
	poll(c.t, fmt.Sprintf("run %d of task %s", n, id), func() bool { return c.taskField(id, "token") == want })
	return time.Now()
}

// waitParked waits until task id is parked: its guest evicted, its queue
// entry acknowledged, waiting for its answers outside the queue.
func (c *cluster) waitParked(id string) {
	c.t.Helper()
	poll(c.t, "task "+id+" parked", func() bool { return c.taskField(id, "parked") == "1" && c.pendingEntries() == 0 })
}

// queued lists the tasks in the work queue, delivered or not.
func (c *cluster) queued() []string {
	c.t.Helper()
	msgs, err := c.raw.XRange(context.Background(), c.prefix+":queue", "-", "+").Result()
	if err != nil {
		c.t.Fatalf("XRANGE of the queue: %v", err)
	}
	var out []string
	for _, m := range msgs {
		task, _ := m.Values["task"].(string)
		out = append(out, task)
	}
	return out
}

// pendingEntries is how many queue entries a worker took and has not yet
// acknowledged.
func (c *cluster) pendingEntries() int64 {
	c.t.Helper()
	p, err := c.raw.XPending(context.Background(), c.prefix+":queue", "workers").Result()
	if err != nil {
		c.t.Fatalf("XPENDING of the queue: %v", err)
	}
	return p.Count
}

// consumers is how many workers are registered with the queue's consumer
// group (0 before the first worker reads it).
func (c *cluster) consumers() int {
	cs, err := c.raw.XInfoConsumers(context.Background(), c.prefix+":queue", "workers").Result()
	if err != nil {
		return 0
	}
	return len(cs)
}

// waitConsumers waits until n workers read the queue: they are ready to
// take work.
func (c *cluster) waitConsumers(n int) {
	c.t.Helper()
	poll(c.t, fmt.Sprintf("%d workers reading the queue", n), func() bool { return c.consumers() >= n })
}

// poll checks cond every 20ms until it holds, failing the test after
// timeout. It is for state that has no notification to wait on (what a
// process stored in Redis, a port accepting connections).
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) storeArgs(redisURL string) []string {
	return []string{"--redis", redisURL, "--redis-prefix", c.prefix, "--claim-idle", claimIdle.String(),
		"--plugins", pluginsDir, "--cache-dir", cacheDir, "--log-level", "info"}
}

// worker starts `wasmhost worker`, reaching Redis at redisURL ("" for the
// cluster's).
func (c *cluster) worker(name, redisURL string) *proc {
	return c.workerWith(name, redisURL)
}

// workerWith is worker with extra flags, which win over the cluster's.
func (c *cluster) workerWith(name, redisURL string, extra ...string) *proc {
	args := append([]string{"worker", "--workers", "4"}, c.storeArgs(or(redisURL, c.url))...)
	return startProc(c.t, name, false, append(args, extra...)...)
}

// frontEnd starts `wasmhost serve --workers 0` over stdio and connects a
// client to it.
func (c *cluster) frontEnd(name, redisURL string) (*proc, *client) {
	p := startProc(c.t, name, true, append([]string{"serve", "--workers", "0"}, c.storeArgs(or(redisURL, c.url))...)...)
	return p, newClient(c.t, name, p.stdout, p.stdin)
}

// httpFrontEnd starts `wasmhost serve --workers 0 --http` on a free port
// and returns its MCP endpoint once it accepts connections.
func (c *cluster) httpFrontEnd(name string) (*proc, string) {
	c.t.Helper()
	return startHTTP(c.t, name, append([]string{"serve", "--workers", "0"}, c.storeArgs(c.url)...)...)
}

// startHTTP starts wasmhost with args plus `--http` on a free port and
// returns its MCP endpoint once it accepts connections. The port was free
// a moment before; should another process take it first, the process
// exits and is started again on another.
func startHTTP(t testing.TB, name string, args ...string) (*proc, string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		addr := freeAddr(t)
		p := startProc(t, name, false, append(append([]string(nil), args...), "--http", addr)...)
		exited := false
		poll(t, name+" accepting connections on "+addr, func() bool {
			select {
			case <-p.exited:
				exited = true
				return true
			default:
			}
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
		if !exited {
			return p, "http://" + addr + "/mcp"
		}
		if attempt == 3 {
			t.Fatalf("%s exited before it served, 3 times: %v", name, p.err)
		}
	}
}

// freeAddr is a loopback address with a port that was free just now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// proc is one wasmhost process. Its stderr (the log) is kept and shown if
// the test fails; tests never wait on or assert its wording.
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

// waitLog waits until the process has logged a line containing text, and
// returns that line. It is for the few steps inside a process that leave no
// other trace: a guest evicted with the embedded store, an outcome refused.
func (p *proc) waitLog(text string) string {
	p.t.Helper()
	var line string
	poll(p.t, p.name+" logging "+strconv.Quote(text), func() bool {
		line = p.log.find(text)
		return line != ""
	})
	return line
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

// logLines collects a process's stderr line by line.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func newLogLines() *logLines { return &logLines{} }

// find returns the first complete line containing text, or "".
func (l *logLines) find(text string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, text) {
			return line
		}
	}
	return ""
}

// count is how many complete lines contain text.
func (l *logLines) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, text) {
			n++
		}
	}
	return n
}

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
	return len(b), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + string(l.partial)
}

// scanLines is bufio.Scanner with room for large MCP messages.
func scanLines(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return sc
}
