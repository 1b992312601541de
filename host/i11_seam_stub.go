package host

// STUB of the i11-host seam (/work/briefs/i11.md), so that the worker side
// builds before branch i11-host lands. Deleted when i11-host is merged.

import (
	"context"
	"errors"
)

// Recorder: see the seam.
type Recorder interface {
	Recorded() [][]byte
	Record(ctx context.Context, entries [][]byte, consume []string) error
	Idempotent() bool
}

// ErrEvicted: see the seam.
var ErrEvicted = errors.New("guest evicted while waiting for input")

// Digest: see the seam; "" until i11-host lands.
func (p *Plugin) Digest() string { return "" }
