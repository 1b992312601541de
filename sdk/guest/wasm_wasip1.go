//go:build wasip1

package guest

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/wasmhost/wasmhost/abi"
)

// This file is the only one that touches the wasm boundary: the exports the
// host calls and the imports it provides (module "wasmhost"). Everything it
// does is described step by step in abi/README.md.

// allocated holds the buffers handed out by wasmhost_alloc, so the garbage
// collector keeps them while the host writes into them. They are released
// when the next wasmhost_call returns.
var allocated [][]byte

// lastMessage keeps the message returned by the last export alive until the
// host has read it (it reads it before its next call into the guest).
var lastMessage []byte

// The host snapshots the guest after init and starts every call from the
// snapshot, so codecs every call would otherwise build are built here.
func init() { warmElicitation() }

//go:wasmexport wasmhost_abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport wasmhost_alloc
func exportAlloc(size uint32) uint32 {
	if size > abi.MaxMessageSize {
		return 0
	}
	buf := make([]byte, max(size, 1)) // never the shared zero-size address
	allocated = append(allocated, buf)
	return addressOf(buf)
}

//go:wasmexport wasmhost_describe
func exportDescribe() uint64 {
	msg, err := describeJSON()
	if err != nil {
		panic(err) // a plugin that cannot describe itself cannot be served
	}
	return keep(msg)
}

//go:wasmexport wasmhost_call
func exportCall(namePtr, nameLen, argsPtr, argsLen uint32) uint64 {
	name := string(claim(namePtr, nameLen))
	args := claim(argsPtr, argsLen)
	msg, err := dispatch(wasmHost{}, name, args)
	if err != nil {
		panic(err) // the host called a tool it was never told about
	}
	allocated = nil
	return keep(msg)
}

// The prompt and resource exports exist in every plugin (Go decides its
// exports at build time); with nothing registered they answer with a
// protocol error, and the description lists nothing for the host to ask.

//go:wasmexport wasmhost_get_prompt
func exportGetPrompt(namePtr, nameLen, argsPtr, argsLen uint32) uint64 {
	name := string(claim(namePtr, nameLen))
	args := claim(argsPtr, argsLen)
	msg := dispatchPrompt(wasmHost{}, name, args)
	allocated = nil
	return keep(msg)
}

//go:wasmexport wasmhost_read_resource
func exportReadResource(uriPtr, uriLen uint32) uint64 {
	uri := string(claim(uriPtr, uriLen))
	msg := dispatchResource(wasmHost{}, uri)
	allocated = nil
	return keep(msg)
}

func keep(msg []byte) uint64 {
	lastMessage = msg
	return abi.Pack(addressOf(msg), uint32(len(msg)))
}

func addressOf(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// claim returns the n bytes at ptr, which must lie inside one buffer from
// wasmhost_alloc; anything else is a host bug and traps.
func claim(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	for _, buf := range allocated {
		start := addressOf(buf)
		if ptr >= start && uint64(ptr)+uint64(n) <= uint64(start)+uint64(len(buf)) {
			off := ptr - start
			return buf[off : off+n]
		}
	}
	panic(fmt.Sprintf("wasmhost_call: %d bytes at %#x are not inside a buffer from wasmhost_alloc", n, ptr))
}

//go:wasmimport wasmhost input
func hostInput(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmhost elicit
func hostElicit(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmhost response
func hostResponse(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmhost log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport wasmhost progress
func hostProgress(ptr unsafe.Pointer, n uint32)

//go:wasmimport wasmhost cancelled
func hostCancelled() int32

//go:wasmimport wasmhost detach
func hostDetach() int32

//go:wasmimport wasmhost capability
func hostCapability(ptr unsafe.Pointer, n uint32) int32

// wasmHost is the host seen through the imports.
type wasmHost struct{}

// asking makes input (or elicit) and its response one step: the host holds
// one pending answer per instance, which a second asker (a goroutine the
// handler started) must not replace before the first has collected it.
var asking sync.Mutex

func (wasmHost) input(batch []byte) ([]byte, abi.Status) {
	asking.Lock()
	defer asking.Unlock()
	n := hostInput(unsafe.Pointer(unsafe.SliceData(batch)), uint32(len(batch)))
	runtime.KeepAlive(batch)
	return collect(n)
}

func (wasmHost) elicit(params []byte) ([]byte, abi.Status) {
	asking.Lock()
	defer asking.Unlock()
	n := hostElicit(unsafe.Pointer(unsafe.SliceData(params)), uint32(len(params)))
	runtime.KeepAlive(params)
	return collect(n)
}

// collect fetches the n-byte response the host holds since the last input
// or elicit, or passes on the negative status that call returned.
func collect(n int32) ([]byte, abi.Status) {
	if n < 0 {
		return nil, abi.Status(n)
	}
	buf := make([]byte, max(n, 1))
	got := hostResponse(unsafe.Pointer(unsafe.SliceData(buf)), uint32(n))
	runtime.KeepAlive(buf)
	if got < 0 {
		return nil, abi.Status(got)
	}
	return buf[:got], 0
}

func (wasmHost) log(level abi.LogLevel, msg string) {
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

func (wasmHost) progress(msg []byte) {
	hostProgress(unsafe.Pointer(unsafe.SliceData(msg)), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

func (wasmHost) cancelled() bool { return hostCancelled() != 0 }

func (wasmHost) detach() bool { return hostDetach() != 0 }

func (wasmHost) capability(req []byte) ([]byte, abi.Status) {
	asking.Lock() // the answer waits in the same place as input's
	defer asking.Unlock()
	n := hostCapability(unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)))
	runtime.KeepAlive(req)
	return collect(n)
}
