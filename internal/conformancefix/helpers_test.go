package conformancefix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
)

// The fixtures are built by the test run itself and cached by content under
// the system temp dir; wazero's compiled code is cached there too.
var (
	cacheRoot = filepath.Join(os.TempDir(), "wasmhost-test-cache")
	builder   = &gobuild.Builder{CacheDir: filepath.Join(cacheRoot, "build")}

	builtMu sync.Mutex
	built   = map[string]string{}
)

// fixture builds testdata/conformance/<dir> and returns the .wasm's path.
func fixture(t *testing.T, dir string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if p, ok := built[dir]; ok {
		return p
	}
	p, _, err := builder.Build(context.Background(), filepath.Join("..", "..", "testdata", "conformance", dir))
	if err != nil {
		t.Fatalf("building fixture %s: %v", dir, err)
	}
	built[dir] = p
	return p
}

// load builds and loads a fixture in a runtime of its own, closed at the
// end of the test.
func load(t *testing.T, dir string) *host.Plugin {
	t.Helper()
	path := fixture(t, dir)
	r, err := host.New(context.Background(), host.Options{CacheDir: filepath.Join(cacheRoot, "compile")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	p, err := r.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Raw answers for a script. unsupported stands for the client lacking the
// capability.
const (
	unsupported = "!unsupported"
	aliceName   = `{"action":"accept","content":{"name":"Alice"}}`
	paris       = `{"role":"assistant","content":{"type":"text","text":"The capital of France is Paris."},"model":"test-model","stopReason":"endTurn"}`
	hello       = `{"role":"assistant","content":{"type":"text","text":"Hello there!"},"model":"test-model","stopReason":"endTurn"}`
	testRoot    = `{"roots":[{"uri":"file:///test/root","name":"Test Root"}]}`
)

// env is a scripted host.Env and host.Detacher. It answers the n-th request
// under a key with script[key][n] (the last entry once they run out; ""
// is the key of unnamed requests), and records everything the guest does.
type env struct {
	script map[string][]string
	// detach is what Detach answers.
	detach bool
	// onProgress, if set, sees every progress report.
	onProgress func(abi.Progress)

	mu       sync.Mutex
	asked    map[string]int
	batches  [][]abi.InputRequest
	events   []string // "input:<keys>", "detach", "log:<msg>"
	progress []abi.Progress
}

func (e *env) Input(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.asked == nil {
		e.asked = map[string]int{}
	}
	e.batches = append(e.batches, reqs)
	keys := make([]string, len(reqs))
	out := make([]abi.InputResponse, len(reqs))
	for i, req := range reqs {
		keys[i] = req.Key
		answers := e.script[req.Key]
		if len(answers) == 0 {
			out[i].Error = &abi.InputError{Code: abi.ErrCodeFailed, Message: "the script has no answer for key " + req.Key}
			continue
		}
		a := answers[min(e.asked[req.Key], len(answers)-1)]
		e.asked[req.Key]++
		if a == unsupported {
			out[i].Error = &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "the client did not declare it"}
		} else {
			out[i].Result = json.RawMessage(a)
		}
	}
	e.events = append(e.events, "input:"+strings.Join(keys, ","))
	return out, nil
}

func (e *env) Log(_ abi.LogLevel, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, "log:"+msg)
}

func (e *env) Progress(p abi.Progress) {
	e.mu.Lock()
	e.progress = append(e.progress, p)
	e.mu.Unlock()
	if e.onProgress != nil {
		e.onProgress(p)
	}
}

func (e *env) Detach(context.Context) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, "detach")
	return e.detach
}

// keys lists the keys of every batch, "|" between batches.
func (e *env) keys() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b []string
	for _, batch := range e.batches {
		k := make([]string, len(batch))
		for i, req := range batch {
			k[i] = req.Key
		}
		b = append(b, strings.Join(k, ","))
	}
	return strings.Join(b, "|")
}

// params returns the params of the first request asked under key.
func (e *env) params(key string) json.RawMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, batch := range e.batches {
		for _, req := range batch {
			if req.Key == key {
				return req.Params
			}
		}
	}
	return nil
}

// compact returns raw without insignificant space, for comparisons.
func compact(t *testing.T, raw string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		t.Fatalf("compact %s: %v", raw, err)
	}
	return b.String()
}
