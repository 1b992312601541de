package mcpserver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/internal/redistest"
	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
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
			if !strings.HasPrefix(res.text(), "Not deleted a.txt") {
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

// Every log and progress notification of a plain call is written before
// its result, call after call (the outbox's flush barrier).
func TestNotificationsPrecedeTheResult(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, storeFor(t, name))
			f.initialize("2025-11-25", map[string]any{})
			f.result("logging/setLevel", map[string]any{"level": "debug"}, nil)
			commits := []string{"feat: a", "fix: b", "docs: c"}
			for i := range 20 {
				version := fmt.Sprintf("v%d", i)
				token := fmt.Sprintf("call-%d", i)
				res := f.call("tools/call", map[string]any{
					"name":      "release_notes",
					"arguments": map[string]any{"version": version, "commits": commits, "audience": "developers"},
					"_meta":     map[string]any{"progressToken": token},
				})
				if res.Error != nil {
					t.Fatalf("call %d: %s", i, res.Error.Message)
				}
				var sawLog, sawLast bool
				for len(f.notifications) > 0 {
					n := <-f.notifications
					if n.seq > res.seq {
						t.Fatalf("call %d: %s written after the result", i, n.Method)
					}
					switch {
					case n.Method == "notifications/message" && strings.Contains(string(n.Params), version):
						sawLog = true
					case n.Method == "notifications/progress" && strings.Contains(string(n.Params), token):
						var p struct{ Progress, Total float64 }
						_ = json.Unmarshal(n.Params, &p)
						sawLast = sawLast || p.Progress == p.Total
					}
				}
				if !sawLog || !sawLast {
					t.Fatalf("call %d: before its result came log=%v, last progress=%v", i, sawLog, sawLast)
				}
			}
		})
	}
}

// gatedWriter stands for a client that stops reading: while closed, a write
// waits until the gate opens.
type gatedWriter struct {
	w      io.Writer
	closed atomic.Bool
	open   chan struct{}
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.closed.Load() {
		<-g.open
	}
	return g.w.Write(p)
}

// A client that reads slower than a guest logs costs bounded memory (log
// lines beyond the bound are dropped and counted, and the count reported
// once it reads again), and never delays another session.
func TestSlowClientCostsOnlyItself(t *testing.T) {
	store := tasks.NewMemory()
	ctx, srv, wg := newServer(t, store)
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	gate := &gatedWriter{w: serverW, open: make(chan struct{})}
	wg.Go(func() {
		_ = srv.ServeStdio(ctx, serverR, gate)
		serverW.Close()
	})
	t.Cleanup(func() { clientW.Close() })
	slow := newWireClient(t, clientR, clientW)
	slow.initialize("2025-11-25", map[string]any{})
	slow.result("logging/setLevel", map[string]any{"level": "debug"}, nil)

	// A flood of log lines for a call of the stdio client, which stops
	// reading.
	now := time.Now()
	flood := &tasks.Task{ID: tasks.NewID(), Kind: tasks.KindCall, Owner: "stdio", Tool: "flood", Status: tasks.Working, CreatedAt: now, UpdatedAt: now, TTL: time.Hour}
	if err := store.Create(ctx, flood); err != nil {
		t.Fatal(err)
	}
	gate.closed.Store(true)
	line, _ := json.Marshal(tasks.LogData{Level: 1, Message: strings.Repeat("x", 1024)})
	const lines = 20 * mcpserver.MaxQueuedLogs
	for range lines {
		if err := store.Publish(ctx, tasks.Event{Kind: tasks.EventLog, TaskID: flood.ID, Data: line}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		queued, dropped := mcpserver.Backlog(srv, "stdio")
		if queued > mcpserver.MaxQueuedLogs {
			t.Fatalf("%d log lines queued for a client that does not read; the bound is %d", queued, mcpserver.MaxQueuedLogs)
		}
		// Everything is either queued, dropped, or the one line blocked
		// in the write.
		if queued+dropped >= lines-1 {
			if dropped == 0 {
				t.Fatal("nothing was dropped")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not reach the outbox: %d queued, %d dropped", queued, dropped)
		}
		runtime.Gosched()
	}

	// Another session is served meanwhile.
	hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{}))
	t.Cleanup(hs.Close)
	other, err := mcp.NewClient(&mcp.Implementation{Name: "other", Version: "0"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	res, err := other.CallTool(ctx, &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada"}})
	if err != nil || res.IsError {
		t.Fatalf("greet for another session while one client stalls: %v %+v", err, res)
	}

	// The slow client reads again and is told how much it missed.
	close(gate.open)
	slow.waitNotification(func(m message) bool {
		return m.Method == "notifications/message" && strings.Contains(string(m.Params), `"dropped"`)
	})
}

// storeFor returns an embedded store, or a Redis store on a key prefix of
// its own whose keys are deleted when the test ends.
func storeFor(t *testing.T, name string) tasks.Store {
	t.Helper()
	if name == "memory" {
		return tasks.NewMemory()
	}
	url := redistest.URL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "wasmhost-test:mcpserver:" + hex.EncodeToString(b)
	s, err := tasks.NewRedis(context.Background(), tasks.RedisOptions{URL: url, Prefix: prefix, Block: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		opts, err := redis.ParseURL(url)
		if err != nil {
			return
		}
		c := redis.NewClient(opts)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return s
}

// Log lines a client's level filters out are never published by the guest's
// worker, let alone queued: before logging/setLevel none is, after
// setLevel error the info line is not, after setLevel debug it is.
func TestFilteredLogLinesAreNotProduced(t *testing.T) {
	store := tasks.NewMemory()
	f := newFixture(t, store)
	f.initialize("2025-11-25", map[string]any{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := store.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	published := func(level string) bool {
		t.Helper()
		if level != "" {
			f.result("logging/setLevel", map[string]any{"level": level}, nil)
		}
		res := f.call("tools/call", map[string]any{
			"name":      "release_notes",
			"arguments": map[string]any{"version": "v1", "commits": []string{"feat: a"}, "audience": "users"},
		})
		if res.Error != nil {
			t.Fatal(res.Error.Message)
		}
		// The store sends a task's events in order: its log line, if
		// any, comes before its terminal status.
		logged := false
		for e := range events {
			logged = logged || e.Kind == tasks.EventLog
			if e.Kind == tasks.EventStatus && e.Status.Terminal() {
				return logged
			}
		}
		t.Fatal("the watch ended")
		return false
	}
	for _, tc := range []struct {
		level string
		want  bool
	}{{"", false}, {"error", false}, {"debug", true}} {
		if got := published(tc.level); got != tc.want {
			t.Errorf("level %q: log line published = %v, want %v", tc.level, got, tc.want)
		}
	}
}
