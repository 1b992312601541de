package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/testdata/hostile"
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
	p := hostile.Plugin{Describe: hostile.Tool("spin"), Result: hostile.Text("unreachable")}
	p.Call = p.Return(hostile.Loop)
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
