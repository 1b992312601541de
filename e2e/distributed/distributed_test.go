package distributed_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/internal/redistest"
)

var (
	acceptDelete = map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}
	notesArgs    = map[string]any{"version": "v1.0.0", "commits": []string{"feat: scale out", "docs: redis"}}
)

// audience answers release_notes' question.
func audience(who string) map[string]any {
	return map[string]any{"action": "accept", "content": map[string]any{"audience": who}}
}

// TestRelayAcrossProcesses: a guest running in worker process B asks a
// question; front end A, which holds the client's session, relays it as
// elicitation/create naming the task; the answer resumes the guest in B.
// Both the 2025-11-25 task flow and a plain call.
func TestRelayAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.worker("worker B", "")
	_, client := c.frontEnd("front end A", "")
	client.initialize("2025-11-25", elicits)

	id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
	client.waitStatus(id, "input_required")
	req := client.nextRequest("the question of confirm_delete")
	if req.Method != "elicitation/create" || relatedTask(req) != id {
		t.Fatalf("server asked %s naming task %q, want elicitation/create naming %s: %s", req.Method, relatedTask(req), id, req.Params)
	}
	if !strings.Contains(string(req.Params), "Delete notes.txt?") {
		t.Errorf("question: %s", req.Params)
	}
	client.reply(req, acceptDelete)
	res := decodeResult(t, client.taskResult(id), "tasks/result")
	if !strings.HasPrefix(res.text(), "Not deleted notes.txt") { // accepted; /files is not granted here
		t.Errorf("tasks/result: %q, want Not deleted notes.txt", res.text())
	}
	if !strings.Contains(string(res.Meta["io.modelcontextprotocol/related-task"]), id) {
		t.Errorf("tasks/result _meta %v does not name the task", res.Meta)
	}
	if got := client.getTask(id); got.Status != "completed" {
		t.Errorf("tasks/get after the result: %+v", got)
	}

	// A plain call (no task) relays the same way, while tools/call is open.
	pending := client.send("tools/call", map[string]any{"name": "confirm_delete", "arguments": map[string]any{"filename": "b.txt"}})
	req = client.nextRequest("the question of a plain call")
	if req.Method != "elicitation/create" || relatedTask(req) != "" {
		t.Fatalf("plain call: server asked %s (related task %q)", req.Method, relatedTask(req))
	}
	client.reply(req, map[string]any{"action": "decline"})
	if res := decodeResult(t, client.await(pending, "plain confirm_delete"), "plain call"); res.text() != "Kept b.txt" {
		t.Errorf("plain call: %q, want Kept b.txt", res.text())
	}
}

// takeover kills worker dead with SIGKILL, as a crash would, right after
// starting the worker that will take over (started later, it could not
// have taken the task; killed later, dead might have finished it). It
// returns the new worker and the moment of the kill.
func takeover(c *cluster, dead *proc) (*proc, time.Time) {
	next := c.worker("worker C", "")
	dead.kill()
	return next, time.Now()
}

// TestWorkerKilled: kill -9 the worker running a task; another worker
// takes the task over after the claim time and resumes it by replay,
// idempotent or not, with the person's answer whenever it came. How long
// the takeover took is logged, not asserted: a busy machine may be slow
// (the benchmark in bench_test.go measures it).
func TestWorkerKilled(t *testing.T) {
	t.Parallel()

	t.Run("idempotent, working", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		b := c.worker("worker B", "")
		_, client := c.frontEnd("front end", "")
		client.initialize("2025-11-25", elicits)
		// Long enough that B is still computing when it is killed, however
		// slowly the first progress notification travelled.
		id := client.startTask("slow_compute", map[string]any{"seconds": 6})
		client.waitProgress("slow_compute") // the guest runs in B
		_, killed := takeover(c, b)
		if st := c.storedStatus(id); st != "working" {
			t.Fatalf("task %s is %q when its worker was killed, want working (B still computing)", id, st)
		}
		t.Logf("taken over %s after kill -9 (claim-idle %s)", c.waitRuns(id, 2).Sub(killed).Round(time.Millisecond), claimIdle)
		res := decodeResult(t, client.taskResult(id), "tasks/result")
		if res.text() != "Computed in 6s" {
			t.Errorf("resumed run: %q", res.text())
		}
	})

	t.Run("idempotent, input_required", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		b := c.worker("worker B", "")
		_, client := c.frontEnd("front end", "")
		client.initialize("2025-11-25", elicits)
		id := client.startTask("release_notes", notesArgs)
		question := client.nextRequest("the question")
		if relatedTask(question) != id {
			t.Fatalf("question names task %q, want %s", relatedTask(question), id)
		}
		_, killed := takeover(c, b)
		t.Logf("taken over %s after kill -9 (claim-idle %s)", c.waitRuns(id, 2).Sub(killed).Round(time.Millisecond), claimIdle)
		// The resumed run asks the same question under the same key: the
		// answer to the question the client was shown reaches it.
		client.reply(question, audience("users"))
		res := decodeResult(t, client.taskResult(id), "tasks/result")
		var got string
		_ = json.Unmarshal(res.Struct["audience"], &got)
		if got != "users" {
			t.Errorf("the resumed run used audience %q, want the person's answer, users", got)
		}
	})

	// confirm_delete is not idempotent: before journals, it failed.
	for _, when := range []string{"answered after the takeover", "answered before the takeover"} {
		t.Run("not idempotent, "+when, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			b := c.worker("worker B", "")
			_, client := c.frontEnd("front end", "")
			client.initialize("2025-11-25", elicits)
			id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
			question := client.nextRequest("the question")
			_, killed := takeover(c, b)
			if when == "answered before the takeover" {
				client.reply(question, acceptDelete) // nobody runs the guest now
			}
			t.Logf("taken over %s after kill -9 (claim-idle %s)", c.waitRuns(id, 2).Sub(killed).Round(time.Millisecond), claimIdle)
			if when == "answered after the takeover" {
				client.reply(question, acceptDelete)
			}
			res := decodeResult(t, client.taskResult(id), "tasks/result")
			if !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
				t.Errorf("resumed confirm_delete: %q, want Not deleted notes.txt (the person said yes; /files is not granted here)", res.text())
			}
			t.Logf("completed %s after kill -9", time.Since(killed).Round(time.Millisecond))
		})
	}
}

