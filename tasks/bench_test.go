package tasks_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/tasks/storetest"
)

// BenchmarkAnswerRoundTrip measures one elicitation through the store: the
// guest asks (RequestInput), the front end answers from another goroutine
// (Answer), and the guest's AwaitAnswers returns the answer.
func BenchmarkAnswerRoundTrip(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchRoundTrip(b, tasks.NewMemory()) })
	b.Run("redis", func(b *testing.B) { benchRoundTrip(b, newRedis(b, tasks.RedisOptions{})) })
}

func benchRoundTrip(b *testing.B, s tasks.Store) {
	ctx := b.Context()
	task := storetest.NewTask("bench")
	if err := s.Create(ctx, task); err != nil {
		b.Fatal(err)
	}
	req := abi.InputRequest{Method: abi.MethodElicit, Params: []byte(`{"message":"Delete 3 files?","requestedSchema":{"type":"object"}}`)}
	resp := abi.InputResponse{Result: []byte(`{"action":"accept","content":{"confirm":true}}`)}
	asked := make(chan string)
	answered := make(chan error, 1)
	go func() {
		for key := range asked {
			if err := s.Answer(context.Background(), task.ID, key, resp); err != nil {
				answered <- err
				return
			}
		}
	}()
	defer close(asked)
	i := 0
	for b.Loop() {
		key := "k" + strconv.Itoa(i)
		i++
		if err := s.RequestInput(ctx, task.ID, map[string]abi.InputRequest{key: req}); err != nil {
			b.Fatal(err)
		}
		asked <- key
		got, err := s.AwaitAnswers(ctx, task.ID, []string{key})
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 1 {
			b.Fatalf("got %d answers", len(got))
		}
		select {
		case err := <-answered:
			b.Fatal(err)
		default:
		}
	}
}

// BenchmarkParked parks PARKED_N (default 100 000) confirm_delete tasks in
// Redis as a worker that evicted their guests leaves them (a run started,
// the question pending, parked), with a journal of JOURNAL_B bytes (default
// 0: confirm_delete asks before it has learnt anything durable), and
// reports Redis's memory per parked task. Run with -benchtime=1x.
func BenchmarkParked(b *testing.B) {
	n := envInt("PARKED_N", 100000)
	journal := make([]byte, envInt("JOURNAL_B", 0))
	for range b.N {
		s := newRedis(b, tasks.RedisOptions{})
		raw := rawClient(b)
		before := usedMemory(raw)
		q := map[string]abi.InputRequest{"elicitation-1": {Key: "", Method: abi.MethodElicit,
			Params: []byte(`{"message":"Delete f12345.txt?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean","description":"Tick to delete the file."}},"required":["confirm"]}}`)}}
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				ctx := b.Context()
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					task := storetest.NewTask("bench")
					task.TTL = time.Hour
					if err := s.Create(ctx, task); err != nil {
						b.Error(err)
						return
					}
					run, err := s.StartRun(ctx, task.ID, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
					if err == nil && len(journal) > 0 {
						err = s.AppendJournal(ctx, task.ID, run.Token, [][]byte{journal}, nil)
					}
					if err == nil {
						err = s.RequestInput(ctx, task.ID, q)
					}
					if err == nil {
						err = s.Park(ctx, task.ID, run.Token)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "parked/s")
		b.ReportMetric(float64(usedMemory(raw)-before)/float64(n), "redis-B/task")
		b.ReportMetric(float64(len(journal)), "journal-B/task")
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}
