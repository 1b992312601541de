package distributed_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/internal/redistest"
)

// Durable suspension (issue 11) across processes: runs are fenced, a guest
// waiting for a person is evicted and resumed by replay, and a task
// resumes on the module it started with.

// TestTakeoverRace: two workers take over the same task at once (one
// reclaims the dead worker's queue entry, the other gets a duplicate
// entry): both start a run, the newer fences the older off, and the task
// ends once, with the person's answer, every queue entry acknowledged.
func TestTakeoverRace(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	b := c.worker("worker B", "")
	_, client := c.frontEnd("front end", "")
	client.initialize("2025-11-25", elicits)
	id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
	question := client.nextRequest("the question")
	c.worker("worker C", "")
	c.worker("worker D", "")
	b.kill()
	if err := c.raw.XAdd(context.Background(), &redis.XAddArgs{Stream: c.prefix + ":queue", Values: []any{"task", id}}).Err(); err != nil {
		t.Fatal(err)
	}
	c.waitRuns(id, 3) // B's, then one each for C and D
	client.reply(question, acceptDelete)
	if res := decodeResult(t, client.taskResult(id), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
		t.Errorf("after the race: %q, want Not deleted notes.txt", res.text())
	}
	if runs := c.taskField(id, "token"); runs != "3" {
		t.Errorf("%s runs started, want 3", runs)
	}
	// The older of the racing runs was fenced off: it dropped its entry
	// without touching the one the newer run acknowledged.
	poll(t, "every queue entry acknowledged", func() bool { return c.pendingEntries() == 0 })
}

// TestLateOutcomeFenced: a worker cut off from Redis for longer than the
// claim time keeps computing while another worker takes its task over;
// when it is back, its outcome is refused (the task is still the other
// run's, working), and the other run's outcome is the task's.
func TestLateOutcomeFenced(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	px := redistest.StartProxy(t, c.url)
	b := c.worker("worker B", px.URL)
	_, client := c.frontEnd("front end", "")
	client.initialize("2025-11-25", elicits)
	id := client.startTask("slow_compute", map[string]any{"seconds": 6})
	client.waitProgress("slow_compute") // running in B, the only worker
	c.worker("worker C", "")
	px.Cut()
	c.waitRuns(id, 2)
	px.Restore()
	// B's guest finishes its 6 s a few seconds before C's; nothing but its
	// log says when its outcome was refused.
	b.waitLog("another run took the task over")
	if st := c.storedStatus(id); st != "working" {
		t.Errorf("after the fenced-off run finished the task is %q, want working (the new run's)", st)
	}
	if res := decodeResult(t, client.taskResult(id), "tasks/result"); res.text() != "Computed in 6s" {
		t.Errorf("the new run's result: %q", res.text())
	}
}

// TestEvictedGuestResumes: a guest waiting longer than --evict-after is
// closed and its task parked (nothing queued, nothing held); the answer
// queues it again and a run resumed by replay completes it with the
// answer. Redis and the embedded store alike.
func TestEvictedGuestResumes(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		c, client, id, question := parkedConfirmDelete(t)
		if q := c.queued(); len(q) != 0 {
			t.Errorf("queue holds %v while the task waits for its answer, want nothing", q)
		}
		answered := time.Now()
		client.reply(question, acceptDelete)
		if res := decodeResult(t, client.taskResult(id), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
			t.Errorf("resumed task: %q", res.text())
		}
		t.Logf("result %s after the answer", time.Since(answered).Round(time.Millisecond))
	})
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		// With the embedded store the eviction leaves no trace outside
		// the process but its log line.
		p := startProc(t, "server", true, "serve", "--plugins", pluginsDir, "--cache-dir", cacheDir,
			"--evict-after", "100ms", "--log-level", "debug")
		client := newClient(t, "server", p.stdout, p.stdin)
		client.initialize("2025-11-25", elicits)
		id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
		question := client.nextRequest("the question")
		p.waitLog("parked a task")
		client.reply(question, acceptDelete)
		if res := decodeResult(t, client.taskResult(id), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
			t.Errorf("resumed task: %q", res.text())
		}
		// A plain call (no task) parks and resumes the same way.
		pending := client.send("tools/call", map[string]any{"name": "confirm_delete", "arguments": map[string]any{"filename": "b.txt"}})
		req := client.nextRequest("the plain call's question")
		poll(t, "the plain call parked", func() bool { return p.log.count("parked a task") >= 2 })
		client.reply(req, acceptDelete)
		if res := decodeResult(t, client.await(pending, "plain confirm_delete"), "plain call"); !strings.HasPrefix(res.text(), "Not deleted b.txt") {
			t.Errorf("plain call: %q", res.text())
		}
	})
}

