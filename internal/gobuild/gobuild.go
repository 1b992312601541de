// Package gobuild turns a directory of Go source into a wasmhost plugin: it
// runs `go build -buildmode=c-shared` for GOOS=wasip1 GOARCH=wasm and keeps
// the result in an on-disk cache keyed by a hash of everything that goes into
// the build, so an unchanged plugin is never rebuilt.
//
// It owns the go command invocation and the build cache only. It knows
// nothing of wazero, MCP or how the .wasm it produces is loaded, and it never
// writes into the source directory it builds.
package gobuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest/fielddocs"
)

// Builder builds plugin directories. The zero value is ready to use; a
// Builder must not be copied after first use. Build is safe for concurrent
// use: two builds of the same content wait for one go command, and separate
// processes sharing CacheDir never see a half-written file.
type Builder struct {
	// CacheDir holds the built modules, one subdirectory per content hash.
	// "" means os.UserCacheDir()/wasmhost/build.
	CacheDir string
	// Logger says what was built and how long it took, or that the cache
	// was used. nil discards.
	Logger hclog.Logger
	// GoCmd is the go command to run. "" means "go" from PATH, then
	// $GOROOT/bin/go.
	GoCmd string
	// AllowNetwork lets builds download modules through the proxy the
	// environment names. By default they use only the module cache and
	// vendor directories (GOPROXY=off). See sandbox.go for what a build
	// may do.
	AllowNetwork bool
	// Timeout bounds one build (go list and go build). 0 means
	// DefaultBuildTimeout.
	Timeout time.Duration

	versionOnce sync.Once
	goVersion   string
	versionErr  error

	mu      sync.Mutex
	flights map[string]*flight // builds under way, by cache key
}

// flight is one go build that concurrent callers with the same key share.
type flight struct {
	done chan struct{}
	err  error
}

// generateFieldDocs returns an extra Go source file for the package in dir
// (its base name and content) that hands struct field doc comments to the
// guest SDK, so that they become JSON Schema descriptions. The file reaches
// the compiler through `go build -overlay`, so the user's directory stays
// untouched. A variable so that tests can substitute it.
var generateFieldDocs = fielddocs.Generate

// sdkImport is the guest SDK the generated file registers the docs with; a
// plugin that does not import it gets no generated file.
const sdkImport = "github.com/wasmhost/wasmhost/sdk/guest"

// Build builds the Go package in dir into a reactor .wasm and returns its
// path inside the cache. cached reports that an identical build was already
// there. A failed build returns the compiler's output in the error.
//
// The cache key covers every .go file in dir, the sources of every
// dependency that is not a versioned module (so packages of the enclosing
// module, such as the guest SDK, count), go.mod and go.sum of the enclosing
// module, the `go version` output and [abi.Version].
func (b *Builder) Build(ctx context.Context, dir string) (wasmPath string, cached bool, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("gobuild: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", false, fmt.Errorf("gobuild: %w", err)
	} else if !fi.IsDir() {
		return "", false, fmt.Errorf("gobuild: %s is not a directory", dir)
	}
	if err := checkTree(dir); err != nil {
		return "", false, err
	}
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = DefaultBuildTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("gobuild: build of %s took longer than %v", dir, timeout))
	defer cancel()
	goCmd, err := b.goCmd()
	if err != nil {
		return "", false, err
	}
	version, err := b.version(goCmd)
	if err != nil {
		return "", false, err
	}
	cacheDir, err := b.cacheDir()
	if err != nil {
		return "", false, err
	}

	overlay, cleanup, err := b.overlay(dir)
	if err != nil {
		return "", false, err
	}
	defer cleanup()

	key, err := b.buildKey(ctx, goCmd, version, cacheDir, dir, overlay)
	if err != nil {
		return "", false, err
	}
	out := filepath.Join(cacheDir, key, filepath.Base(dir)+".wasm")
	if _, err := os.Stat(out); err == nil {
		b.logger().Debug("using cached plugin build", "dir", dir, "wasm", out)
		return out, true, nil
	}

	// One go command per key in this process; others wait for it.
	b.mu.Lock()
	if f, ok := b.flights[key]; ok {
		b.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", false, fmt.Errorf("gobuild: build %s: %w", dir, ctx.Err())
		}
		if f.err != nil {
			return "", false, f.err
		}
		return out, true, nil
	}
	f := &flight{done: make(chan struct{})}
	if b.flights == nil {
		b.flights = make(map[string]*flight)
	}
	b.flights[key] = f
	b.mu.Unlock()

	f.err = b.run(ctx, goCmd, dir, out, overlay)
	if f.err != nil && overlay != nil && strings.Contains(f.err.Error(), overlay.name) {
		// The generated file itself does not compile, say against an older
		// SDK pinned by the plugin's own go.mod: descriptions are a nicety,
		// the plugin is not.
		b.logger().Warn("building without field descriptions", "dir", dir, "error", f.err)
		f.err = b.run(ctx, goCmd, dir, out, nil)
	}
	b.mu.Lock()
	delete(b.flights, key)
	b.mu.Unlock()
	close(f.done)
	if f.err != nil {
		return "", false, f.err
	}
	return out, false, nil
}

