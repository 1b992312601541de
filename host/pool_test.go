package host

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

// TestPoolReusesRestoredInstances checks that a pooled instance is used
// again after a clean call, and that nothing the first call left in guest
// memory or globals reaches the second (count reports its Go variable).
func TestPoolReusesRestoredInstances(t *testing.T) {
	for _, cow := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "cow"}[cow], func(t *testing.T) { testPoolReuse(t, cow) })
	}
}

func testPoolReuse(t *testing.T, cow bool) {
	r, _ := newRuntime(t, Options{PoolSize: 2, CopyOnWriteSnapshots: cow})
	p := load(t, r, "echo")
	if p.snap == nil || p.pool == nil {
		t.Fatal("no snapshot or no pool for the echo guest")
	}
	if cow && runtime.GOOS == "linux" && p.snap.image == nil {
		t.Error("no copy-on-write image of the snapshot on Linux")
	}
	for i := range 3 {
		res, err := p.Call(context.Background(), "count", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].Text; got != "1" {
			t.Fatalf("call %d: count = %s; a restored instance must not remember earlier calls", i, got)
		}
	}
	if inst := <-p.pool; cow && runtime.GOOS == "linux" && (inst.lm == nil || !inst.lm.imageMapped()) {
		t.Error("the pooled instance's memory is not the snapshot mapped copy-on-write")
	} else {
		p.pool <- inst
	}
	if hits := p.hits.Load(); hits != 2 {
		t.Errorf("pool hits = %d after 3 sequential calls, want 2 (the first makes the instance)", hits)
	}
	// Memory that grew past the snapshot cannot be restored: the instance
	// is closed, and the next call gets another.
	if _, err := p.Call(context.Background(), "hog", []byte(`{"mb":32}`), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(p.pool); n != 0 {
		t.Errorf("%d instances pooled after a call that grew memory, want 0", n)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(p.pool); n != 0 {
		t.Errorf("%d instances left in the pool after Close", n)
	}
}

// TestPoolRetiredAfterFailure checks that a plugin whose pooled instances
// cannot be made is retired from pooling and its calls still run.
func TestPoolRetiredAfterFailure(t *testing.T) {
	r, _ := newRuntime(t, Options{PoolSize: 2})
	p := load(t, r, "echo")
	broken := *p.snap
	broken.size = 1 << 31 // past the memory limit: restoring cannot grow to it
	p.snap = &broken
	for range 2 {
		res, err := p.Call(context.Background(), "count", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].Text; got != "1" {
			t.Fatalf("count = %s, want 1", got)
		}
	}
	if !p.retired.Load() {
		t.Error("pooling not retired after a failed pooled instantiation")
	}
	if n := len(p.pool); n != 0 {
		t.Errorf("%d instances pooled after retirement", n)
	}
}

// TestFreshInstances checks the snapshot-free policy.
func TestFreshInstances(t *testing.T) {
	r, _ := newRuntime(t, Options{FreshInstances: true})
	p := load(t, r, "echo")
	if p.snap != nil || p.pool != nil {
		t.Fatal("snapshot or pool with FreshInstances")
	}
	for range 2 {
		res, err := p.Call(context.Background(), "count", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].Text; got != "1" {
			t.Fatalf("count = %s, want 1", got)
		}
	}
}

func TestNoPool(t *testing.T) {
	r, _ := newRuntime(t, Options{PoolSize: -1})
	p := load(t, r, "echo")
	if p.pool != nil {
		t.Fatal("pool created with PoolSize < 0")
	}
	if _, err := p.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// blockingEnv holds every call in Input until release is closed.
func blockingEnv(entered chan<- struct{}, release <-chan struct{}) *testEnv {
	return &testEnv{input: func(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		entered <- struct{}{}
		select {
		case <-release:
			return make([]abi.InputResponse, len(reqs)), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
}

// TestCloseOutlivedByCalls checks that a closed (say, replaced) plugin
// refuses new calls but finishes those in flight.
func TestCloseOutlivedByCalls(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	entered, release := make(chan struct{}, 1), make(chan struct{})
	done := callAsync(context.Background(), p, "elicit", `{"message":"?"}`, blockingEnv(entered, release))
	<-entered

	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Close(gaveUp); err == nil || !strings.Contains(err.Error(), "calls still in flight") {
		t.Errorf("Close with a call in flight and a done ctx = %v", err)
	}
	if _, err := p.Call(context.Background(), "echo", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	close(release)
	if err := waitErr(t, done, 30*time.Second); err != nil {
		t.Errorf("call in flight failed after Close: %v", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRuntimeCloseEndsCalls(t *testing.T) {
	r, err := New(context.Background(), Options{CacheDir: compileCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, r, "echo")
	entered := make(chan struct{}, 1)
	done := callAsync(context.Background(), p, "elicit", `{"message":"?"}`, blockingEnv(entered, nil))
	<-entered
	ready := make(chan string, 1)
	spinning := callAsync(context.Background(), p, "spin", "", &testEnv{logged: ready})
	<-ready

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []<-chan error{done, spinning} {
		if err := waitErr(t, d, prompt); !errors.Is(err, ErrClosed) {
			t.Errorf("call ended by Runtime.Close: %v, want ErrClosed", err)
		}
	}
	if _, err := r.Load(context.Background(), guest(t, "echo")); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	r, _ := newRuntime(t, Options{PoolSize: 2})
	p := load(t, r, "echo")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := `{"i":` + itoa(i) + `}`
			res, err := p.Call(context.Background(), "echo", []byte(args), nil)
			if err != nil {
				t.Error(err)
				return
			}
			if res.Content[0].Text != args {
				t.Errorf("got %s, want %s", res.Content[0].Text, args)
			}
		}()
	}
	wg.Wait()
}
