// Package stack grows a fresh goroutine's stack once, at the top, to the
// size the code it is about to run needs. It owns nothing else.
//
// Go starts a goroutine on a small stack and doubles it whenever a call
// does not fit, copying the stack and adjusting every frame on it each
// time. The goroutines on a call's path are fresh (go-sdk starts one per
// request, the worker one per task, the host one per guest run) and their
// code is deep (JSON, schema validation, wazero), so every call paid
// several such copies deep down, where there are the most frames to
// adjust: 55 µs of CPU per greet call in a profile of `serve`, 8 µs with
// Reserve at the top of each (docs/performance.md).
package stack

// Reserve makes the calling goroutine's stack hold frame bytes more than
// it uses now, growing it once if it must.
func Reserve() { reserve() }

// frame is the room Reserve makes. 8 KiB was enough: with it, the profile
// of a greet call through `serve` shows no stack growth but Reserve's own.
const frame = 8 << 10

//go:noinline
func reserve() byte {
	var b [frame]byte
	return b[sink&(frame-1)]
}

// sink keeps the compiler from shrinking reserve's frame.
var sink int
