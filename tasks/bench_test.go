package tasks_test

import (
	"context"
	"strconv"
	"testing"

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
