//go:build wasip1

// Command hostile breaks ABI v1 in every way the host must survive: results
// outside memory, over the size cap or not JSON, a lying allocator, and host
// calls with bad pointers and bad messages.
package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host/testdata/guests/internal/gt"
)

const oob = 0xFFFF_FF00 // far past any memory a test guest has

func init() {
	for _, name := range []string{"oob_result", "huge_result", "garbage_result", "untyped_content", "bad_alloc", "statuses"} {
		gt.Tools = append(gt.Tools, abi.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)})
	}
	// The allocator lies for 9-byte requests: exactly the name "bad_alloc".
	gt.BadAllocSize = uint32(len("bad_alloc"))
	gt.Handle = handle
}

func handle(name string, args []byte) uint64 {
	switch name {
	case "oob_result":
		return abi.Pack(oob, 100)
	case "huge_result":
		return abi.Pack(gt.Ptr(make([]byte, 16)), abi.MaxMessageSize+1)
	case "garbage_result":
		return gt.Pack([]byte("not json{"))
	case "untyped_content":
		return gt.Pack([]byte(`{"content":[{"text":"no type"}]}`))
	case "statuses":
		b, _ := json.Marshal(statuses())
		return gt.Text(string(b))
	}
	return gt.Text("unreachable for " + name)
}

// call passes s to a raw import and keeps it alive meanwhile.
func call(f func(ptr, n uint32) int32, s string) int32 {
	b := []byte(s)
	st := f(gt.Ptr(b), uint32(len(b)))
	runtime.KeepAlive(b)
	return st
}

func statuses() map[string]int32 {
	out := map[string]int32{}
	out["input_oob"] = gt.RawInput(oob, 1000)
	out["input_huge"] = gt.RawInput(gt.Ptr(make([]byte, 8)), abi.MaxMessageSize+1)
	out["input_garbage"] = call(gt.RawInput, "nope")
	out["input_empty"] = call(gt.RawInput, "[]")
	out["input_bad_method"] = call(gt.RawInput, `[{"method":"tools/call"}]`)
	many := make([]abi.InputRequest, abi.MaxInputBatch+1)
	for i := range many {
		many[i] = abi.InputRequest{Method: abi.MethodListRoots}
	}
	b, _ := json.Marshal(many)
	out["input_too_many"] = call(gt.RawInput, string(b))
	out["elicit_not_object"] = call(gt.RawElicit, `"hi"`)
	out["response_none"] = call(gt.RawResponse, "0123456789")

	n := call(gt.RawElicit, `{"message":"x"}`)
	out["elicit_ok"] = n
	out["response_small"] = gt.RawResponse(gt.Ptr(make([]byte, 1)), 1)
	out["response_oob"] = gt.RawResponse(oob, 4096)
	buf := make([]byte, n)
	out["response_ok"] = gt.RawResponse(gt.Ptr(buf), uint32(len(buf)))
	out["response_again"] = gt.RawResponse(gt.Ptr(buf), uint32(len(buf)))

	// No status to report: the host must simply survive these.
	gt.RawLog(int32(abi.LogInfo), oob, 10)
	gt.RawLog(99, gt.Ptr([]byte("level out of range")), 18)
	gt.RawProgress(gt.Ptr([]byte("x")), 1)
	gt.RawProgress(oob, 10)
	out["cancelled"] = gt.Cancelled()
	fmt.Println("statuses collected")
	return out
}

func main() {}