// builtPlugin returns a copy, in a directory of its own, of the example
// plugin dir built to .wasm.
func builtPlugin(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command(bin, "build", filepath.Join(pluginsDir, dir), "--cache-dir", cacheDir, "--log-level", "warn").Output()
	if err != nil {
		t.Fatalf("wasmhost build %s: %v", dir, err)
	}
	// "<dir>: <wasm> (cached, N tools)"
	_, rest, _ := strings.Cut(strings.TrimSpace(string(out)), ": ")
	wasm, _, _ := strings.Cut(rest, " (")
	bin, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	plugins := t.TempDir()
	if err := os.WriteFile(filepath.Join(plugins, dir+".wasm"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	return plugins
}

// changeModule appends a custom section to a .wasm file: a new module
// (another digest) with the same tools.
func changeModule(t *testing.T, path string) {
	t.Helper()
	name, payload := "i11-test", "changed"
	section := append([]byte{0, byte(1 + len(name) + len(payload)), byte(len(name))}, name+payload...)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(section); err != nil {
		t.Fatal(err)
	}
}

// TestResumeAfterPluginChanged: a task parked while its plugin file is
// replaced resumes on the module it started with, kept by content; a
// worker that never had that module fails the task saying so.
func TestResumeAfterPluginChanged(t *testing.T) {
	t.Parallel()
	for _, kept := range []bool{true, false} {
		name := "module kept"
		if !kept {
			name = "module gone"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			plugins := builtPlugin(t, "confirm")
			b := c.workerWith("worker B", "", "--plugins", plugins, "--evict-after", "100ms")
			_, client := c.frontEnd("front end", "")
			client.initialize("2025-11-25", elicits)
			id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
			question := client.nextRequest("the question")
			c.waitParked(id)
			b.kill()
			changeModule(t, filepath.Join(plugins, "confirm.wasm"))
			args := []string{"--plugins", plugins}
			if !kept {
				args = append(args, "--cache-dir", t.TempDir()) // a worker that never saw the first module
			}
			c.workerWith("worker C", "", args...)
			client.reply(question, acceptDelete)
			if !kept {
				client.waitStatus(id, "failed")
				if got := client.getTask(id); !strings.Contains(got.StatusMessage, "changed since the task started") || !strings.Contains(got.StatusMessage, "pinned module is gone") {
					t.Errorf("tasks/get: %+v, want failed saying the plugin changed and its module is gone", got)
				}
				return
			}
			if res := decodeResult(t, client.taskResult(id), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
				t.Errorf("resumed after the plugin changed: %q", res.text())
			}
		})
	}
}

// TestReplayDivergenceFails: a run resumed by replay whose guest makes
// another host call than its journal recorded fails its task, saying the
// replay diverged, and the guest never gets the recorded answer. The
// journal is edited in Redis while the task is parked: what a guest that is
// not deterministic would have left.
func TestReplayDivergenceFails(t *testing.T) {
	t.Parallel()
	c, client, id, question := parkedConfirmDelete(t)
	entry := `{"k":"input","h":"sha256:recorded-for-another-question","r":[{"result":{"action":"accept","content":{"confirm":true}}}]}`
	if err := c.raw.RPush(context.Background(), c.prefix+":task:{"+id+"}:journal", entry).Err(); err != nil {
		t.Fatal(err)
	}
	client.reply(question, acceptDelete)
	poll(t, "the resumed task to end", func() bool {
		s := c.storedStatus(id)
		return s == "failed" || s == "completed" || s == "cancelled"
	})
	if st, msg := c.storedStatus(id), c.taskField(id, "error"); st != "failed" || !strings.Contains(msg, "diverged") {
		t.Errorf("task resumed from a journal of another question ended %s: %q, want failed saying the replay diverged", st, msg)
	}
}

// parkedConfirmDelete starts a cluster whose one worker evicts a guest
// after 100 ms, and a confirm_delete task whose guest has asked its
// question and been evicted: the task is parked until the answer.
func parkedConfirmDelete(t *testing.T) (*cluster, *client, string, message) {
	t.Helper()
	c := newCluster(t)
	c.workerWith("worker", "", "--evict-after", "100ms")
	_, client := c.frontEnd("front end", "")
	client.initialize("2025-11-25", elicits)
	id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
	question := client.nextRequest("the question")
	c.waitParked(id)
	return c, client, id, question
}
