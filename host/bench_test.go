package host

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

// BenchmarkSyncCall measures one tool call on the echo guest: instance
// checkout (from the pool, or instantiated on the spot), writing the name
// and arguments into guest memory, the call, and decoding the JSON result.
//
//   - pool, nopool: back-to-back calls. Sustained calls outrun the refill
//     (~3 ms per instance), so this shows throughput, where the pool helps
//     only by instantiating on another core.
//   - pool-paced, nopool-paced: each op first waits (timed, in ns/op) until
//     the pool has an instance ready, as between requests of a server that
//     is not saturated; call-ns is the request path alone, which is what
//     the pool is for.
func BenchmarkSyncCall(b *testing.B) {
	for _, bc := range []struct {
		name  string
		pool  int
		paced bool
	}{
		{"pool", 2, false},
		{"nopool", -1, false},
		{"pool-paced", 2, true},
		{"nopool-paced", -1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, _ := newRuntime(b, Options{PoolSize: bc.pool})
			p := load(b, r, "echo")
			args := json.RawMessage(`{"message":"hello","n":42}`)
			ctx := context.Background()
			var inCall time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if bc.paced && p.pool != nil {
					for len(p.pool) == 0 {
						runtime.Gosched()
					}
				}
				start := time.Now()
				res, err := p.Call(ctx, "echo", args, nil)
				inCall += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Content) != 1 {
					b.Fatalf("result %+v", res)
				}
			}
			b.ReportMetric(float64(inCall.Nanoseconds())/float64(b.N), "call-ns")
			if hits, misses := p.hits.Load(), p.misses.Load(); hits+misses > 0 {
				b.ReportMetric(100*float64(hits)/float64(hits+misses), "pool-hit-%")
			}
		})
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
// is ready: starting an instance of the echo guest (its _initialize
// included) and closing it.
func BenchmarkInstantiate(b *testing.B) {
	r, _ := newRuntime(b, Options{PoolSize: -1})
	p := load(b, r, "echo")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		inst, err := p.instantiate(ctx)
		if err != nil {
			b.Fatal(err)
		}
		inst.close()
	}
}
