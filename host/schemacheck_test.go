package host

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestValidateUnderContext: a validation that does not end (standing in
// for a schema the limits let through that is still slow) leaves its
// caller when the call's context ends or its run budget passes, and the
// validations abandoned that way never hold more than their few places, so
// a later one waits under its own context instead of adding CPU.
func TestValidateUnderContext(t *testing.T) {
	release := make(chan struct{})
	stuck := func() error { <-release; return nil }

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Validate(ctx, time.Hour, stuck); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	// Fill every place with an abandoned validation.
	for range cap(validators) {
		if err := Validate(context.Background(), time.Millisecond, stuck); !errors.Is(err, ErrRunBudget) {
			t.Fatalf("over budget: %v", err)
		}
	}
	ran := make(chan struct{}, 1)
	err := Validate(context.Background(), 20*time.Millisecond, func() error { ran <- struct{}{}; return nil })
	if !errors.Is(err, ErrRunBudget) || len(ran) != 0 {
		t.Fatalf("with every place held: %v, ran %d", err, len(ran))
	}
	close(release)
	// The places come back as the abandoned validations end.
	want := errors.New("invalid")
	if err := Validate(context.Background(), time.Minute, func() error { return want }); err != want {
		t.Fatalf("after release: %v", err)
	}
	if err := Validate(context.Background(), time.Minute, func() error { panic("validator bug") }); err == nil {
		t.Fatal("a panicking validation passed")
	}
}