// TestWorkerTerminated: SIGTERM stops a worker promptly and cleanly: it
// parks its tasks (a running one goes back on the queue at once, one
// waiting for a person when the person answers), another worker resumes
// them, and it leaves the consumer group.
func TestWorkerTerminated(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	b := c.worker("worker B", "")
	_, client := c.frontEnd("front end", "")
	client.initialize("2025-11-25", elicits)
	slow := client.startTask("slow_compute", map[string]any{"seconds": 3})
	ask := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
	client.waitProgress("slow_compute")
	question := client.nextRequest("confirm_delete's question")

	err, took := b.terminate()
	if err != nil {
		t.Errorf("worker exited with %v after SIGTERM, want status 0", err)
	}
	t.Logf("worker stopped %s after SIGTERM", took.Round(time.Millisecond))
	// Handed back: the queue holds slow_compute as a new entry, taken by
	// nobody; confirm_delete waits for its answer outside the queue; and
	// nothing B took is left unacknowledged.
	if requeued := c.queued(); len(requeued) != 1 || requeued[0] != slow {
		t.Errorf("queue after SIGTERM holds tasks %v, want just %s, queued again", requeued, slow)
	}
	if n := c.pendingEntries(); n != 0 {
		t.Errorf("%d queue entries left unacknowledged after SIGTERM, want 0", n)
	}
	if n := c.consumers(); n != 0 {
		t.Errorf("%d consumers in the group after the only worker stopped, want 0", n)
	}
	if got := client.getTask(ask); got.Status != "input_required" {
		t.Errorf("confirm_delete after SIGTERM: %+v, want input_required (parked)", got)
	}
	if got := client.getTask(slow); got.Status != "working" {
		t.Errorf("slow_compute after SIGTERM: %+v, want working (queued again)", got)
	}
	client.reply(question, acceptDelete)
	poll(t, "confirm_delete queued once answered", func() bool { return len(c.queued()) == 2 })
	c.worker("worker C", "")
	if res := decodeResult(t, client.taskResult(slow), "tasks/result"); res.text() != "Computed in 3s" {
		t.Errorf("slow_compute on the next worker: %q", res.text())
	}
	if res := decodeResult(t, client.taskResult(ask), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
		t.Errorf("confirm_delete on the next worker: %q", res.text())
	}
}

// TestFrontEndRestart: tasks live in Redis, not in the front end. kill -9
// the front end; a client of a new one (stdio: the same owner) lists its
// tasks, gets them, reads a finished result, and answers a question the
// dead front end had relayed.
func TestFrontEndRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.worker("worker", "")
	first, client := c.frontEnd("front end 1", "")
	client.initialize("2025-11-25", elicits)
	done := client.startTask("slow_compute", map[string]any{"seconds": 0})
	decodeResult(t, client.taskResult(done), "tasks/result")
	asking := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
	client.nextRequest("the question, through front end 1")
	first.kill()

	_, client = c.frontEnd("front end 2", "")
	client.initialize("2025-11-25", elicits)
	var list struct {
		Tasks []wireTask `json:"tasks"`
	}
	client.result("tasks/list", map[string]any{}, &list)
	found := map[string]string{}
	for _, tk := range list.Tasks {
		found[tk.TaskID] = tk.Status
	}
	if found[done] != "completed" || found[asking] != "input_required" {
		t.Errorf("tasks/list on the new front end: %v, want %s completed and %s input_required", found, done, asking)
	}
	if res := decodeResult(t, client.taskResult(done), "tasks/result of the finished task"); res.text() != "Computed in 0s" {
		t.Errorf("finished task's result: %q", res.text())
	}
	result := client.send("tasks/result", map[string]any{"taskId": asking})
	req := client.nextRequest("the question, through front end 2")
	if relatedTask(req) != asking {
		t.Fatalf("front end 2 asked about %q, want %s", relatedTask(req), asking)
	}
	client.reply(req, acceptDelete)
	if res := decodeResult(t, client.await(result, "tasks/result"), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
		t.Errorf("answered through front end 2: %q", res.text())
	}
}

