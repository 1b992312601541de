package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/internal/redistest"
	"github.com/wasmhost/wasmhost/tasks"
)

// sessionClient is a 2025-11-25 client of the stateful Streamable HTTP
// lifecycle: one POST per request, carrying the session id go-sdk assigned
// at initialize. It reads every reply whole, so it is for requests that
// answer at once.
type sessionClient struct {
	t       *testing.T
	url     string
	session string
	id      int
}

func newSessionClient(t *testing.T, url string, caps map[string]any) *sessionClient {
	t.Helper()
	c := &sessionClient{t: t, url: url}
	if m := c.call("initialize", map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": caps,
		"clientInfo": map[string]any{"name": "session-test", "version": "0"},
	}); m.Error != nil {
		t.Fatalf("initialize: %+v", m.Error)
	}
	if c.session == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	c.post(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return c
}

func (c *sessionClient) post(msg any) (*http.Response, []byte) {
	c.t.Helper()
	body, _ := json.Marshal(msg)
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	hc := &http.Client{Timeout: 30 * time.Second} // a call that should fail at once must not hang the test
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// call sends a request and returns its response, from a JSON body or
// among the events of an SSE one.
func (c *sessionClient) call(method string, params any) message {
	c.t.Helper()
	c.id++
	id, _ := json.Marshal(c.id)
	resp, data := c.post(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		c.session = s
	}
	bodies := [][]byte{data}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		bodies = nil
		for line := range strings.SplitSeq(string(data), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				bodies = append(bodies, []byte(d))
			}
		}
	}
	for _, b := range bodies {
		var m message
		if json.Unmarshal(b, &m) == nil && m.Method == "" && bytes.Equal(m.ID, id) {
			return m
		}
	}
	c.t.Fatalf("%s: no response in the %d reply %q", method, resp.StatusCode, data)
	return message{}
}

func (c *sessionClient) createTask(tool string, args any) string {
	c.t.Helper()
	m := c.call("tools/call", map[string]any{"name": tool, "arguments": args, "task": map[string]any{"ttl": 60000}})
	var created struct {
		Task wireTask `json:"task"`
	}
	if m.Error != nil || json.Unmarshal(m.Result, &created) != nil || created.Task.TaskID == "" {
		c.t.Fatalf("tools/call %s as a task: %s %+v", tool, m.Result, m.Error)
	}
	return created.Task.TaskID
}

// listed is the ids tasks/list shows a client.
func listed(t *testing.T, m message) map[string]bool {
	t.Helper()
	var list struct {
		Tasks []wireTask `json:"tasks"`
	}
	if m.Error != nil || json.Unmarshal(m.Result, &list) != nil {
		t.Fatalf("tasks/list: %s %+v", m.Result, m.Error)
	}
	out := map[string]bool{}
	for _, tk := range list.Tasks {
		out[tk.TaskID] = true
	}
	return out
}

// testStores are the two task stores, each new per test; Redis on a key
// prefix of its own, deleted afterwards.
var testStores = []struct {
	name string
	open func(t *testing.T) tasks.Store
}{
	{"memory", func(*testing.T) tasks.Store { return tasks.NewMemory() }},
	{"redis", func(t *testing.T) tasks.Store {
		url := redistest.URL(t)
		prefix := "wasmhost-test:" + t.Name() + ":" + tasks.NewID()
		s, err := tasks.NewRedis(context.Background(), tasks.RedisOptions{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // registered first: runs after the servers stop
			s.Close()
			opts, _ := redis.ParseURL(url)
			rc := redis.NewClient(opts)
			defer rc.Close()
			ctx := context.Background()
			for iter := rc.Scan(ctx, 0, prefix+":*", 1000).Iterator(); iter.Next(ctx); {
				rc.Del(ctx, iter.Val())
			}
		})
		return s
	}},
}

// sameAsUnknown checks that what an intruder got for a task it may not see
// is exactly what it gets for an id that does not exist: an error, the
// same code, the same words but for the id. Anything else would tell the
// intruder that the id exists.
func sameAsUnknown(t *testing.T, what, victim string, got message, unknown string, want message) {
	t.Helper()
	if got.Error == nil {
		t.Errorf("%s: answered %s, want the error an unknown id gets", what, got.Result)
		return
	}
	if want.Error == nil {
		t.Fatalf("%s: an unknown id got %s, want an error", what, want.Result)
	}
	g := strings.ReplaceAll(got.Error.Message, victim, "<id>")
	w := strings.ReplaceAll(want.Error.Message, unknown, "<id>")
	if got.Error.Code != want.Error.Code || g != w {
		t.Errorf("%s: %d %q; an unknown id gets %d %q", what, got.Error.Code, g, want.Error.Code, w)
	}
}

