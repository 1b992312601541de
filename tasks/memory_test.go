package tasks_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) tasks.Store { return tasks.NewMemory() })
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMemoryClock expires tasks on the store's clock, without waiting.
func TestMemoryClock(t *testing.T) {
	storetest.CheckGoroutines(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := tasks.NewMemoryWith(tasks.MemoryOptions{Now: clock.Now})
	task := storetest.NewTask("alice")
	task.CreatedAt, task.UpdatedAt, task.TTL = clock.Now(), clock.Now(), time.Hour
	if err := m.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := m.RequestInput(ctx, task.ID, map[string]abi.InputRequest{"k": {Method: abi.MethodElicit}}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Equal(clock.Now()) {
		t.Errorf("UpdatedAt %s, want the store clock's %s", got.UpdatedAt, clock.Now())
	}
	guest := make(chan error, 1)
	go func() {
		_, err := m.AwaitAnswers(ctx, task.ID, []string{"k"})
		guest <- err
	}()

	clock.Advance(58*time.Minute + 59*time.Second)
	if _, err := m.Get(ctx, task.ID); err != nil {
		t.Fatalf("a second before it expires: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := m.Get(ctx, task.ID); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("at its expiry: Get = %v, want ErrNotFound", err)
	}
	if page, _, err := m.List(ctx, "alice", "", 0); err != nil || len(page) != 0 {
		t.Errorf("List after expiry = %d tasks, %v", len(page), err)
	}
	// List swept the task out, which wakes the waiting guest.
	select {
	case err := <-guest:
		if !errors.Is(err, tasks.ErrNotFound) {
			t.Errorf("guest waiting on an expired task got %v, want ErrNotFound", err)
		}
	case <-ctx.Done():
		t.Fatal("the guest never learnt that its task expired")
	}
}
