package distributed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Durable suspension figures (issue 11), on real processes. Each op starts
// processes and drives thousands of tasks: run with -benchtime=1x.

// suspendedTasks is how many confirm_delete tasks BenchmarkSuspended holds
// waiting for a person at once (SUSPENDED_N overrides it).
func suspendedTasks() int {
	if n, err := strconv.Atoi(os.Getenv("SUSPENDED_N")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// rss returns the process's resident and peak resident memory, in bytes,
// from /proc (Linux).
func rss(p *proc) (now, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1, -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			now = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return now, peak
}

// questions collects the server's elicitation requests as they come, so
// that thousands can be outstanding.
type questions struct {
	mu   sync.Mutex
	reqs []message
	more chan struct{} // poked on every new one
}

func collect(c *client) *questions {
	q := &questions{more: make(chan struct{}, 1)}
	go func() {
		for {
			select {
			case m := <-c.requests:
				q.mu.Lock()
				q.reqs = append(q.reqs, m)
				q.mu.Unlock()
				select {
				case q.more <- struct{}{}:
				default:
				}
			case <-c.closed:
				return
			}
		}
	}()
	return q
}

// wait returns the first n requests once they have come.
func (q *questions) wait(b *testing.B, n int) []message {
	deadline := time.After(10 * time.Minute)
	for {
		q.mu.Lock()
		if len(q.reqs) >= n {
			out := slices.Clone(q.reqs[:n])
			q.mu.Unlock()
			return out
		}
		q.mu.Unlock()
		select {
		case <-q.more:
		case <-deadline:
			b.Fatalf("only %d of %d questions came within 10 minutes", len(q.reqs), n)
		}
	}
}

// startSuspended starts n confirm_delete tasks and returns their ids, in
// order, once every guest has asked its question.
func startSuspended(b *testing.B, client *client, q *questions, n int) ([]string, []message) {
	created := make([]<-chan message, n)
	for i := range created {
		created[i] = client.send("tools/call", map[string]any{
			"name": "confirm_delete", "arguments": map[string]any{"filename": fmt.Sprintf("f%d.txt", i)}, "task": map[string]any{},
		})
	}
	ids := make([]string, n)
	for i, ch := range created {
		m := client.await(ch, "tools/call")
		var r struct {
			Task wireTask `json:"task"`
		}
		if m.Error != nil || json.Unmarshal(m.Result, &r) != nil || r.Task.TaskID == "" {
			b.Fatalf("tools/call: %+v", m)
		}
		ids[i] = r.Task.TaskID
	}
	return ids, q.wait(b, n)
}

// BenchmarkSuspended holds 10 000 confirm_delete tasks waiting for a
// person, with the default eviction (--evict-after 30s, at most
// --suspended-memory / --memory-limit = 32 guests resident), and reports
// the resident memory of the process running the guests (the whole server
// with the embedded store; the worker with Redis), Redis's memory and the
// journal bytes per parked task; then answers them all and reports the
// answer → result latency of the resumed tasks.
func BenchmarkSuspended(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		for range b.N {
			p := startProc(b, "server", true, "serve", "--plugins", pluginsDir, "--cache-dir", cacheDir, "--log-level", "warn")
			client := newClient(b, "server", p.stdout, p.stdin)
			client.initialize("2025-11-25", elicits)
			benchSuspended(b, client, collect(client), p, nil)
		}
	})
	b.Run("redis", func(b *testing.B) {
		for range b.N {
			c := newCluster(b)
			w := c.workerWith("worker", "", "--workers", "8", "--log-level", "warn")
			_, client := c.frontEnd("front end", "")
			client.initialize("2025-11-25", elicits)
			benchSuspended(b, client, collect(client), w, c)
		}
	})
}

func benchSuspended(b *testing.B, client *client, q *questions, guests *proc, c *cluster) {
	n := suspendedTasks()
	var memBefore int64
	if c != nil {
		memBefore = usedMemory(c)
	}
	start := time.Now()
	ids, reqs := startSuspended(b, client, q, n)
	asked := time.Since(start)
	now, peak := rss(guests)
	b.ReportMetric(float64(n)/asked.Seconds(), "suspended/s")
	b.ReportMetric(float64(now)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	if c != nil {
		ctx := context.Background()
		var jbytes, keys int64
		for _, id := range ids {
			v, _ := c.raw.HGet(ctx, c.prefix+":task:{"+id+"}", "jbytes").Int64()
			jbytes += v
		}
		sample := ids[len(ids)/2]
		for _, k := range []string{"", ":input", ":journal", ":answers"} {
			keys += c.raw.MemoryUsage(ctx, c.prefix+":task:{"+sample+"}"+k).Val()
		}
		b.ReportMetric(float64(jbytes)/float64(n), "journal-B/task")
		b.ReportMetric(float64(keys), "redis-key-B/task")
		b.ReportMetric(float64(usedMemory(c)-memBefore)/float64(n), "redis-used-B/task")
	}
	// Answer every question, one at a time, and time answer → result.
	var lat []time.Duration
	byTask := map[string]message{}
	for _, r := range reqs {
		byTask[relatedTask(r)] = r
	}
	for _, id := range ids[:min(n, 200)] {
		result := client.send("tasks/result", map[string]any{"taskId": id})
		t0 := time.Now()
		client.reply(byTask[id], acceptDelete)
		m := client.await(result, "tasks/result")
		lat = append(lat, time.Since(t0))
		if res := decodeResult(b, m, "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted ") {
			b.Fatalf("resumed task: %q", res.text())
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "resume-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "resume-p99-ms")
}

// usedMemory is Redis's INFO memory used_memory.
func usedMemory(c *cluster) int64 {
	info := c.raw.Info(context.Background(), "memory").Val()
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkTakeover measures kill -9 of the worker running confirm_delete,
// waiting for its person, to another worker's run of the task, with
// --claim-idle 2s, and on to the result once the person answers.
func BenchmarkTakeover(b *testing.B) {
	var took, done []time.Duration
	for range b.N {
		c := newCluster(b)
		w := c.worker("worker B", "")
		_, client := c.frontEnd("front end", "")
		client.initialize("2025-11-25", elicits)
		c.waitConsumers(1)
		id := client.startTask("confirm_delete", map[string]any{"filename": "notes.txt"})
		question := client.nextRequest("the question")
		_, killed := takeover(c, w)
		took = append(took, c.waitRuns(id, 2).Sub(killed))
		client.reply(question, acceptDelete)
		if res := decodeResult(b, client.taskResult(id), "tasks/result"); !strings.HasPrefix(res.text(), "Not deleted notes.txt") {
			b.Fatalf("after the takeover: %q", res.text())
		}
		done = append(done, time.Since(killed))
	}
	slices.Sort(took)
	slices.Sort(done)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "takeover-p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "takeover-max-ms")
	b.ReportMetric(float64(done[len(done)/2].Milliseconds()), "kill-to-result-p50-ms")
}
