package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

// The description cache lets a catalog list a plugin's tools without
// compiling or starting it. Even from the compilation cache, wazero
// decodes and validates a whole module before it can be instantiated
// (0.5–2 s for a Go plugin on a busy machine), and the handshake then runs
// its _initialize: for a directory of plugins that is most of a start. A
// module that loaded once had its description read and checked, and that
// description depends on nothing but the module's bytes and the rules this
// host loaded it under. So a successful load keeps the description under a
// key of both (describeKey), and the catalog lists a module whose key is
// there at once, as a plugin that compiles and starts on its first call
// (Plugin.started). That start runs every check a load runs, on the file
// as it is then: a file that changed since it was listed fails the start
// instead of running, and a module that fails is reported to the catalog,
// which loads it afresh and lists the problem. The cache holds only what
// this host wrote after checking it, and is checked again when read.

// describeCacheVersion names the format of the cache and what its key
// covers.
const describeCacheVersion = "wasmhost describe v1"

// describeCache is the directory of descriptions, one file per key.
type describeCache struct {
	dir    string
	loader [32]byte // the loading rules, part of every key
	// racyWindow is how long a file must have been left alone for its
	// digest to be kept by identity.
	racyWindow time.Duration
}

// newDescribeCache keeps descriptions under dir, for the loading rules of
// r: the ABI version, the host functions a module may import (with their
// signatures), the structural limits and the memory limit. A host whose
// rules differ reads none of them.
func newDescribeCache(dir string, r *Runtime) *describeCache {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nabi %d\nlimits %+v\nmemory %d\nmax module %d\n",
		describeCacheVersion, abi.Version, moduleLimits, r.opts.MemoryLimitMiB, MaxModuleSize)
	names := make([]string, 0, len(r.imports))
	for name := range r.imports {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		def := r.imports[name]
		fmt.Fprintf(h, "import %s %x %x\n", name, def.ParamTypes(), def.ResultTypes())
	}
	c := &describeCache{dir: dir, racyWindow: racyWindow}
	h.Sum(c.loader[:0])
	return c
}

func (c *describeCache) file(digest [32]byte) string {
	h := sha256.New()
	h.Write(c.loader[:])
	h.Write(digest[:])
	return filepath.Join(c.dir, hex.EncodeToString(h.Sum(nil))+".json")
}

// get returns the description kept for the module of that digest.
func (c *describeCache) get(digest [32]byte) ([]byte, bool) {
	f, err := os.Open(c.file(digest))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, abi.MaxMessageSize+1))
	if err != nil || len(raw) > abi.MaxMessageSize {
		return nil, false
	}
	return raw, true
}

// put keeps raw, a checked description, for the module of that digest. A
// failure only costs the next start a load.
func (c *describeCache) put(digest [32]byte, raw []byte) {
	_ = writeFileAtomic(c.file(digest), raw) // a cache: a failed write costs the next start a load
}

// writeFileAtomic writes data to file through a temporary file renamed
// into place, so that a reader (maybe another process) never sees half of
// it. It makes file's directory if need be.
func writeFileAtomic(file string, data []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Hashing every module on every start costs a few milliseconds per
// megabyte, a sizeable part of a warm start with many plugins. So the
// digest of a file is also kept under its path with the file's identity
// (fileIdentity), and a start whose file has the same identity takes it
// without reading the file. Timestamps are coarse (a clock tick), so a
// file rewritten within the tick of being hashed could keep its identity:
// as git does with its index, a digest is kept only for a file unchanged
// for racyWindow when hashed. The start of a listed plugin reads and
// hashes the file anyway, before running anything in it.
const racyWindow = 2 * time.Second

func (c *describeCache) digestFile(path string) string {
	h := sha256.Sum256([]byte(describeCacheVersion + "\x00" + path))
	return filepath.Join(c.dir, "files", hex.EncodeToString(h[:16]))
}

// knownDigest returns the digest kept for the file at path, if the file
// has the identity it had when hashed.
func (c *describeCache) knownDigest(path string) (digest [32]byte, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return digest, false
	}
	id, _, ok := fileIdentity(fi)
	if !ok {
		return digest, false
	}
	f, err := os.Open(c.digestFile(path))
	if err != nil {
		return digest, false
	}
	defer f.Close()
	kept, err := io.ReadAll(io.LimitReader(f, 512))
	if err != nil {
		return digest, false
	}
	keptID, hexDigest, found := strings.Cut(string(kept), "\n")
	if !found || keptID != id || hex.DecodedLen(len(hexDigest)) != len(digest) {
		return digest, false
	}
	if _, err := hex.Decode(digest[:], []byte(hexDigest)); err != nil {
		return digest, false
	}
	return digest, true
}

