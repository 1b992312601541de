package host

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

// BenchmarkSyncCall measures one tool call on the echo guest: instance
// checkout, writing the name and arguments into guest memory, the call,
// decoding the JSON result, and checkin.
//
//   - pool: the default; the instance is restored to the post-_initialize
//     snapshot after each call and used again.
//   - fresh: Options.FreshInstances; every call instantiates and runs
//     _initialize (what every call paid before snapshots).
//   - pool-parallel: pool, with GOMAXPROCS callers at once.
func BenchmarkSyncCall(b *testing.B) {
	args := json.RawMessage(`{"message":"hello","n":42}`)
	ctx := context.Background()
	call := func(b *testing.B, p *Plugin) {
		res, err := p.Call(ctx, "echo", args, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Content) != 1 {
			b.Fatalf("result %+v", res)
		}
	}
	for _, bc := range []struct {
		name     string
		opts     Options
		parallel bool
	}{
		{"pool", Options{}, false},
		{"fresh", Options{FreshInstances: true}, false},
		{"pool-parallel", Options{}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, _ := newRuntime(b, bc.opts)
			p := load(b, r, "echo")
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call(b, p)
					}
				})
			} else {
				for range b.N {
					call(b, p)
				}
			}
			if hits, misses := p.hits.Load(), p.misses.Load(); hits+misses > 0 {
				b.ReportMetric(100*float64(hits)/float64(hits+misses), "pool-hit-%")
			}
		})
	}
}

// BenchmarkGreetCall measures a call of the example plugin greet (built
// from plugins/greet with the SDK), the tool bench/run.sh drives through a
// client: what the guest and the host spend per call, restore included
// (it runs after the call returns, and the next call waits for it).
func BenchmarkGreetCall(b *testing.B) {
	r, _ := newRuntime(b, Options{})
	path, _, err := guestBuilder.Build(context.Background(), filepath.Join("..", "plugins", "greet"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := r.Load(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	args := json.RawMessage(`{"name":"Ada"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := p.Call(context.Background(), "greet", args, nil)
		if err != nil || len(res.Content) != 1 || res.Content[0].Text != "Hello, Ada!" {
			b.Fatalf("greet: %+v, %v", res, err)
		}
	}
}

// BenchmarkInputRoundTrip measures one input round trip: the guest calls
// elicit, the Env answers at once, the guest collects the answer through
// response and resumes. All b.N round trips happen inside a single call, so
// instantiation is amortised away.
func BenchmarkInputRoundTrip(b *testing.B) {
	r, _ := newRuntime(b, Options{})
	p := load(b, r, "echo")
	answer := json.RawMessage(`{"action":"accept","content":{"ok":true}}`)
	env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		return []abi.InputResponse{{Result: answer}}, nil
	}}
	args := json.RawMessage(`{"rounds":` + strconv.Itoa(b.N) + `}`)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := p.Call(context.Background(), "elicit_loop", args, env)
	if err != nil {
		b.Fatal(err)
	}
	if got := res.Content[0].Text; got != strconv.Itoa(b.N) {
		b.Fatalf("guest says %s", got)
	}
}

// BenchmarkInstantiate measures what a call pays when no pooled instance
// is idle: starting an instance of the echo guest and closing it, either
// running _initialize (initialize) or restoring the snapshot (snapshot);
// and restore alone, what a pooled instance costs between two calls.
func BenchmarkInstantiate(b *testing.B) {
	r, _ := newRuntime(b, Options{})
	p := load(b, r, "echo")
	ctx := context.Background()
	b.Run("initialize", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			inst, err := p.instantiate(ctx)
			if err != nil {
				b.Fatal(err)
			}
			inst.close()
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			inst, err := p.fromSnapshot(ctx, p.snap)
			if err != nil {
				b.Fatal(err)
			}
			inst.close()
		}
	})
	b.Run("restore", func(b *testing.B) {
		inst, err := p.fromSnapshot(ctx, p.snap)
		if err != nil {
			b.Fatal(err)
		}
		defer inst.close()
		b.ReportMetric(float64(p.snap.size), "mem-bytes")
		b.ReportMetric(float64(p.snap.bytes()), "snapshot-bytes")
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := p.snap.restore(inst); err != nil {
				b.Fatal(err)
			}
		}
	})
}
