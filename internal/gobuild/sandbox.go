package gobuild

import (
	"bufio"
	"bytes"
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
//     file over MaxSourceFile refuses the build, and so does a go.mod
//     replace directive naming a directory outside it.
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
			if d.Name() == "go.mod" {
				return checkReplaces(root, path)
			}
		}
		return nil
	})
}

// checkReplaces refuses a go.mod inside the plugin whose replace
// directives name a local directory outside it.
func checkReplaces(root, goMod string) error {
	src, err := os.ReadFile(goMod)
	if err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "replace (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case !inBlock && !strings.HasPrefix(line, "replace "):
			continue
		}
		_, to, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		fields := strings.Fields(to)
		if len(fields) == 0 {
			continue
		}
		path := strings.Trim(fields[0], `"`)
		if !(strings.HasPrefix(path, "./") || strings.HasPrefix(path, "../") || filepath.IsAbs(path) || path == "." || path == "..") {
			continue // a module path, fetched (or not) like any other
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(goMod), path)
		}
		resolved, err := filepath.EvalSymlinks(path)
		if err != nil {
			resolved = filepath.Clean(path)
		}
		if !within(root, resolved) {
			return fmt.Errorf("gobuild: %s: replace directive %q names a directory outside the plugin; %w refused", goMod, strings.TrimSpace(to), ErrUnsafeSource)
		}
	}
	return nil
}

// within reports whether path lies inside (or is) dir; both resolved.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
