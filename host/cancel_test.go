package host

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/testdata/hostile"
)

// prompt bounds how long a cancelled call may take to return. The promise
// is "about a second", but a test asserts behaviour, not speed: the bound
// only has to tell a call that stopped from one that ran its full minute
// (the blocked guests below ask for 60s), on however busy a machine.
const prompt = 30 * time.Second

// callAsync starts a call and returns a channel with its error.
func callAsync(ctx context.Context, p *Plugin, tool, args string, env Env) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := p.Call(ctx, tool, json.RawMessage(args), env)
		done <- err
	}()
	return done
}

func waitErr(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("call still running %v after cancellation", within)
		return nil
	}
}

func TestCancel(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")

	tests := []struct {
		name, tool, args string
		// started is the log line the guest sends just before it blocks.
		started string
	}{
		{"asleep in time.Sleep", "sleep", `{"ms":60000}`, "sleeping"},
		{"spinning", "spin", "", "spinning"},
		{"waiting for input", "elicit", `{"message":"sure?"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready := make(chan string, 4)
			env := &testEnv{logged: ready, input: func(ctx context.Context, _ []abi.InputRequest) ([]abi.InputResponse, error) {
				ready <- "input"
				<-ctx.Done()
				return nil, ctx.Err()
			}}
			want := tc.started
			if want == "" {
				want = "input"
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := callAsync(ctx, p, tc.tool, tc.args, env)
			select {
			case got := <-ready:
				if got != want {
					t.Fatalf("guest sent %q first, want %q", got, want)
				}
			case err := <-done:
				t.Fatalf("call ended before blocking: %v", err)
			}
			start := time.Now()
			cancel()
			err := waitErr(t, done, prompt)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			t.Logf("returned %v after cancel: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
	// The runtime keeps serving.
	if _, err := p.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCallTimeout(t *testing.T) {
	r, _ := newRuntime(t, Options{CallTimeout: 200 * time.Millisecond})
	p := load(t, r, "echo")
	for _, tool := range []string{"spin", "sleep"} {
		done := callAsync(context.Background(), p, tool, `{"ms":60000}`, nil)
		err := waitErr(t, done, 200*time.Millisecond+prompt)
		if !errors.Is(err, ErrCallTimeout) || !errors.Is(err, context.DeadlineExceeded) ||
			!strings.Contains(err.Error(), "plugin echo.wasm: tool "+tool+": call timed out after 200ms") {
			t.Errorf("%s: err = %v, want ErrCallTimeout and context.DeadlineExceeded", tool, err)
		}
	}
}

func TestShortSleepCompletes(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	start := time.Now()
	res, err := p.Call(context.Background(), "sleep", json.RawMessage(`{"ms":20}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].Text; got != "slept, cancelled=0" {
		t.Errorf("result = %q", got)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("a 20ms sleep took %v: nanosleep does not sleep", d)
	}
}

func TestCancelledImport(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := &callState{ctx: ctx}
	if got := st.cancelled(); got != 0 {
		t.Errorf("before cancel: %d", got)
	}
	cancel()
	if got := st.cancelled(); got != 1 {
		t.Errorf("after cancel: %d", got)
	}
}

func TestCancelCause(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	errGone := errors.New("client went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	ready := make(chan string, 1)
	done := callAsync(ctx, p, "spin", "", &testEnv{logged: ready})
	<-ready
	cancel(errGone)
	err := waitErr(t, done, prompt)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errGone) {
		t.Errorf("err = %v, want context.Canceled and the cause", err)
	}
}

// TestSpinnerOnTheOnlyP: compiled guest code cannot be preempted, so a
// guest in a tight loop (loop br 0, no calls) must still leave for the
// host now and then (wasmcheck.AddInterrupt), or with one P nothing else
// runs, not even the timer that ends its call. With GOMAXPROCS 1 the call
// must end at its deadline.
func TestSpinnerOnTheOnlyP(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p, err := r.Load(context.Background(), writePlugin(t, t.TempDir(), "spin.wasm", hostile.Spinner().Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.Call(ctx, "spin", nil, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Call = %v, want the deadline's error", err)
		}
	case <-time.After(20 * time.Second):
		// Only reachable once the spinner lets this goroutine run at all.
		t.Fatal("the spinning call did not end at its deadline")
	}
}
