package host

import (
	"context"
	"os"
	"testing"

	"github.com/wasmhost/wasmhost/internal/wasmcheck"
)

// BenchmarkModuleCheck is the cost the section check adds to loading a Go
// plugin; BenchmarkLoadCached is the whole load with compiled code cached,
// for comparison.
func BenchmarkModuleCheck(b *testing.B) {
	bin, err := os.ReadFile(guest(b, "echo"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bin)))
	for b.Loop() {
		if _, err := wasmcheck.Check(bin, moduleLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadCached(b *testing.B) {
	r, _ := newRuntime(b, Options{PoolSize: -1})
	path := guest(b, "echo")
	for b.Loop() {
		p, err := r.Load(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		p.Close(context.Background())
	}
}
