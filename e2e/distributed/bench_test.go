package distributed_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkTaskThroughput measures tasks per second through a front end
// (stdio, --workers 0) and 1 or 2 `wasmhost worker` processes (4 calls at
// a time each) sharing Redis: b.N quick calls (slow_compute with 0
// seconds) sent as 2025-11-25 tasks at once, then tasks/result for each.
// The clock runs from the first tools/call to the last result. bench/run.sh
// prints the 2 : 1 ratio; run both in one go with -benchtime=Nx (each op
// starts processes, so let the count, not the time, decide).
func BenchmarkTaskThroughput(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) { benchThroughput(b, n) })
	}
}

func benchThroughput(b *testing.B, workers int) {
	c := newCluster(b)
	var ws []*proc
	for i := range workers {
		ws = append(ws, c.worker(fmt.Sprintf("worker %d", i+1), ""))
	}
	fe, client := c.frontEnd("front end", "")
	c.waitConsumers(workers)
	client.initialize("2025-11-25", nil)
	run := func(n int) time.Duration {
		start := time.Now()
		created := make([]<-chan message, n)
		for i := range created {
			created[i] = client.send("tools/call", map[string]any{
				"name": "slow_compute", "arguments": map[string]any{"seconds": 0}, "task": map[string]any{},
			})
		}
		results := make([]<-chan message, n)
		for i, ch := range created {
			m := client.await(ch, "tools/call")
			var r struct {
				Task wireTask `json:"task"`
			}
			if m.Error != nil || json.Unmarshal(m.Result, &r) != nil || r.Task.TaskID == "" {
				b.Fatalf("tools/call: %+v", m)
			}
			results[i] = client.send("tasks/result", map[string]any{"taskId": r.Task.TaskID})
		}
		for _, ch := range results {
			if res := decodeResult(b, client.await(ch, "tasks/result"), "tasks/result"); res.text() != "Computed in 0s" {
				b.Fatalf("result %q", res.text())
			}
		}
		return time.Since(start)
	}
	run(8 * workers) // every worker has run guests
	feCPU, wCPU, rCPU := cpuTime(fe), cpuTime(ws...), redisCPU(b, c.url)
	b.ResetTimer()
	d := run(b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/d.Seconds(), "tasks/s")
	// Where the CPU went, per task: on a small machine the processes
	// compete for the same cores, and this says which ones.
	perTask := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	if feCPU >= 0 && wCPU >= 0 {
		b.ReportMetric(perTask(cpuTime(fe)-feCPU), "frontend-cpu-ms/task")
		b.ReportMetric(perTask(cpuTime(ws...)-wCPU), "workers-cpu-ms/task")
	}
	if rCPU >= 0 {
		b.ReportMetric(perTask(redisCPU(b, c.url)-rCPU), "redis-cpu-ms/task")
	}
}

// cpuTime is the user+system CPU time the processes used so far, from
// /proc (Linux); -1 where that is not available.
func cpuTime(ps ...*proc) time.Duration {
	var total time.Duration
	for _, p := range ps {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			return -1
		}
		// Fields after the command name, which is in parentheses:
		// state is the 3rd field, utime the 14th, stime the 15th.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 13 {
			return -1
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return -1
		}
		total += time.Duration(ut+st) * time.Second / clockTicks
	}
	return total
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux this runs on.
const clockTicks = 100

// redisCPU is the CPU time the Redis server used so far (INFO cpu); -1 if
// it does not say.
func redisCPU(b *testing.B, u string) time.Duration {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return -1
	}
	c := redis.NewClient(opts)
	defer c.Close()
	info, err := c.Info(b.Context(), "cpu").Result()
	if err != nil {
		return -1
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
