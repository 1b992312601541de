package gobuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestBuildEnvIsMinimal(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
	t.Setenv("GOFLAGS", "-toolexec=/tmp/evil")
	t.Setenv("GOPROXY", "https://proxy.example")
	t.Setenv("GOTOOLCHAIN", "auto")
	for _, allow := range []bool{false, true} {
		env := (&Builder{AllowNetwork: allow}).buildEnv()
		for _, kv := range env {
			if strings.Contains(kv, "hunter2") || strings.Contains(kv, "toolexec") || kv == "GOTOOLCHAIN=auto" {
				t.Errorf("AllowNetwork=%v: %q passed to the build", allow, kv)
			}
		}
		if !slices.Contains(env, "GOTOOLCHAIN=local") || !slices.Contains(env, "GOWORK=off") {
			t.Errorf("AllowNetwork=%v: env = %q", allow, env)
		}
		// The last value of a variable wins in exec.
		var proxy string
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "GOPROXY="); ok {
				proxy = v
			}
		}
		if want := map[bool]string{false: "off", true: "https://proxy.example"}[allow]; proxy != want {
			t.Errorf("AllowNetwork=%v: GOPROXY=%q, want %q", allow, proxy, want)
		}
	}
}

func TestBuildRefusesUnsafeSource(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret.go"), "package main\n\nconst Secret = \"hunter2\"\n")
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"a .go file linked from outside", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(outside, "secret.go"), filepath.Join(dir, "secret.go")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory linked from outside", func(t *testing.T, dir string) {
			if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to /dev/zero", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "a.go")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a FIFO", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "a.go"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := newBuilder(t)
			dir := t.TempDir()
			write(t, filepath.Join(dir, "go.mod"), "module example.com/p\n\ngo 1.24\n")
			write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
			tc.setup(t, dir)
			_, _, err := b.Build(context.Background(), dir)
			if !errors.Is(err, ErrUnsafeSource) {
				t.Fatalf("Build: %v; want ErrUnsafeSource", err)
			}
		})
	}
}

// TestBuildNeverFetches: neither a newer toolchain nor a module missing
// from the cache is downloaded.
func TestBuildNeverFetches(t *testing.T) {
	for name, gomod := range map[string]string{
		"a newer toolchain": "module example.com/p\n\ngo 1.99\n\ntoolchain go1.99.1\n",
		"a missing module":  "module example.com/p\n\ngo 1.24\n\nrequire example.com/not/in/the/cache v1.2.3\n",
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := newBuilder(t)
			dir := t.TempDir()
			write(t, filepath.Join(dir, "go.mod"), gomod)
			write(t, filepath.Join(dir, "main.go"), "package main\n\nimport _ \"example.com/not/in/the/cache\"\n\nfunc main() {}\n")
			if _, _, err := b.Build(context.Background(), dir); err == nil {
				t.Fatal("built")
			}
		})
	}
}
