package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/safetext"
	"github.com/wasmhost/wasmhost/internal/wasmcheck"
)

// Limits on loading a plugin. Every file is hostile until checked: a FIFO
// would block the reader forever, a sparse or endless file would fill the
// host's memory, and a module crafted to be slow to compile would hold the
// catalog for minutes. See docs/security.md.
const (
	// MaxModuleSize caps a .wasm file. Go plugins are 3 to 20 MiB.
	MaxModuleSize = 64 << 20
	// compileTimeout bounds compiling one module. The section check has
	// bounded what compiling can cost; this catches what it misses, and
	// since plugins load in the background it holds nothing else back. It
	// is generous because compiling is slow where it is slowest: an 11 MiB
	// Go plugin (one that imports net/http) took over 3 minutes on a busy
	// 2-core machine under the race detector.
	compileTimeout = 10 * time.Minute
)

// moduleLimits are the structural limits of [wasmcheck], checked before
// compiling: their defaults sit 7 to 30 times above what Go emits.
var moduleLimits = wasmcheck.Limits{}

// readModule reads a plugin file without trusting it: opened without
// blocking (a FIFO would), checked to be a regular file no larger than
// MaxModuleSize that starts with the WebAssembly magic, then read through a
// limit (the file may grow meanwhile).
func readModule(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, tag(ErrInvalidPlugin, fmt.Errorf("is not a regular file (%s); only regular files are loaded", fi.Mode().Type()))
	}
	if fi.Size() > MaxModuleSize {
		return nil, tag(ErrInvalidPlugin, fmt.Errorf("is %d bytes, over the %d MiB limit for a module", fi.Size(), MaxModuleSize>>20))
	}
	head := make([]byte, len(wasmMagic))
	if n, _ := io.ReadFull(f, head); !bytes.Equal(head[:n], wasmMagic) {
		return nil, tag(ErrInvalidPlugin, notWasm(head[:n]))
	}
	// Room for the whole file and the reader's last probe for more, so
	// that reading a big module never regrows and copies the buffer.
	bin := make([]byte, len(head), fi.Size()+bytes.MinRead)
	copy(bin, head)
	buf := bytes.NewBuffer(bin)
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxModuleSize+1-int64(len(head)))); err != nil {
		return nil, err
	}
	if buf.Len() > MaxModuleSize {
		return nil, tag(ErrInvalidPlugin, fmt.Errorf("grew past the %d MiB limit for a module while being read", MaxModuleSize>>20))
	}
	return buf.Bytes(), nil
}

func notWasm(head []byte) error {
	if bytes.HasPrefix(head, wasmMagic[:4]) {
		return errors.New("is a WebAssembly component or an unsupported binary version, not a core module; build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared")
	}
	return errors.New("not a WebAssembly module; build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared")
}

// compile compiles bin, which checkModule accepted before Load's
// rewrites, under a deadline. wazero's compiler does not watch the
// context, so on the deadline the compilation is abandoned to finish (and
// be freed) on its own.
func (r *Runtime) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	type result struct {
		c   wazero.CompiledModule
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{err: fmt.Errorf("compiler panicked: %v", v)}
			}
		}()
		c, err := r.wz.CompileModule(ctx, bin)
		done <- result{c, err}
	}()
	t := time.NewTimer(compileTimeout)
	defer t.Stop()
	select {
	case res := <-done:
		return res.c, res.err
	case <-t.C:
	case <-ctx.Done():
	}
	go func() {
		if res := <-done; res.c != nil {
			res.c.Close(context.Background())
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("compiling took longer than %v", compileTimeout)
}

// checkModule refuses a module over the size limit or one wasmcheck.Check
// refuses, saying first whether it is a plugin at all.
func checkModule(bin []byte) error {
	if len(bin) > MaxModuleSize {
		return fmt.Errorf("is %d bytes, over the %d MiB limit for a module", len(bin), MaxModuleSize>>20)
	}
	st, err := wasmcheck.Check(bin, moduleLimits)
	if errors.Is(err, wasmcheck.ErrNoMemory) {
		// Say first what says most: a module missing the ABI's exports is
		// not a plugin at all.
		var missing []string
		for _, want := range requiredExports {
			if !st.FuncExports[want.name] {
				missing = append(missing, want.name)
			}
		}
		if missing != nil {
			return fmt.Errorf("%w v%d plugin: missing exports %s; build it with the wasmhost SDK and -buildmode=c-shared",
				errNotPlugin, abi.Version, strings.Join(missing, ", "))
		}
	}
	return err
}

// errNotPlugin starts the message for a module without the ABI's exports.
var errNotPlugin = errors.New("not a wasmhost ABI")

// guestMemory returns mod's linear memory, or nil if it has none: wazero
// returns a typed nil then, which a nil check does not catch.
func guestMemory(mod api.Module) api.Memory {
	mem := mod.Memory()
	if mem == nil {
		return nil
	}
	if v := reflect.ValueOf(mem); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	return mem
}

// errNoMemory is what reading or writing guest memory fails with when the
// module has none (Load refuses such modules; this is the second wall).
var errNoMemory = errors.New("the guest has no linear memory")

// recovered turns a panic into an error naming what panicked, so that one
// plugin's bug (or the host's, exposed by a plugin) ends that load or call
// and never the process. Use as: defer recovered(&err, log, "what").
func recovered(err *error, what string, logf func(msg string, args ...any)) {
	v := recover()
	if v == nil {
		return
	}
	msg := safetext.Cut(fmt.Sprint(v), 512) // may quote what the guest sent
	logf("recovered from a panic; please report it", "during", what, "panic", msg, "stack", string(debug.Stack()))
	*err = fmt.Errorf("%s: the host panicked (%s); this is a bug in wasmhost, please report it", what, msg)
}

// safely runs f, turning a panic into an error as [recovered] does.
func safely[T any](what string, logf func(msg string, args ...any), f func() T) (v T, err error) {
	defer recovered(&err, what, logf)
	return f(), nil
}

// insideDir reports whether path, with every link resolved, lies inside
// dir (itself resolved).
func insideDir(dir, path string) bool {
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	rpath, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(rdir, rpath)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// maxPackageClause is how much of a .go file isMainPackage reads to find
// its package clause.
const maxPackageClause = 64 << 10

// isMainPackage reports whether dir holds Go source of package main. It
// reads only regular files, and only their head: a FIFO or a link to
// /dev/zero named a.go must not hang or fill the host.
func isMainPackage(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		head, err := readHead(f, maxPackageClause)
		if err != nil {
			continue
		}
		if af, err := parser.ParseFile(token.NewFileSet(), f, head, parser.PackageClauseOnly); err == nil {
			return af.Name.Name == "main"
		}
	}
	return false
}

// readHead reads at most n bytes of the regular file at path, without
// following a final symbolic link and without blocking on a FIFO.
func readHead(path string, n int64) ([]byte, error) {
	if fi, err := os.Lstat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, n))
}
