//go:build wasip1

// Command echo is the well-behaved test guest: it echoes, talks to the host
// through every import, sleeps, spins and panics on request.
package main

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host/testdata/guests/internal/gt"
)

var calls int

var object = json.RawMessage(`{"type":"object"}`)

func init() {
	for _, name := range []string{"echo", "stdio", "elicit", "ask", "sleep", "spin", "panic", "count", "elicit_loop", "hog", "sandbox", "log_elicit", "random", "clock_loop"} {
		gt.Tools = append(gt.Tools, abi.Tool{Name: name, InputSchema: object})
	}
	gt.Tools[0].TaskSupport = abi.TaskOptional
	// result returns its arguments as the CallResult; input passes its
	// "batch" to the input import as is; detach and detach_plain call the
	// detach import twice, as a tool with and without deferTask.
	gt.Tools = append(gt.Tools,
		abi.Tool{Name: "result", InputSchema: object},
		abi.Tool{Name: "input", InputSchema: object},
		abi.Tool{Name: "detach", InputSchema: object, TaskSupport: abi.TaskOptional, DeferTask: true},
		abi.Tool{Name: "detach_plain", InputSchema: object, TaskSupport: abi.TaskOptional},
	)
	gt.Handle = handle
}

func handle(name string, args []byte) uint64 {
	switch name {
	case "echo":
		return gt.Result(abi.CallResult{
			Content:           []abi.Content{{Type: "text", Text: string(args)}},
			StructuredContent: json.RawMessage(args),
		})
	case "stdio":
		fmt.Println("hello from stdout")
		fmt.Fprintln(os.Stderr, "hello from stderr")
		gt.Log(abi.LogWarning, "careful")
		gt.Progress(abi.Progress{Progress: 1, Total: 2, Message: "half"})
		return gt.Text("done")
	case "elicit":
		resp, st := gt.Elicit(json.RawMessage(args))
		if st < 0 {
			return gt.Text(fmt.Sprintf("status %d", st))
		}
		b, _ := json.Marshal(resp)
		return gt.Text(string(b))
	case "log_elicit":
		// Talks to the client, sleeps, then asks: what replay must keep
		// quiet and fast.
		gt.Log(abi.LogInfo, "about to ask")
		gt.Progress(abi.Progress{Progress: 1, Total: 2})
		time.Sleep(time.Millisecond)
		asked := time.Now()
		resp, st := gt.Elicit(json.RawMessage(`{"message":"go on?"}`))
		if st < 0 {
			return gt.Text(fmt.Sprintf("status %d", st))
		}
		b, _ := json.Marshal(resp)
		return gt.Text(fmt.Sprintf("%s, asked at %s", b, asked.Format(time.RFC3339Nano)))
	case "random":
		// Draws from crypto/rand, then asks: replay must give it the same.
		b := make([]byte, 16)
		crand.Read(b)
		resp, st := gt.Elicit(json.RawMessage(`{"message":"ok?"}`))
		if st < 0 {
			return gt.Text(fmt.Sprintf("status %d", st))
		}
		r, _ := json.Marshal(resp)
		return gt.Text(fmt.Sprintf("%x %s", b, r))
	case "clock_loop":
		// Reads the clock N times: a journal must not grow without bound.
		var in struct{ N int }
		json.Unmarshal(args, &in)
		var last time.Time
		for range in.N {
			last = time.Now()
		}
		return gt.Text(last.String())
	case "ask":
		var in struct{ N int }
		json.Unmarshal(args, &in)
		reqs := make([]abi.InputRequest, in.N)
		for i := range reqs {
			reqs[i] = abi.InputRequest{Method: abi.MethodElicit, Params: json.RawMessage(fmt.Sprintf(`{"message":"q%d"}`, i))}
		}
		resps, st := gt.Input(reqs)
		if st < 0 {
			return gt.Text(fmt.Sprintf("status %d", st))
		}
		b, _ := json.Marshal(resps)
		return gt.Text(string(b))
	case "sleep":
		var in struct{ MS int }
		json.Unmarshal(args, &in)
		gt.Log(abi.LogInfo, "sleeping")
		time.Sleep(time.Duration(in.MS) * time.Millisecond)
		return gt.Text(fmt.Sprintf("slept, cancelled=%d", gt.Cancelled()))
	case "spin":
		gt.Log(abi.LogInfo, "spinning")
		for {
		}
	case "panic":
		panic("boom")
	case "elicit_loop":
		// Benchmarks: one input round trip per round, with buffers reused
		// and no JSON work, so that the host's share is what is measured.
		var in struct{ Rounds int }
		json.Unmarshal(args, &in)
		q := []byte(`{"message":"again?"}`)
		qp := gt.Ptr(q)
		buf := make([]byte, 4096)
		bp := gt.Ptr(buf)
		for i := 0; i < in.Rounds; i++ {
			n := gt.RawElicit(qp, uint32(len(q)))
			if n < 0 || n > int32(len(buf)) {
				return gt.Text(fmt.Sprintf("status %d in round %d", n, i))
			}
			if got := gt.RawResponse(bp, uint32(len(buf))); got != n {
				return gt.Text(fmt.Sprintf("response %d in round %d", got, i))
			}
		}
		return gt.Text(fmt.Sprint(in.Rounds))
	case "hog":
		var in struct{ MB int }
		json.Unmarshal(args, &in)
		b := make([]byte, in.MB<<20)
		for i := range b {
			b[i] = 1
		}
		return gt.Text(fmt.Sprint(len(b)))
	case "sandbox":
		// What the sandbox lets a guest see of the host.
		_, readErr := os.ReadFile("/etc/hostname")
		_, dirErr := os.ReadDir("/")
		out, _ := json.Marshal(map[string]any{
			"args":     os.Args,
			"env":      os.Environ(),
			"readFile": readErr != nil,
			"readDir":  dirErr != nil,
			"wallYear": time.Now().Year(),
		})
		return gt.Text(string(out))
	case "result":
		return gt.Pack(args)
	case "input":
		var in struct{ Batch json.RawMessage }
		json.Unmarshal(args, &in)
		p := gt.Ptr(in.Batch)
		n := gt.RawInput(p, uint32(len(in.Batch)))
		if n < 0 {
			return gt.Text(fmt.Sprintf("status %d", n))
		}
		raw, st := gt.Collect(n)
		if st < 0 {
			return gt.Text(fmt.Sprintf("status %d", st))
		}
		return gt.Text(string(raw))
	case "detach", "detach_plain":
		first := gt.Detach()
		return gt.Text(fmt.Sprintf("%d %d", first, gt.Detach()))
	case "count":
		// A fresh instance per call means this always reports 1.
		calls++
		return gt.Text(fmt.Sprint(calls))
	}
	return gt.Result(abi.CallResult{IsError: true, Content: []abi.Content{{Type: "text", Text: "unknown tool " + name}}})
}

func main() {}
