package host

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
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

// TestLinearSchema: the schemas tools usually have are linear, so their
// arguments are validated inline; anything that can cost more than a pass
// over the arguments is not.
func TestLinearSchema(t *testing.T) {
	for _, tt := range []struct {
		schema string
		linear bool
	}{
		{`{"type":"object","properties":{"name":{"type":"string","description":"Name."}},"required":["name"]}`, true},
		{`{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","maxLength":9}},"n":{"type":"integer","minimum":0}},"additionalProperties":false}`, true},
		{`{"type":"object","additionalProperties":{"enum":["a","b"]},"propertyNames":{"maxLength":8}}`, true},
		{`true`, true},
		{`{"type":"object","properties":{"a":{"$ref":"#"}}}`, false},
		{`{"anyOf":[{"type":"string"},{"type":"number"}]}`, false},
		{`{"properties":{"s":{"type":"string","pattern":"^(a+)+$"}}}`, false},
		{`{"type":"array","uniqueItems":true}`, false},
		{`{"type":"array","items":[{"type":"string"}]}`, false},
		{`{"properties":[]}`, false},
		{`{"x-unknown":1}`, false},
		{`"not a schema"`, false},
		{`{`, false},
	} {
		if got := LinearSchema(json.RawMessage(tt.schema)); got != tt.linear {
			t.Errorf("LinearSchema(%s) = %v, want %v", tt.schema, got, tt.linear)
		}
	}
	deep := strings.Repeat(`{"items":`, maxLinearNodes) + `true` + strings.Repeat(`}`, maxLinearNodes)
	if LinearSchema(json.RawMessage(deep)) {
		t.Errorf("a schema of %d nested items is linear", maxLinearNodes)
	}
}

// TestValidateInline: a validator's panic is an error, not a crash.
func TestValidateInline(t *testing.T) {
	want := errors.New("invalid")
	if err := ValidateInline(func() error { return want }); err != want {
		t.Fatalf("ValidateInline: %v", err)
	}
	if err := ValidateInline(func() error { panic("validator bug") }); err == nil {
		t.Fatal("a panicking validation passed")
	}
}