// run executes the go build, writing to a temporary file beside out and
// renaming it into place, so readers only ever see a complete module.
func (b *Builder) run(ctx context.Context, goCmd, dir, out string, ov *overlay) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".build-*.wasm")
	if err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // a no-op once renamed

	args := []string{"build", "-buildmode=c-shared", "-buildvcs=false", "-o", tmpName}
	if ov != nil {
		args = append(args, "-overlay", ov.file)
	}
	args = append(args, ".")
	start := time.Now()
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	cmd.Env = b.buildEnv()
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("gobuild: build %s: %w", dir, context.Cause(ctx))
		}
		return fmt.Errorf("gobuild: build %s: %w\n%s", dir, err, strings.TrimSpace(output.String()))
	}
	if err := os.Rename(tmpName, out); err != nil {
		return fmt.Errorf("gobuild: %w", err)
	}
	b.logger().Info("built plugin from source", "dir", dir, "wasm", out,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// overlay is a `go build -overlay` file naming generated sources.
type overlay struct {
	file string // the JSON overlay
	name string // the generated file's base name
	src  []byte // and its content, for the cache key
}

func (b *Builder) overlay(dir string) (*overlay, func(), error) {
	nop := func() {}
	if generateFieldDocs == nil || !importsSDK(dir) {
		return nil, nop, nil
	}
	name, src, err := generateFieldDocs(dir)
	if err != nil {
		// The compiler reports a broken package far better than a doc
		// generator can, so build without descriptions and let it.
		b.logger().Warn("field descriptions skipped", "dir", dir, "error", err)
		return nil, nop, nil
	}
	if name == "" {
		return nil, nop, nil
	}
	tmpDir, err := os.MkdirTemp("", "wasmhost-overlay-")
	if err != nil {
		return nil, nop, fmt.Errorf("gobuild: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmpDir) }
	gen := filepath.Join(tmpDir, filepath.Base(name))
	if err := os.WriteFile(gen, src, 0o644); err != nil {
		cleanup()
		return nil, nop, fmt.Errorf("gobuild: %w", err)
	}
	js, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(dir, filepath.Base(name)): gen},
	})
	if err != nil {
		cleanup()
		return nil, nop, fmt.Errorf("gobuild: %w", err)
	}
	file := filepath.Join(tmpDir, "overlay.json")
	if err := os.WriteFile(file, js, 0o644); err != nil {
		cleanup()
		return nil, nop, fmt.Errorf("gobuild: %w", err)
	}
	return &overlay{file: file, name: filepath.Base(name), src: src}, cleanup, nil
}

// importsSDK reports whether the wasip1 build of the package in dir imports
// the guest SDK directly. Packages that speak the ABI by hand must not get a
// generated file importing it.
func importsSDK(dir string) bool {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "wasip1", "wasm", false
	pkg, err := ctx.ImportDir(dir, 0)
	return err == nil && slices.Contains(pkg.Imports, sdkImport)
}

// listedPackage is the part of `go list -json` output the key needs.
type listedPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	EmbedFiles []string
	Module     *struct {
		Path    string
		Version string
		Main    bool
		GoMod   string
		Replace *struct {
			Path    string
			Version string
		}
	}
}

// buildKey is key, taken from the record of an earlier computation when
// none of its inputs changed (inputs.go).
func (b *Builder) buildKey(ctx context.Context, goCmd, version, cacheDir, dir string, ov *overlay) (string, error) {
	name := b.recordName(cacheDir, version, dir, ov)
	if key, ok := recalled(name); ok {
		return key, nil
	}
	key, rec, err := b.key(ctx, goCmd, version, dir, ov)
	if err == nil && rec != nil && rec.Dirs != nil {
		rec.Key = key
		record(name, rec)
	}
	return key, err
}