// TestTaskIsolation: a task is visible only to the client that created it:
// over stdio the one client of the process (owner stdio), over stateful
// HTTP the session. For every tasks/* method and every answer path, on
// both stores, another client gets exactly what an unknown id gets, and
// the task is untouched: its owner then answers and finishes it.
func TestTaskIsolation(t *testing.T) {
	for _, st := range testStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			stdio := newFixture(t, store)
			stdio.initialize("2025-11-25", elicitingClient)
			url, _ := newHTTPFixture(t, store)
			a := newSessionClient(t, url, elicitingClient)
			b := newSessionClient(t, url, elicitingClient)
			modern := &modernClient{t: t, url: url, caps: tasksCaps, store: store}

			// The victims are not finished: a successful cancel or answer
			// by an intruder would show.
			stdioTask := stdio.createTask("confirm_delete", map[string]any{"filename": "stdio.txt"})
			question := stdio.nextRequest() // the relay asks the owner, and only it
			// Session A keeps no stream open for questions: its task
			// computes instead, for longer than the test.
			aTask := a.createTask("slow_compute", map[string]any{"seconds": 600})
			// A plain call is nobody's task, its own client's included.
			now := time.Now()
			plain := &tasks.Task{ID: tasks.NewID(), Kind: tasks.KindCall, Owner: "stdio", Tool: "greet", Status: tasks.Working, TTL: time.Minute, CreatedAt: now, UpdatedAt: now}
			if err := store.Create(context.Background(), plain); err != nil {
				t.Fatal(err)
			}

			type caller struct {
				name string
				call func(method string, params map[string]any) message
			}
			viaStdio := caller{"the stdio client", func(m string, p map[string]any) message { return stdio.call(m, p) }}
			viaB := caller{"HTTP session B", func(m string, p map[string]any) message { return b.call(m, p) }}
			viaModern := caller{"a 2026-07-28 client", func(m string, p map[string]any) message {
				r := modern.call(m, p)
				out := message{}
				if r.Error != nil {
					out.Error = &struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					}{r.Error.Code, r.Error.Message}
				} else {
					out.Result, _ = json.Marshal(r.Result)
				}
				return out
			}}
			answer := map[string]any{"confirm": acceptDelete}
			cases := []struct {
				victim   string
				intruder caller
				methods  []string
			}{
				{stdioTask, viaB, []string{"tasks/get", "tasks/result", "tasks/cancel"}},
				{stdioTask, viaModern, []string{"tasks/get", "tasks/cancel", "tasks/update"}},
				{aTask, viaB, []string{"tasks/get", "tasks/result", "tasks/cancel"}},
				{aTask, viaStdio, []string{"tasks/get", "tasks/result", "tasks/cancel"}},
				{aTask, viaModern, []string{"tasks/get", "tasks/cancel", "tasks/update"}},
				{plain.ID, viaStdio, []string{"tasks/get", "tasks/result", "tasks/cancel"}},
				{plain.ID, viaModern, []string{"tasks/get", "tasks/cancel", "tasks/update"}},
			}
			for _, tc := range cases {
				for _, method := range tc.methods {
					params := func(id string) map[string]any {
						p := map[string]any{"taskId": id}
						if method == "tasks/update" {
							p["inputResponses"] = answer
						}
						return p
					}
					unknown := tasks.NewID()
					got := tc.intruder.call(method, params(tc.victim))
					want := tc.intruder.call(method, params(unknown))
					sameAsUnknown(t, tc.intruder.name+" "+method, tc.victim, got, unknown, want)
				}
			}

			// The relay's question is the stdio client's to answer: the
			// same answer posted by session B, under the question's id,
			// reaches nobody.
			b.post(map[string]any{"jsonrpc": "2.0", "id": question.ID, "result": acceptDelete})
			if got, err := store.Get(context.Background(), stdioTask); err != nil || got.Status != tasks.InputRequired {
				t.Errorf("the stdio client's task after session B answered its question: %+v %v, want input_required", got, err)
			}

			// tasks/list shows each client its own tasks only.
			if got := listed(t, b.call("tasks/list", map[string]any{})); len(got) != 0 {
				t.Errorf("session B lists %v, want nothing", got)
			}
			if got := listed(t, a.call("tasks/list", map[string]any{})); len(got) != 1 || !got[aTask] {
				t.Errorf("session A lists %v, want just %s", got, aTask)
			}
			if got := listed(t, stdio.call("tasks/list", map[string]any{})); len(got) != 1 || !got[stdioTask] {
				t.Errorf("the stdio client lists %v, want just %s", got, stdioTask)
			}

			// Untouched: A's task still runs; the stdio client answers its
			// question and gets its result.
			var aGot wireTask
			if m := a.call("tasks/get", map[string]any{"taskId": aTask}); m.Error != nil || json.Unmarshal(m.Result, &aGot) != nil || aGot.Status != "working" {
				t.Errorf("session A's task after the intruders: %s %+v, want working", m.Result, m.Error)
			}
			stdio.reply(question, acceptDelete)
			var res toolResult
			stdio.result("tasks/result", map[string]any{"taskId": stdioTask}, &res)
			if !strings.HasPrefix(res.text(), "Not deleted stdio.txt") {
				t.Errorf("the stdio client's result after the intruders: %q", res.text())
			}
			if m := a.call("tasks/cancel", map[string]any{"taskId": aTask}); m.Error != nil {
				t.Errorf("session A cancelling its own task: %+v", m.Error)
			}
		})
	}
}

