package mcpserver_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/mcpserver"
)

// A polling client must be asked while it looks, not while it sleeps
// between two polls (see pushGrace): with a poll interval far beyond the
// test, the question goes out only once tasks/get reports input_required,
// or once the client waits in tasks/result.
func TestTaskQuestionsWaitForTheClientToLook(t *testing.T) {
	longPolls := func(o *mcpserver.Options) { o.PollInterval = time.Hour }
	answer := map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}
	for _, look := range []string{"tasks/get", "tasks/result"} {
		t.Run(look, func(t *testing.T) {
			f := newFixture(t, nil, longPolls)
			f.initialize("2025-11-25", elicitingClient)
			id := f.createTask("confirm_delete", map[string]any{"filename": "a.txt"})
			f.waitNotification(statusIs(id, "input_required"))
			select {
			case req := <-f.requests:
				t.Fatalf("%s pushed before the client looked", req.Method)
			default:
			}
			var res toolResult
			if look == "tasks/get" {
				var got wireTask
				f.result("tasks/get", map[string]any{"taskId": id}, &got)
				if got.Status != "input_required" {
					t.Fatalf("tasks/get: %s", got.Status)
				}
				f.reply(f.nextRequest(), answer)
				f.result("tasks/result", map[string]any{"taskId": id}, &res)
			} else {
				waiting := f.send("tasks/result", map[string]any{"taskId": id})
				f.reply(f.nextRequest(), answer)
				m := f.await(waiting, "tasks/result")
				if m.Error != nil {
					t.Fatalf("tasks/result: %s", m.Error.Message)
				}
				res = decodeResult(t, m)
			}
			if !strings.Contains(res.text(), "Deleted a.txt") {
				t.Errorf("result %q", res.text())
			}
		})
	}
}

func decodeResult(t *testing.T, m message) toolResult {
	t.Helper()
	var res toolResult
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatalf("decode %s: %v", m.Result, err)
	}
	return res
}