// key hashes everything that decides the build's output, and records what
// it read (nil when go list failed). Paths are left out of the key on
// purpose: the same plugin copied elsewhere builds to the same bytes.
func (b *Builder) key(ctx context.Context, goCmd, version, dir string, ov *overlay) (string, *inputs, error) {
	rec := &inputs{Dirs: map[string]string{}, Files: map[string]string{}}
	rec.add(dir)
	h := sha256.New()
	field := func(name string, value []byte) {
		// Length-prefixed so that no two field sequences hash alike.
		fmt.Fprintf(h, "%s %d\n", name, len(value))
		h.Write(value)
	}
	field("gobuild", []byte("v2 wasip1/wasm c-shared"))
	field("go", []byte(version))
	field("abi", []byte(strconv.Itoa(abi.Version)))
	if err := hashGoFiles(field, dir, nil); err != nil {
		return "", nil, err
	}
	if ov != nil {
		field("overlay "+ov.name, ov.src)
	}

	pkgs, err := listDeps(ctx, goCmd, dir, ov, b.buildEnv())
	if err != nil {
		// Hash what we can see; the build will fail and explain.
		b.logger().Debug("go list failed; keying on the directory only", "dir", dir, "error", err)
		if mod := findGoMod(dir); mod != "" {
			hashModFiles(field, mod)
		}
		return hex.EncodeToString(h.Sum(nil))[:32], nil, nil
	}
	for _, p := range pkgs {
		if p.Standard {
			continue
		}
		if p.Module != nil && p.Module.Main && p.Dir == dir {
			hashModFiles(field, p.Module.GoMod)
			// A go.mod appearing between dir and the module's root would
			// change the module; so would a vendor directory at the root.
			for d := dir; within(filepath.Dir(p.Module.GoMod), d); d = filepath.Dir(d) {
				rec.add(d)
				if d == filepath.Dir(d) {
					break
				}
			}
		}
		if p.Module != nil && !p.Module.Main && (p.Module.Replace == nil || p.Module.Replace.Version != "") {
			// A versioned module: go.sum pins its content.
			field("module "+p.ImportPath, []byte(p.Module.Path+"@"+p.Module.Version))
			continue
		}
		for _, f := range p.EmbedFiles {
			rec.addFile(filepath.Join(p.Dir, f))
		}
		if p.Dir == dir {
			// Its .go files are already hashed; its embedded files too.
			if len(p.EmbedFiles) > 0 {
				if err := hashGoFiles(field, dir, p.EmbedFiles); err != nil {
					return "", nil, err
				}
			}
			continue
		}
		rec.add(p.Dir)
		field("package", []byte(p.ImportPath))
		if err := hashGoFiles(field, p.Dir, append(p.GoFiles, p.EmbedFiles...)); err != nil {
			return "", nil, err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32], rec, nil
}

// hashGoFiles hashes the named files in dir, or every .go file there (tests
// excepted) when names is nil.
func hashGoFiles(field func(string, []byte), dir string, names []string) error {
	if names == nil {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("gobuild: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		src, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("gobuild: %w", err)
		}
		field("file "+n, src)
	}
	return nil
}

// hashModFiles hashes go.mod and, when present, go.sum beside it.
func hashModFiles(field func(string, []byte), goMod string) {
	for _, f := range []string{goMod, filepath.Join(filepath.Dir(goMod), "go.sum")} {
		if src, err := os.ReadFile(f); err == nil {
			field(filepath.Base(f), src)
		}
	}
}

// findGoMod returns the go.mod governing dir, or "".
func findGoMod(dir string) string {
	for {
		if f := filepath.Join(dir, "go.mod"); fileExists(f) {
			return f
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func fileExists(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && !fi.IsDir()
}

// listDeps runs `go list -deps` for the wasip1 build of dir.
func listDeps(ctx context.Context, goCmd, dir string, ov *overlay, env []string) ([]listedPackage, error) {
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,EmbedFiles,Module"}
	if ov != nil {
		args = append(args, "-overlay", ov.file)
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ImportPath < pkgs[j].ImportPath })
	return pkgs, nil
}

func (b *Builder) goCmd() (string, error) {
	if b.GoCmd != "" {
		return b.GoCmd, nil
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p, nil
		}
	}
	return "", errors.New("gobuild: no go command found: install Go or set GoCmd")
}

// version runs `go version` once per Builder, and keeps the answer in the
// cache for as long as the go binary stays the same file. It deliberately
// ignores the caller's context: a cancelled first caller must not poison
// the answer.
func (b *Builder) version(goCmd string) (string, error) {
	b.versionOnce.Do(func() {
		kept, keep := "", false
		if cacheDir, err := b.cacheDir(); err == nil {
			kept, keep = toolchainName(cacheDir, goCmd, b.buildEnv())
		}
		if keep {
			if v, err := readSmall(kept, 256); err == nil && strings.HasPrefix(string(v), "go version ") {
				b.goVersion = string(v)
				return
			}
		}
		cmd := exec.Command(goCmd, "version")
		cmd.Env = b.buildEnv() // GOTOOLCHAIN=local: the version that builds
		out, err := cmd.Output()
		if err != nil {
			b.versionErr = fmt.Errorf("gobuild: %s version: %w", goCmd, err)
			return
		}
		b.goVersion = strings.TrimSpace(string(out))
		if keep {
			writeAtomic(kept, []byte(b.goVersion))
		}
	})
	return b.goVersion, b.versionErr
}

func (b *Builder) cacheDir() (string, error) {
	if b.CacheDir != "" {
		return b.CacheDir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("gobuild: no cache directory: %w", err)
	}
	return filepath.Join(dir, "wasmhost", "build"), nil
}

func (b *Builder) logger() hclog.Logger {
	if b.Logger == nil {
		return hclog.NewNullLogger()
	}
	return b.Logger
}
