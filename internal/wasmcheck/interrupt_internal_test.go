package wasmcheck

import "testing"

// TestYieldEvery: the hand-encoded i32.const says 4096.
func TestYieldEvery(t *testing.T) {
	if yieldEvery[0] != 0x41 {
		t.Fatalf("not an i32.const: %x", yieldEvery)
	}
	var v int64
	var shift uint
	for _, c := range yieldEvery[1:] {
		v |= int64(c&0x7f) << shift
		shift += 7
	}
	if v != 4096 {
		t.Fatalf("i32.const %d, want 4096", v)
	}
}
