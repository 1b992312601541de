package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
	"github.com/wasmhost/wasmhost/testdata/hostile"
	"github.com/wasmhost/wasmhost/worker"
)

// spinner loads a raw plugin whose tool "spin" loops until cancelled, in a
// runtime of its own closed once the worker r has stopped.
func spinner(t *testing.T, r *rig) host.ToolEntry {
	t.Helper()
	rt, err := host.New(context.Background(), host.Options{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-compile")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stopWorker() // the spinners end with the worker
		rt.Close(context.Background())
	})
	p := hostile.Spinner()
	path := filepath.Join(t.TempDir(), "spin.wasm")
	if err := os.WriteFile(path, p.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pl, err := rt.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return host.ToolEntry{Tool: pl.Tools()[0], Plugin: pl}
}

// TestOnePluginCannotStarveTheOthers: calls of a tool that never returns,
// more than there are slots, ahead of greet in the queue: greet still runs,
// while every spinner is still spinning.
func TestOnePluginCannotStarveTheOthers(t *testing.T) {
	ft := tools(t, "greet")
	r := start(t, ft, nil)
	ft["spin"] = spinner(t, r)
	var spins []*tasks.Task
	for range 8 {
		task := r.newTask("spin", `{}`, false)
		r.store.q.push(task.ID, false)
		spins = append(spins, task)
	}
	greet := r.newTask("greet", `{"name":"Ada"}`, false)
	r.store.q.push(greet.ID, false)
	if got := r.finished(greet.ID); got.Status != tasks.Completed || resultText(t, got) != "Hello, Ada!" {
		t.Fatalf("greet ended %s with %q", got.Status, got.Result)
	}
	for _, s := range spins {
		cur, err := r.store.Get(r.ctx, s.ID)
		if err != nil || cur.Status.Terminal() {
			t.Fatalf("spinner %s: %v, %v; want it still running", s.ID, cur, err)
		}
	}
}

// BenchmarkGreetBesideSpinners measures a greet call (queued, run, result
// recorded) while 8 calls of a tool that never returns hold their
// plugin's share of 8 slots, as `wasmhost serve` runs by default.
// "unreserved" is the same without worker.ReserveProcs, as before it.
func BenchmarkGreetBesideSpinners(b *testing.B) {
	for _, reserve := range []bool{true, false} {
		for _, n := range []int{0, 8} {
			name := fmt.Sprintf("spinners=%d", n)
			if !reserve {
				name += "/unreserved"
			}
			b.Run(name, func(b *testing.B) {
				if reserve {
					defer runtime.GOMAXPROCS(worker.ReserveProcs(8))
				}
				benchGreet(b, n)
			})
		}
	}
}

func benchGreet(b *testing.B, spinners int) {
	ft := fakeTools{}
	e, ok := examplePlugins(b).Lookup("greet")
	if !ok {
		b.Fatal("no greet")
	}
	ft["greet"] = e
	base := tasks.NewMemory()
	s := scriptedStore{Store: base, q: &scriptedQueue{ch: make(chan *delivery, 64)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher, err := tasks.NewWatcher(ctx, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := host.New(ctx, host.Options{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-compile")})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	p := hostile.Spinner()
	path := filepath.Join(b.TempDir(), "spin.wasm")
	os.WriteFile(path, p.Bytes(), 0o644)
	pl, err := rt.Load(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	ft["spin"] = host.ToolEntry{Tool: pl.Tools()[0], Plugin: pl}
	w := worker.New(worker.Options{Store: s, Tools: ft, Concurrency: 8})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	defer func() { stop(); <-done }()
	newTask := func(tool, args string) *tasks.Task {
		now := time.Now()
		task := &tasks.Task{ID: tasks.NewID(), Kind: tasks.KindTask, Owner: "bench", Tool: tool, Args: json.RawMessage(args),
			Status: tasks.Working, CreatedAt: now, UpdatedAt: now, TTL: time.Hour, PollInterval: time.Second}
		if err := s.Create(ctx, task); err != nil {
			b.Fatal(err)
		}
		s.q.push(task.ID, false)
		return task
	}
	for range spinners {
		newTask("spin", `{}`)
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		g := newTask("greet", `{"name":"Ada"}`)
		if _, err := watcher.Wait(ctx, g.ID, tasks.IsTerminal); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}

// TestToolCap: a tool that declares maxConcurrency 1 runs one call at a
// time, leaving the plugin's other slot to its other tool.
func TestToolCap(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := scriptedStore{Store: tasks.NewMemory(), q: &scriptedQueue{ch: make(chan *delivery, 16)}}
	watcher, err := tasks.NewWatcher(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := host.New(ctx, host.Options{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-compile")})
	if err != nil {
		t.Fatal(err)
	}
	// "spin" (4 bytes) loops; "quick" returns.
	p := hostile.Plugin{
		Describe: `{"tools":[{"name":"spin","inputSchema":{"type":"object"},"maxConcurrency":1},{"name":"quick","inputSchema":{"type":"object"}}]}`,
		Result:   hostile.Text("quick"),
	}
	spinIfNamed4 := append([]byte{0x20, 0x01}, hostile.I32Const(nil, 4)...)
	spinIfNamed4 = append(spinIfNamed4, 0x46, 0x04, 0x40) // i32.eq if
	spinIfNamed4 = append(append(spinIfNamed4, hostile.Loop...), 0x0b)
	p.Call = p.Return(spinIfNamed4)
	path := filepath.Join(t.TempDir(), "capped.wasm")
	os.WriteFile(path, p.Bytes(), 0o644)
	pl, err := rt.Load(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ft := fakeTools{}
	for _, tool := range pl.Tools() {
		ft[tool.Name] = host.ToolEntry{Tool: tool, Plugin: pl}
	}
	w := worker.New(worker.Options{Store: s, Tools: ft, Concurrency: 2, PerPlugin: 2})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.Run(wctx); close(done) }()
	defer func() {
		stop()
		<-done
		rt.Close(context.Background())
		cancel()
		<-watcher.Done()
	}()
	newTask := func(tool string) *tasks.Task {
		now := time.Now()
		task := &tasks.Task{ID: tasks.NewID(), Kind: tasks.KindTask, Owner: "test", Tool: tool, Args: json.RawMessage(`{}`),
			Status: tasks.Working, CreatedAt: now, UpdatedAt: now, TTL: time.Hour, PollInterval: time.Second}
		if err := s.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
		s.q.push(task.ID, false)
		return task
	}
	newTask("spin")
	newTask("spin")
	quick := newTask("quick")
	got, err := watcher.Wait(ctx, quick.ID, tasks.IsTerminal)
	if err != nil {
		t.Fatalf("quick never ran beside two calls of a tool capped at one: %v", err)
	}
	if got.Status != tasks.Completed {
		t.Fatalf("quick ended %s: %s", got.Status, got.Result)
	}
}

// TestParkedCallsNoDeadlock: more calls of one plugin than its share, run
// slots and parking places together; each guest asks and waits. Every one
// gets to ask: a call that won its plugin's place never waits for a run
// slot held by calls waiting for that place.
func TestParkedCallsNoDeadlock(t *testing.T) {
	r := startWith(t, tools(t, "confirm_delete"), nil, worker.Options{Concurrency: 2, PerPlugin: 1, MaxParked: 1, EvictAfter: time.Hour})
	var ids []string
	for i := range 14 {
		task := r.newTask("confirm_delete", fmt.Sprintf(`{"filename":"f%d.txt"}`, i), false)
		r.store.q.push(task.ID, false)
		ids = append(ids, task.ID)
	}
	for _, id := range ids {
		r.asking(id)
	}
}
