package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

func TestTerminalEscapesGuestText(t *testing.T) {
	var out bytes.Buffer
	e := &terminalEnv{in: bufio.NewReader(strings.NewReader("a\nyes\n")), out: &out}
	params, _ := json.Marshal(map[string]any{
		"message": "\x1b[2J\x1b]52;c;c2VjcmV0\x07Delete?\rSafe question",
		"requestedSchema": map[string]any{"properties": map[string]any{
			"ok\x1b[31m": map[string]any{"type": "string", "description": "line\nforged: prompt"},
		}},
	})
	if _, err := e.Input(context.Background(), []abi.InputRequest{{Method: abi.MethodElicit, Params: params}}); err != nil {
		t.Fatal(err)
	}
	e.Progress(abi.Progress{Progress: 1, Message: "\x1b]0;title\x07"})
	got := out.String()
	for _, bad := range []string{"\x1b", "\r", "\x07", "line\nforged"} {
		if strings.Contains(got, bad) {
			t.Errorf("terminal output contains %q: %q", bad, got)
		}
	}
}

func TestTerminalAsksBeforeSharingRoots(t *testing.T) {
	for _, tc := range []struct {
		answer string
		shared bool
	}{{"\n", false}, {"n\n", false}, {"y\n", true}} {
		var out bytes.Buffer
		e := &terminalEnv{in: bufio.NewReader(strings.NewReader(tc.answer)), out: &out, root: "/home/ada/project"}
		res, err := e.Input(context.Background(), []abi.InputRequest{{Method: abi.MethodListRoots}})
		if err != nil {
			t.Fatal(err)
		}
		var roots struct{ Roots []struct{ URI string } }
		json.Unmarshal(res[0].Result, &roots)
		if got := len(roots.Roots) == 1 && roots.Roots[0].URI == "file:///home/ada/project"; got != tc.shared {
			t.Errorf("answer %q: roots %s, want shared=%v", tc.answer, res[0].Result, tc.shared)
		}
		if !strings.Contains(out.String(), "roots") {
			t.Errorf("answer %q: the person was not asked: %q", tc.answer, out.String())
		}
	}
}

func TestExitAfterGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	code := make(chan int, 1)
	go exitAfterGrace(ctx, exited, time.Millisecond, func(c int) { code <- c })
	cancel() // the signal; the command never returns
	select {
	case c := <-code:
		if c == 0 {
			t.Fatal("exit code 0 after a forced exit")
		}
	case <-time.After(time.Minute):
		t.Fatal("the process was not ended")
	}

	// A command that returns in time is not cut short.
	ctx, cancel = context.WithCancel(context.Background())
	exited = make(chan struct{})
	returned := make(chan struct{})
	go func() {
		exitAfterGrace(ctx, exited, time.Hour, func(int) { t.Error("exited although the command returned") })
		close(returned)
	}()
	cancel()
	close(exited)
	<-returned
}