// TestRequestStateIsolation: the requestState of a 2026-07-28 plain call
// resumes that call for the client it was issued to. A client with no
// owner (stateless HTTP) replaying the state of the stdio client's call
// gets what an altered state gets, and the call is untouched.
func TestRequestStateIsolation(t *testing.T) {
	for _, st := range testStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			stdio := newFixture(t, store)
			url, _ := newHTTPFixture(t, store) // same state key: the state opens there
			modern := &modernClient{t: t, url: url, caps: elicitOnly, store: store}
			stdio.result("initialize", map[string]any{"protocolVersion": "2026-07-28", "capabilities": elicitingClient,
				"clientInfo": map[string]any{"name": "t", "version": "0"}}, nil)
			stdio.notify("notifications/initialized", map[string]any{})
			args := map[string]any{"filename": "mine.txt"}
			call := func(extra map[string]any) map[string]any {
				p := map[string]any{"name": "confirm_delete", "arguments": args,
					"_meta": map[string]any{"io.modelcontextprotocol/clientCapabilities": elicitingClient}}
				for k, v := range extra {
					p[k] = v
				}
				var out map[string]any
				stdio.result("tools/call", p, &out)
				return out
			}
			first := call(nil)
			state, _ := first["requestState"].(string)
			key := firstKey(first["inputRequests"].(map[string]any))
			if first["resultType"] != "input_required" || state == "" || key == "" {
				t.Fatalf("round 1 over stdio: %v", first)
			}

			replay := modern.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": args,
				"inputResponses": map[string]any{key: acceptDelete}, "requestState": state})
			forged := modern.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": args,
				"inputResponses": map[string]any{key: acceptDelete}, "requestState": alter(state)})
			if replay.Error == nil || forged.Error == nil || replay.Error.Code != forged.Error.Code || replay.Error.Message != forged.Error.Message {
				t.Errorf("another client replaying the stdio client's requestState: %+v; an altered state gets %+v", replay.Error, forged.Error)
			}

			// Untouched: the owner's next round still finds its question.
			second := call(map[string]any{"inputResponses": map[string]any{key: acceptDelete}, "requestState": state})
			if second["resultType"] != "complete" || !strings.Contains(toJSON(second["content"]), "Not deleted mine.txt") {
				t.Errorf("round 2 by the owner after the replay: %v", second)
			}
		})
	}
}

// alter flips a bit in the signature part of a requestState.
func alter(state string) string {
	i := strings.LastIndexByte(state, '.') + 1
	sig, err := base64.RawURLEncoding.DecodeString(state[i:])
	if err != nil || len(sig) == 0 {
		return state + "x"
	}
	sig[0] ^= 1
	return state[:i] + base64.RawURLEncoding.EncodeToString(sig)
}

// TestTaskIDsAreUnguessable: ids are 128 bits from crypto/rand, URL-safe,
// and never repeat.
func TestTaskIDsAreUnguessable(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := tasks.NewID()
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Fatalf("id %q is not 16 bytes of base64url: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("id %s issued twice", id)
		}
		seen[id] = true
	}
}
