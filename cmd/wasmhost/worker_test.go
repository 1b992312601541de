package main

import (
	"net"
	"strings"
	"testing"
)

// unreachableRedis is a redis:// URL where nothing listens.
func unreachableRedis(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "redis://" + addr
}

// TestStoreFlagErrors: the store flags fail early, saying what to do.
func TestStoreFlagErrors(t *testing.T) {
	t.Setenv(envRedisURL, "")
	dead := unreachableRedis(t)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"worker without Redis", "", []string{"worker", "--plugins", "../../plugins"}, []string{"--redis", envRedisURL}},
		{"front end only without Redis", "", []string{"serve", "--plugins", "../../plugins", "--workers", "0"}, []string{"--workers 0", "--redis"}},
		{"negative workers", "", []string{"serve", "--plugins", "../../plugins", "--workers", "-1"}, []string{"--workers -1"}},
		{"worker with no slots", "", []string{"worker", "--plugins", "../../plugins", "--redis", dead, "--workers", "0"}, []string{"--workers 0"}},
		{"claim-idle not positive", "", []string{"serve", "--plugins", "../../plugins", "--redis", dead, "--claim-idle", "0s"}, []string{"--claim-idle"}},
		{"evict-after not positive", "", []string{"serve", "--plugins", "../../plugins", "--evict-after", "0s"}, []string{"--evict-after"}},
		{"worker evict-after not positive", "", []string{"worker", "--plugins", "../../plugins", "--redis", dead, "--evict-after", "-1s"}, []string{"--evict-after"}},
		{"serve, Redis unreachable", "", []string{"serve", "--plugins", "../../plugins", "--redis", dead}, []string{dead, "redis-server"}},
		{"worker, Redis unreachable", "", []string{"worker", "--plugins", "../../plugins", "--redis", dead}, []string{dead, "redis-server"}},
		{"worker, Redis URL from the environment", dead, []string{"worker", "--plugins", "../../plugins"}, []string{dead, "redis-server"}},
		{"bad Redis URL", "", []string{"worker", "--plugins", "../../plugins", "--redis", "http://x"}, []string{"redis://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envRedisURL, tc.env)
			_, err := run(t, "", tc.args...)
			if err == nil {
				t.Fatalf("%v succeeded", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestWorkerHelp(t *testing.T) {
	out, err := run(t, "", "worker", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--redis", "--claim-idle", "--workers", "--plugins", "idempotent", "SIGTERM", "wasmhost serve  --redis"} {
		if !strings.Contains(out, want) {
			t.Errorf("worker --help does not mention %q", want)
		}
	}
}
