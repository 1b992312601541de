package host

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

func TestPoolRefills(t *testing.T) {
	r, _ := newRuntime(t, Options{PoolSize: 2})
	p := load(t, r, "echo")
	if cap(p.pool) != 1 {
		t.Fatalf("pool capacity = %d; the refiller holds the second instance", cap(p.pool))
	}
	// Take more instances than the pool holds: the refiller must keep up.
	for i := range 4 {
		select {
		case inst := <-p.pool:
			inst.close()
		case <-time.After(30 * time.Second):
			t.Fatalf("pool not refilled after %d checkouts", i)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(p.pool); n != 0 {
		t.Errorf("%d instances left in the pool after Close", n)
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