// rememberDigest keeps digest, of the file at path read between the two
// stats before and after, unless the file changed meanwhile or too
// recently to tell.
func (c *describeCache) rememberDigest(path string, before, after os.FileInfo, digest [32]byte) {
	id, changed, ok := fileIdentity(before)
	if !ok || time.Since(changed) < c.racyWindow {
		return
	}
	if id2, _, ok := fileIdentity(after); !ok || id2 != id {
		return
	}
	_ = writeFileAtomic(c.digestFile(path), []byte(id+"\n"+hex.EncodeToString(digest[:])))
}

// drop forgets the description of the module of that digest.
func (c *describeCache) drop(digest [32]byte) { os.Remove(c.file(digest)) }

// deferredStart is the start a plugin listed from the description cache
// owes: compiling its module and running the handshake, on its first call.
type deferredStart struct {
	digest [32]byte // of the file it was listed from
	onFail func()   // tells whoever listed it (the catalog), once
	once   sync.Once
	done   chan struct{} // closed when the start has ended
	err    error         // why it failed; read after done
}

// listed makes a plugin from the description kept for digest, the sha256
// of the file at path, without compiling it: it compiles and starts on its
// first call, and onFail (if set) is called if that fails. ok is false
// when no usable description is kept; err is set when one is but the
// operator's grants refuse what it needs.
func (r *Runtime) listed(path, name string, digest [32]byte, onFail func()) (p *Plugin, ok bool, err error) {
	if r.opts.FreshInstances {
		return nil, false, nil
	}
	raw, ok := r.descriptions.get(digest)
	if !ok {
		return nil, false, nil
	}
	var desc abi.Description
	if json.Unmarshal(raw, &desc) != nil || validateDescription(&desc) != nil {
		r.descriptions.drop(digest)
		return nil, false, nil
	}
	p = newPlugin(r, path, name, nil)
	p.setDigest(digest)
	if p.caps, err = r.resolveGrants(name, desc.Needs); err != nil {
		return nil, true, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %w", name, err))
	}
	p.caps.annotate(desc.Tools)
	p.setTools(desc.Tools)
	p.setExtras(&desc)
	p.deferred = &deferredStart{digest: digest, onFail: onFail, done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, true, fmt.Errorf("plugin %s: runtime %w", name, ErrClosed)
	}
	r.plugins[p] = struct{}{}
	p.log.Debug("listed plugin from the description cache; it starts on its first call", "path", path, "tools", len(desc.Tools))
	return p, true, nil
}

// started returns once p can take calls: at once for a plugin loaded
// whole; for one listed from the description cache, once its first call
// has compiled and started it (calls arriving meanwhile wait for the same
// start), or ctx has ended. The caller holds p (acquire).
func (p *Plugin) started(ctx context.Context) error {
	d := p.deferred
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		p.mu.Lock()
		p.users++ // the start uses the compiled code it makes
		p.mu.Unlock()
		go func() {
			defer p.release()
			d.err = p.startDeferred()
			if d.err != nil {
				p.log.Warn("plugin listed from the description cache failed to start; loading it again", "error", d.err)
				if errors.Is(d.err, ErrInvalidPlugin) {
					p.rt.descriptions.drop(d.digest)
				}
			}
			close(d.done)
			if d.err != nil && d.onFail != nil {
				d.onFail()
			}
		}()
	})
	select {
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failedToStart reports whether p was listed from the description cache
// and its start failed.
func (p *Plugin) failedToStart() bool {
	if d := p.deferred; d != nil {
		select {
		case <-d.done:
			return d.err != nil
		default:
		}
	}
	return false
}

// hasStarted reports whether p's compiled code, snapshot and pool are set
// (and safe to read from any goroutine).
func (p *Plugin) hasStarted() bool {
	if d := p.deferred; d != nil {
		select {
		case <-d.done:
			return d.err == nil
		default:
			return false
		}
	}
	return true
}

// startDeferred does for a listed plugin what Load did not: it reads the
// file again, checks it is the one listed, compiles it and runs the
// handshake, with every check of a load.
func (p *Plugin) startDeferred() error {
	ctx := p.rt.killed
	bin, err := readModule(p.path)
	if err != nil {
		return tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %w", p.name, err))
	}
	if sha256.Sum256(bin) != p.deferred.digest {
		return fmt.Errorf("plugin %s: the file changed since its tools were listed", p.name)
	}
	if _, _, err := p.start(ctx, bin); err != nil {
		return err
	}
	if p.snap != nil && p.caps.mountsDirs() {
		p.snapshotWithMounts(ctx)
	}
	p.startPool()
	p.log.Debug("started plugin listed from the description cache")
	return nil
}
