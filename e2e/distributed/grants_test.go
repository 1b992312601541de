package distributed_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestGrantsAcrossProcesses: the worker that runs the guest enforces the
// grants it loaded (--grants), the secret it resolves from its own
// environment reaches the guest, and nothing the front end and Redis see
// holds it: not the task records, the stream, the logs or the result.
func TestGrantsAcrossProcesses(t *testing.T) {
	const token = "tok-distributed-5e1f0b93c2"
	t.Setenv("WASMHOST_TEST_TRACKER_TOKEN", token) // inherited by the processes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
			return
		}
		fmt.Fprint(w, `[{"number":1,"title":"Valve sticks","state":"open"}]`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	grants := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(grants, []byte(fmt.Sprintf(`{"plugins": {"tracker": {
  "hosts": [{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true, "pathPrefix": "/repos/"}],
  "config": {"base_url": {"value": %q}},
  "secrets": {"token": {"env": "WASMHOST_TEST_TRACKER_TOKEN"}}}}}`, u.Port(), srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}

	c := newCluster(t)
	granted := startProc(t, "granted worker", false, append([]string{"worker", "--workers", "2", "--grants", grants}, c.storeArgs(c.url)...)...)
	front, client := c.frontEnd("front end", "")
	client.initialize("2025-11-25", nil)

	id := client.startTask("list_issues", map[string]any{"repo": "acme/valves"})
	res := decodeResult(t, client.taskResult(id), "tasks/result")
	if res.IsError || !strings.Contains(res.text(), "Valve sticks") {
		t.Fatalf("granted: %+v", res)
	}

	// Refused: the same call in a deployment whose worker has no grants.
	c2 := newCluster(t)
	bare := c2.worker("worker without grants", "")
	_, client2 := c2.frontEnd("front end 2", "")
	client2.initialize("2025-11-25", nil)
	res2 := decodeResult(t, client2.taskResult(client2.startTask("list_issues", map[string]any{"repo": "acme/valves"})), "tasks/result")
	if !res2.IsError || !strings.Contains(res2.text(), "not granted") || !strings.Contains(res2.text(), "--grants FILE") {
		t.Fatalf("refused: %+v", res2)
	}

	// Grep everything the front ends and Redis hold or said.
	everything := front.log.String() + granted.log.String() + bare.log.String() + res.text() + res2.text() +
		redisDump(t, c.url, c.prefix) + redisDump(t, c.url, c2.prefix)
	if !strings.Contains(everything, "Valve sticks") {
		t.Fatal("the dump does not hold even the result: it proves nothing")
	}
	if strings.Contains(everything, token) {
		t.Errorf("the secret reached a log, a result or Redis")
	}
}

// redisDump is every value under prefix, whatever its type.
func redisDump(t *testing.T, u, prefix string) string {
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	ctx := context.Background()
	var b strings.Builder
	iter := rc.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		fmt.Fprintf(&b, "%s: ", k)
		switch rc.Type(ctx, k).Val() {
		case "string":
			b.WriteString(rc.Get(ctx, k).Val())
		case "hash":
			fmt.Fprint(&b, rc.HGetAll(ctx, k).Val())
		case "list":
			fmt.Fprint(&b, rc.LRange(ctx, k, 0, -1).Val())
		case "set":
			fmt.Fprint(&b, rc.SMembers(ctx, k).Val())
		case "zset":
			fmt.Fprint(&b, rc.ZRange(ctx, k, 0, -1).Val())
		case "stream":
			fmt.Fprint(&b, rc.XRange(ctx, k, "-", "+").Val())
		}
		b.WriteString("\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestAskThePersonAcrossProcesses: with "ask" on, a worker's guest reaching
// a declared but ungranted host makes the client's user be asked, through
// the front end and Redis; "deny" refuses the call, and "once" lets the
// request through the grant (the tracker's host 127.0.0.1 is then refused
// as a loopback address, since asked grants never allow private addresses:
// the refusal changes from not_granted to refused, which is the proof).
func TestAskThePersonAcrossProcesses(t *testing.T) {
	grants := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(grants, []byte(`{"ask": true, "plugins": {"tracker": {"config": {"base_url": {"value": "https://127.0.0.1"}}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	startProc(t, "asking worker", false, append([]string{"worker", "--workers", "2", "--grants", grants}, c.storeArgs(c.url)...)...)
	_, client := c.frontEnd("front end", "")
	client.initialize("2025-11-25", elicits)
	for _, tc := range []struct {
		decision, want string
	}{
		{"deny", "did not allow it"},
		{"once", "loopback"},
	} {
		id := client.startTask("list_issues", map[string]any{"repo": "acme/valves"})
		req := client.nextRequest("the grant question")
		if req.Method != "elicitation/create" || relatedTask(req) != id ||
			!strings.Contains(string(req.Params), "tracker") || !strings.Contains(string(req.Params), "127.0.0.1") {
			t.Fatalf("asked %s: %s", req.Method, req.Params)
		}
		client.reply(req, map[string]any{"action": "accept", "content": map[string]any{"decision": tc.decision}})
		res := decodeResult(t, client.taskResult(id), "tasks/result")
		if !res.IsError || !strings.Contains(res.text(), tc.want) {
			t.Errorf("%s: %s, want an error mentioning %q", tc.decision, res.text(), tc.want)
		}
	}
}