// TestRequestStateAcrossFrontEnds: a 2026-07-28 plain call suspended by
// front end 1 resumes through front end 2: the requestState is sealed with
// the key both read from Redis.
func TestRequestStateAcrossFrontEnds(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.worker("worker", "")
	_, one := c.httpFrontEnd("front end 1")
	_, two := c.httpFrontEnd("front end 2")
	args := map[string]any{"filename": "a.txt"}

	r1, rerr := modernCall(t, one, "tools/call", map[string]any{"name": "confirm_delete", "arguments": args})
	if rerr != nil || r1["resultType"] != "input_required" {
		t.Fatalf("round 1 on front end 1: %v %+v, want input_required", r1, rerr)
	}
	state, _ := r1["requestState"].(string)
	reqs, _ := r1["inputRequests"].(map[string]any)
	var key string
	for k := range reqs {
		key = k
	}
	if state == "" || key == "" {
		t.Fatalf("round 1: requestState %q, inputRequests %v", state, reqs)
	}
	r2, rerr := modernCall(t, two, "tools/call", map[string]any{"name": "confirm_delete", "arguments": args,
		"inputResponses": map[string]any{key: acceptDelete}, "requestState": state})
	if rerr != nil || r2["resultType"] != "complete" || !strings.Contains(toJSON(r2["content"]), "Not deleted a.txt") {
		t.Errorf("round 2 on front end 2: %v %+v, want Not deleted a.txt", r2, rerr)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRedisOutage: with Redis cut away from every process, requests fail
// with errors that say so; once it is back, the same processes serve
// again, results kept in Redis are all there, and the task whose guest was
// running when Redis went away ends with its result.
//
// Whether that guest ends during the outage (its worker then retries until
// it can record the result) or after it, nothing outside the worker can
// see: the test keeps Redis away until the guest's work is due to be done,
// and holds either way. worker.TestStoreOutage covers the retry
// deterministically.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	px := redistest.StartProxy(t, c.url)
	c.worker("worker", px.URL)
	_, client := c.frontEnd("front end", px.URL)
	client.initialize("2025-11-25", elicits)

	before := client.startTask("slow_compute", map[string]any{"seconds": 0})
	decodeResult(t, client.taskResult(before), "tasks/result before the outage")
	const work = 3 * time.Second
	during := client.startTask("slow_compute", map[string]any{"seconds": work.Seconds()})
	started := time.Now()
	client.waitProgress("slow_compute") // after 1s of work, in the worker

	px.Cut()
	if st := c.storedStatus(during); st != "working" {
		t.Logf("the task was %s before Redis went away (a slow machine): this run does not see a result recorded after an outage", st)
	}
	probes := []struct {
		method string
		params map[string]any
	}{
		{"tools/call", map[string]any{"name": "slow_compute", "arguments": map[string]any{"seconds": 0}, "task": map[string]any{}}},
		{"tasks/get", map[string]any{"taskId": before}},
		{"tasks/result", map[string]any{"taskId": during}},
	}
	// Every request fails clearly, for as long as the outage lasts: at
	// least until the guest's work is due to be done.
	for i := 0; i < len(probes) || time.Since(started) < work; i++ {
		probe := probes[i%len(probes)]
		m := client.call(probe.method, probe.params)
		if m.Error == nil || !strings.Contains(m.Error.Message, "unavailable") || !strings.Contains(m.Error.Message, "Redis") {
			t.Fatalf("%s with Redis away: %+v, want an error saying the store is unavailable and naming Redis", probe.method, m)
		}
		if i < len(probes) {
			t.Logf("%s with Redis away: %s", probe.method, m.Error.Message)
		}
		time.Sleep(50 * time.Millisecond) // pace the probes; each one asserts
	}

	px.Restore()
	restored := time.Now()
	if res := decodeResult(t, client.taskResult(during), "tasks/result of the task that ran through the outage"); res.text() != "Computed in 3s" {
		t.Errorf("task that ran through the outage: %q", res.text())
	}
	t.Logf("its result was served %s after Redis came back", time.Since(restored).Round(time.Millisecond))
	if res := decodeResult(t, client.taskResult(before), "tasks/result from before the outage"); res.text() != "Computed in 0s" {
		t.Errorf("result from before the outage: %q", res.text())
	}
	after := client.startTask("slow_compute", map[string]any{"seconds": 0})
	if res := decodeResult(t, client.taskResult(after), "tasks/result after the outage"); res.text() != "Computed in 0s" {
		t.Errorf("new task after the outage: %q", res.text())
	}
}
