//go:build wasip1

// Package gt is a deliberately tiny, raw implementation of the guest side of
// ABI v1 for the host's tests. It does not use sdk/guest on purpose: the
// host's tests must not depend on the SDK's correctness, and hostile guests
// need to break the rules the SDK enforces.
package gt

import (
	"encoding/json"
	"unsafe"

	"github.com/wasmhost/wasmhost/abi"
)

// Version is what wasmhost_abi_version reports.
var Version int32 = abi.Version

// Tools is what wasmhost_describe reports.
var Tools []abi.Tool

// Extras, if set, adds prompts, resources and templates to what
// wasmhost_describe reports (its Tools are ignored).
var Extras abi.Description

// Handle runs one tool and returns a packed (ptr, len) result; use Result to
// build one from a value.
var Handle func(name string, args []byte) uint64

// BadAllocSize, when non-zero, makes wasmhost_alloc answer a request of
// exactly that many bytes with a pointer far outside memory.
var BadAllocSize uint32

// keep holds every buffer handed out, by address, so that the GC never
// frees memory the host may still write into; free drops one once the
// guest is done with it.
var keep = map[uint32][]byte{}

//go:wasmexport wasmhost_abi_version
func abiVersion() int32 { return Version }

//go:wasmexport wasmhost_alloc
func alloc(size uint32) uint32 {
	if BadAllocSize != 0 && size == BadAllocSize {
		return 0xFFFF_FFF0
	}
	return Ptr(make([]byte, size))
}

//go:wasmexport wasmhost_describe
func describe() uint64 {
	d := Extras
	d.Tools = Tools
	return Result(d)
}

//go:wasmexport wasmhost_call
func call(namePtr, nameLen, argsPtr, argsLen uint32) uint64 {
	return Handle(string(Bytes(namePtr, nameLen)), Bytes(argsPtr, argsLen))
}

// Ptr returns the address of b's first byte, keeping b alive.
func Ptr(b []byte) uint32 {
	if cap(b) == 0 {
		b = make([]byte, 0, 1)
	}
	p := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	keep[p] = b
	return p
}

func free(p uint32) { delete(keep, p) }

// Bytes views guest memory.
func Bytes(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
}

// Pack returns b as a packed (ptr, len) result.
func Pack(b []byte) uint64 { return abi.Pack(Ptr(b), uint32(len(b))) }

// Result marshals v as a packed result.
func Result(v any) uint64 {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return Pack(b)
}

// Text is a CallResult with one text block.
func Text(s string) uint64 {
	return Result(abi.CallResult{Content: []abi.Content{{Type: "text", Text: s}}})
}

// Raw host imports: plain numbers, so hostile guests can pass anything.

//go:wasmimport wasmhost input
func RawInput(ptr, n uint32) int32

//go:wasmimport wasmhost elicit
func RawElicit(ptr, n uint32) int32

//go:wasmimport wasmhost response
func RawResponse(ptr, n uint32) int32

//go:wasmimport wasmhost log
func RawLog(level int32, ptr, n uint32)

//go:wasmimport wasmhost progress
func RawProgress(ptr, n uint32)

//go:wasmimport wasmhost cancelled
func Cancelled() int32

//go:wasmimport wasmhost detach
func Detach() int32

// Collect fetches the pending response of length n (a positive result of
// input or elicit).
func Collect(n int32) ([]byte, int32) {
	buf := make([]byte, n)
	p := Ptr(buf)
	got := RawResponse(p, uint32(len(buf)))
	free(p)
	if got < 0 {
		return nil, got
	}
	return buf[:got], got
}

// Input asks the host a batch of questions.
func Input(reqs []abi.InputRequest) ([]abi.InputResponse, int32) {
	b, _ := json.Marshal(reqs)
	p := Ptr(b)
	n := RawInput(p, uint32(len(b)))
	free(p)
	if n < 0 {
		return nil, n
	}
	raw, st := Collect(n)
	if st < 0 {
		return nil, st
	}
	var out []abi.InputResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out, n
}

// Elicit asks one elicitation/create question.
func Elicit(params any) (abi.InputResponse, int32) {
	b, _ := json.Marshal(params)
	p := Ptr(b)
	n := RawElicit(p, uint32(len(b)))
	free(p)
	if n < 0 {
		return abi.InputResponse{}, n
	}
	raw, st := Collect(n)
	if st < 0 {
		return abi.InputResponse{}, st
	}
	var out abi.InputResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out, n
}

// Log sends a log line.
func Log(level abi.LogLevel, msg string) {
	b := []byte(msg)
	p := Ptr(b)
	RawLog(int32(level), p, uint32(len(b)))
	free(p)
}

// Progress reports progress.
func Progress(p abi.Progress) {
	b, _ := json.Marshal(p)
	ptr := Ptr(b)
	RawProgress(ptr, uint32(len(b)))
	free(ptr)
}
