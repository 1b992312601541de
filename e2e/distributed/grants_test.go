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
	grants := trackerGrants(t, token)

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

// trackerGrants starts a loopback tracker that wants token, sets the
// environment variable the grants name (the processes inherit it), and
// writes a grants file granting the tracker plugin the server and token.
func trackerGrants(t *testing.T, token string) string {
	t.Setenv("WASMHOST_TEST_TRACKER_TOKEN", token)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
			return
		}
		fmt.Fprint(w, `[{"number":1,"title":"Valve sticks","state":"open"}]`)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	grants := filepath.Join(t.TempDir(), "grants.json")
	if err := os.WriteFile(grants, []byte(fmt.Sprintf(`{"plugins": {"tracker": {
  "hosts": [{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true, "pathPrefix": "/repos/"}],
  "config": {"base_url": {"value": %q}},
  "secrets": {"token": {"env": "WASMHOST_TEST_TRACKER_TOKEN"}}}}}`, u.Port(), srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return grants
}

// TestGrantsOverHTTPEmbedded: one `wasmhost serve --http` with the embedded
// store (no Redis), called over stateless 2026-07-28 HTTP: granted, the
// tracker answers; without grants, the call is refused saying how to grant;
// with asking on, the question comes back as an input request (MRTR) and
// the answer decides.
func TestGrantsOverHTTPEmbedded(t *testing.T) {
	const token = "tok-http-embedded-77c2d1"
	grants := trackerGrants(t, token)
	askFile := filepath.Join(t.TempDir(), "ask.json")
	if err := os.WriteFile(askFile, []byte(`{"ask": true, "plugins": {"tracker": {"config": {"base_url": {"value": "https://127.0.0.1"}}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func(name string, extra ...string) (*proc, string) {
		return startHTTP(t, name, append([]string{"serve", "--plugins", pluginsDir, "--cache-dir", cacheDir, "--log-level", "info"}, extra...)...)
	}
	call := map[string]any{"name": "list_issues", "arguments": map[string]any{"repo": "acme/valves"}}
	clone := func() map[string]any {
		m := map[string]any{}
		for k, v := range call {
			m[k] = v
		}
		return m
	}

	grantedProc, granted := serve("granted", "--grants", grants)
	r, rerr := modernCall(t, granted, "tools/call", clone())
	if rerr != nil || r["isError"] == true || !strings.Contains(toJSON(r["content"]), "Valve sticks") {
		t.Errorf("granted: %v %+v", r, rerr)
	}
	_, bare := serve("no grants")
	r, rerr = modernCall(t, bare, "tools/call", clone())
	if rerr != nil || r["isError"] != true || !strings.Contains(toJSON(r["content"]), "--grants FILE") {
		t.Errorf("no grants: %v %+v", r, rerr)
	}
	if strings.Contains(grantedProc.log.String(), token) {
		t.Error("the token is in the log")
	}

	_, asking := serve("asking", "--grants", askFile)
	r1, rerr := modernCall(t, asking, "tools/call", clone())
	if rerr != nil || r1["resultType"] != "input_required" || !strings.Contains(toJSON(r1["inputRequests"]), "127.0.0.1") {
		t.Fatalf("asking, round 1: %v %+v, want input_required asking about 127.0.0.1", r1, rerr)
	}
	var key string
	for k := range r1["inputRequests"].(map[string]any) {
		key = k
	}
	round2 := clone()
	round2["requestState"] = r1["requestState"]
	round2["inputResponses"] = map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"decision": "deny"}}}
	r2, rerr := modernCall(t, asking, "tools/call", round2)
	if rerr != nil || r2["isError"] != true || !strings.Contains(toJSON(r2["content"]), "did not allow it") {
		t.Errorf("asking, denied: %v %+v", r2, rerr)
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
