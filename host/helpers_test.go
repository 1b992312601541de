package host

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/gobuild"
)

// Test guests are built from testdata/guests by the test run itself and
// cached by content under the system temp dir, so only the first run on a
// machine pays for the builds. Nothing built is ever committed.
var (
	guestBuilder = &gobuild.Builder{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-guests")}
	guestMu      sync.Mutex
	guestPaths   = map[string]string{}
)

// guest returns the path of the built test guest testdata/guests/name.
func guest(t testing.TB, name string) string {
	t.Helper()
	guestMu.Lock()
	defer guestMu.Unlock()
	if p, ok := guestPaths[name]; ok {
		return p
	}
	p, _, err := guestBuilder.Build(context.Background(), filepath.Join("testdata", "guests", name))
	if err != nil {
		t.Fatalf("build test guest %s: %v", name, err)
	}
	guestPaths[name] = p
	return p
}

// compileCacheDir keeps wazero's compiled code across test runs.
var compileCacheDir = filepath.Join(os.TempDir(), "wasmhost-test-compile")

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logEntry is one line of a JSON log: tests look at its level and
// attributes, never at its wording.
type logEntry map[string]any

// entries decodes the JSON log lines written so far.
func (b *logBuffer) entries(t testing.TB) []logEntry {
	t.Helper()
	var out []logEntry
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var e logEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// find returns the entries whose fields include every one of want.
func (b *logBuffer) find(t testing.TB, want logEntry) []logEntry {
	t.Helper()
	var out []logEntry
next:
	for _, e := range b.entries(t) {
		for k, v := range want {
			if e[k] != v {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// newRuntime starts a runtime closed at the end of the test. Its log, in
// JSON, goes to the returned buffer.
func newRuntime(t testing.TB, opts Options) (*Runtime, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug, JSONFormat: true})
	}
	if opts.CacheDir == "" {
		opts.CacheDir = compileCacheDir
	}
	r, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r, logs
}

func load(t testing.TB, r *Runtime, name string) *Plugin {
	t.Helper()
	p, err := r.Load(context.Background(), guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testEnv records what a guest sends and answers input with a function.
type testEnv struct {
	input func(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error)
	// logged receives every log line, if set.
	logged chan string

	mu       sync.Mutex
	logs     []string
	progress []abi.Progress
}

func (e *testEnv) Input(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
	return e.input(ctx, reqs)
}

func (e *testEnv) Log(level abi.LogLevel, msg string) {
	e.mu.Lock()
	e.logs = append(e.logs, msg)
	e.mu.Unlock()
	if e.logged != nil {
		e.logged <- msg
	}
}

func (e *testEnv) Progress(p abi.Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.progress = append(e.progress, p)
}
