package gobuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// What a build may do. Building a source plugin runs the Go toolchain on
// inputs the plugin chose, so the build is fenced:
//
//   - Environment: only PATH, HOME, TMPDIR, XDG_CACHE_HOME and the Go cache
//     and module locations (GOCACHE, GOMODCACHE, GOPATH, GOROOT) pass from
//     the server's environment; nothing else (no tokens, no cloud
//     credentials, no GOFLAGS). GOOS=wasip1, GOARCH=wasm, CGO_ENABLED=0.
//   - Toolchain: GOTOOLCHAIN=local. A go.mod asking for a newer Go or a
//     `toolchain` line fails the build instead of downloading and running
//     another toolchain.
//   - Network: none unless the operator sets Builder.AllowNetwork:
//     GOPROXY=off, so dependencies come only from the module cache or a
//     vendor directory; GOWORK=off, so no go.work above the plugin adds
//     modules. With AllowNetwork, GOPROXY, GOSUMDB, GOPRIVATE, GONOPROXY,
//     GONOSUMDB and GOINSECURE pass from the environment too.
//   - Files: before anything runs, the plugin directory is walked: a
//     symbolic link leading out of it, a FIFO, device or socket, or a .go
//     file over MaxSourceFile refuses the build. A go.mod replace directive
//     naming a local directory outside the plugin is allowed (`wasmhost new
//     --sdk` writes one): its target must itself be a Go module, which
//     takes a deliberate act, unlike a link to any file.
//   - Time: Builder.Timeout (DefaultBuildTimeout) bounds go list and go
//     build together.
//
// The compiler still runs with the server's user: a build can read what
// the go command reads (the module cache, the toolchain) and write only the
// Go build cache and the output file.
const (
	DefaultBuildTimeout = 5 * time.Minute
	// MaxSourceFile caps one .go file of a plugin.
	MaxSourceFile = 16 << 20
	// maxTreeEntries caps the files and directories a plugin may hold.
	maxTreeEntries = 20_000
)

// ErrUnsafeSource is wrapped by the error of a build refused because the
// plugin directory holds something that could reach outside it.
var ErrUnsafeSource = errors.New("unsafe plugin source")

// passEnv lists the variables that pass from the server's environment.
var passEnv = []string{"PATH", "HOME", "TMPDIR", "XDG_CACHE_HOME", "GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT"}

// networkEnv pass as well when the operator allows the network.
var networkEnv = []string{"GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE"}

// buildEnv is the minimal environment of every go command a build runs.
func (b *Builder) buildEnv() []string {
	env := []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS="}
	pass := passEnv
	if b.AllowNetwork {
		pass = append(append([]string(nil), passEnv...), networkEnv...)
	} else {
		env = append(env, "GOPROXY=off")
	}
	for _, k := range pass {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// checkTree refuses a plugin directory holding anything that could pull
// content from outside it into the build, or hang or flood whoever reads
// it.
func checkTree(dir string) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	entries := 0
	refuse := func(path, why string) error {
		rel, _ := filepath.Rel(dir, path)
		return fmt.Errorf("gobuild: %s: %s %s; %w refused: remove it or copy what it points to into the plugin", dir, rel, why, ErrUnsafeSource)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("gobuild: %w", err)
		}
		if entries++; entries > maxTreeEntries {
			return fmt.Errorf("gobuild: %s holds more than %d files and directories; %w refused", dir, maxTreeEntries, ErrUnsafeSource)
		}
		mode := d.Type()
		switch {
		case mode&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return refuse(path, "is a dangling or looping symbolic link")
			}
			if !within(root, target) {
				return refuse(path, "is a symbolic link leading out of the plugin directory")
			}
			fi, err := os.Stat(target)
			if err != nil || !(fi.Mode().IsRegular() || fi.IsDir()) {
				return refuse(path, "links to something that is not a regular file or directory")
			}
		case mode.IsDir():
		case !mode.IsRegular():
			return refuse(path, "is not a regular file ("+mode.String()+")")
		default:
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("gobuild: %w", err)
			}
			if strings.HasSuffix(path, ".go") && fi.Size() > MaxSourceFile {
				return refuse(path, fmt.Sprintf("is %d bytes, over the %d MiB limit for a Go file", fi.Size(), MaxSourceFile>>20))
			}
		}
		return nil
	})
}

// within reports whether path lies inside (or is) dir; both resolved.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
