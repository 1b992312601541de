package host

import (
	"context"
	"errors"
	"testing"
)

// TestMemoryBudget checks that an instance that would not fit the budget
// is refused with ErrMemoryBudget, that a guest cannot grow past it, and
// that closed instances give their memory back.
func TestMemoryBudget(t *testing.T) {
	r, _ := newRuntime(t, Options{MemoryBudgetMiB: 12})
	p := load(t, r, "echo")
	if used := r.budget.used.Load(); used != 0 {
		t.Fatalf("%d bytes counted after load, want 0 (the handshake instance is closed)", used)
	}
	if _, err := p.Call(context.Background(), "count", nil, nil); err != nil {
		t.Fatal(err)
	}
	idle := r.budget.used.Load()
	if idle < int64(p.snap.size) {
		t.Fatalf("%d bytes counted with one idle instance of %d", idle, p.snap.size)
	}
	// 32 MiB does not fit in 12: memory.grow fails and the guest dies.
	if _, err := p.Call(context.Background(), "hog", []byte(`{"mb":32}`), nil); !errors.Is(err, ErrGuestTrapped) {
		t.Errorf("hog past the budget: %v, want ErrGuestTrapped", err)
	}
	if used := r.budget.used.Load(); used > idle {
		t.Errorf("%d bytes counted after the failed call, want at most %d", used, idle)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if used := r.budget.used.Load(); used != 0 {
		t.Errorf("%d bytes still counted after Close", used)
	}
}

func TestMemoryBudgetRefusesInstances(t *testing.T) {
	r, _ := newRuntime(t, Options{MemoryBudgetMiB: 64})
	p := load(t, r, "echo")
	r.budget.limit = 1 << 20 // less than the guest's initial memory
	if _, err := p.Call(context.Background(), "count", nil, nil); !errors.Is(err, ErrMemoryBudget) {
		t.Fatalf("call with a 1 MiB budget: %v, want ErrMemoryBudget", err)
	}
	if p.retired.Load() {
		t.Error("a budget refusal retired the plugin from pooling; it is not the plugin's fault")
	}
}
