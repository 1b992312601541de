package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Pinned modules: a suspended task resumes by replaying its journal against
// the module it started with, even after the plugin's file changed. The
// catalog therefore keeps a copy of every module it loads, named by its
// digest, in ModulesDir, and [Catalog.Pinned] loads one back on demand.
// Copies are never deleted by wasmhost: each is one version of a plugin
// (a few MiB); an operator may delete those older than the longest a task
// may wait (docs/host.md).

// ErrModuleGone: the module a task started with is neither served nor kept
// any more, so the task cannot be resumed by replay.
var ErrModuleGone = errors.New("pinned module is gone")

// maxPinnedLoaded caps the old module versions a catalog keeps loaded at
// once; the least recently used is closed first (calls in flight finish).
const maxPinnedLoaded = 8

// pinnedSet is the catalog's kept modules: where they are, and those
// loaded.
type pinnedSet struct {
	dir string // "" when keeping is off (no directory could be made)

	mu     sync.Mutex
	loaded map[string]*Plugin // by digest
	order  []string           // digests, least recently used first
}

// modulePath is where the module with digest is kept; ok is false for a
// digest that is not "sha256:" and 64 hex digits.
func (s *pinnedSet) modulePath(digest string) (string, bool) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", false
	}
	return filepath.Join(s.dir, h+".wasm"), true
}

// keep stores bin, loaded as plugin file name, unless it is kept already.
// The name goes beside it, so that a pinned copy runs under the same name
// (its grants, its argv).
func (s *pinnedSet) keep(digest, name string, bin []byte) error {
	if s.dir == "" {
		return nil
	}
	path, ok := s.modulePath(digest)
	if !ok {
		return fmt.Errorf("bad digest %q", digest)
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := writeFileAtomic(strings.TrimSuffix(path, ".wasm")+".name", []byte(name)); err != nil {
		return err
	}
	return writeFileAtomic(path, bin)
}

// Pinned returns a plugin running exactly the module with digest for the
// tool name: the one serving it now if its digest matches, else the kept
// copy, loaded under the plugin file name it was first loaded with (so the
// same grants apply). An error wraps ErrModuleGone when the module is not
// kept.
func (c *Catalog) Pinned(name, digest string) (*Plugin, error) {
	if e, ok := c.Lookup(name); ok && e.Plugin.Digest() == digest {
		return e.Plugin, nil
	}
	s := c.pinned
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.loaded[digest]; ok {
		s.touch(digest)
		return p, nil
	}
	gone := func(why string) error {
		return fmt.Errorf("tool %s: the module %.80s it started with %s: %w", name, digest, why, ErrModuleGone)
	}
	if s.dir == "" {
		return nil, gone("is not served, and modules are not kept")
	}
	path, ok := s.modulePath(digest)
	if !ok {
		return nil, gone("is not a module digest")
	}
	bin, err := readModule(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, gone("is no longer kept in " + s.dir)
	}
	if err != nil {
		return nil, gone(fmt.Sprintf("cannot be read: %v", err))
	}
	sum := sha256.Sum256(bin)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, gone("was changed on disk")
	}
	file, err := os.ReadFile(strings.TrimSuffix(path, ".wasm") + ".name")
	if err != nil || filepath.Base(string(file)) != string(file) || len(file) == 0 {
		return nil, gone("has no readable plugin name beside it")
	}
	p, err := c.rt.load(c.ctx, path, string(file), bin, sum)
	if err != nil {
		return nil, fmt.Errorf("tool %s: the module %.80s it started with: %w", name, digest, err)
	}
	s.loaded[digest] = p
	s.touch(digest)
	for len(s.order) > maxPinnedLoaded {
		old := s.order[0]
		s.order = s.order[1:]
		s.loaded[old].retire()
		delete(s.loaded, old)
	}
	return p, nil
}

// touch makes digest the most recently used; s.mu held.
func (s *pinnedSet) touch(digest string) {
	for i, d := range s.order {
		if d == digest {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	s.order = append(s.order, digest)
}

// close closes the pinned plugins loaded.
func (s *pinnedSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.loaded {
		p.retire()
	}
	s.loaded, s.order = map[string]*Plugin{}, nil
}
