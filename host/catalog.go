package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/gobuild"
)

// CatalogOptions configure [OpenCatalog]. The zero value is usable.
type CatalogOptions struct {
	// Logger receives what was loaded, built, replaced or skipped and why.
	// nil discards.
	Logger hclog.Logger
	// Builder builds subdirectories holding Go source (package main) into
	// plugins. nil means such directories are reported as problems.
	Builder *gobuild.Builder
	// OnChange, if set, is called after the catalog changed (a plugin
	// added, replaced or removed, or the problems changed), from the
	// catalog's own goroutines and never concurrently with itself.
	OnChange func()
	// Background makes OpenCatalog return at once and load the plugins
	// in the background, prebuilt .wasm files first: the catalog serves
	// each plugin as soon as it has loaded, calling OnChange every time,
	// so that a slow plugin (a build, a big module) never holds back a
	// server's start. Loaded says when the first scan has finished.
	Background bool
	// ModulesDir keeps a copy of every module the catalog loads, named by
	// its digest, so that a suspended task resumes on the module it
	// started with after the plugin changed ([Catalog.Pinned]). "" means
	// "modules" beside the runtime's compilation cache directory.
	ModulesDir string
}

// ToolEntry is one tool the catalog serves and the plugin serving it.
type ToolEntry struct {
	Tool   abi.Tool
	Plugin *Plugin
}

// PromptEntry is one prompt the catalog serves and the plugin serving it.
type PromptEntry struct {
	Prompt abi.Prompt
	Plugin *Plugin
}

// ResourceEntry is one resource (fixed URI) the catalog serves and the
// plugin serving it.
type ResourceEntry struct {
	Resource abi.Resource
	Plugin   *Plugin
}

// TemplateEntry is one resource template the catalog serves and the plugin
// serving the URIs that match it.
type TemplateEntry struct {
	Template abi.ResourceTemplate
	Plugin   *Plugin
}

// Problem is a plugin the catalog skipped, or a tool it hid, and why.
type Problem struct {
	File   string // the .wasm file or source directory
	Reason string
	// Conflict, for a name File offers that another plugin already
	// serves, says which; its zero value means another problem.
	Conflict Conflict
}

// Conflict is a name refused to a newcomer because Holder serves it.
type Conflict struct {
	Kind, Name string // "tool", "prompt", "resource", "resource template"
	Holder     string // the entry name (file or directory) serving it
}

func (p Problem) String() string { return p.File + ": " + p.Reason }

// Catalog keeps every plugin in a directory loaded and follows changes to
// it. It serves each *.wasm file, and each subdirectory holding Go source of
// package main, built with the Builder. A broken plugin is logged, listed in
// Problems and skipped; it never stops the others.
//
// When two plugins offer a tool of the same name, the one that served it
// first keeps it (of plugins loaded together, the oldest file, then the
// name that sorts first); the newcomer's tool is not served, and is listed
// as shadowed in Problems and logged. A plugin dropped in later can never
// take a name over. Names beginning with "." or "_" are ignored, as the
// go command does.
//
// A plugin that is replaced or removed stops taking calls, but calls already
// running in it finish normally. Look tools up for every call rather than
// keeping a ToolEntry: a stale entry's Plugin fails with [ErrClosed].
type Catalog struct {
	rt       *Runtime
	dir      string
	opts     CatalogOptions
	log      hclog.Logger
	watcher  *fsnotify.Watcher
	debounce time.Duration
	watched  map[string]bool // directories under watch
	// watchCapped: the last syncWatches hit maxWatches.
	watchCapped bool

	ctx       context.Context
	cancel    context.CancelFunc
	started   bool          // watch is running
	done      chan struct{} // closed when watch returns
	closeOnce sync.Once

	// entries is owned by the goroutine that scans: OpenCatalog, then
	// watch; so are owners, the entry name serving each tool, prompt,
	// resource and template (kind + "\x00" + key), and seq. During a
	// background first scan (progressive) the loading goroutines also
	// write entries and owners, under rescan's lock.
	entries     map[string]*entry
	owners      map[string]string
	seq         uint64
	progressive bool
	loaded      chan struct{} // closed when the first scan has finished

	// reloads names the entries whose plugin, listed from the description
	// cache, failed to start; reloadSignal wakes watch to load them again.
	reloadMu     sync.Mutex
	reloads      map[string]bool
	reloadSignal chan struct{}
	pinned       *pinnedSet // kept copies of the modules loaded (pinned.go)

	mu       sync.RWMutex
	tools    []ToolEntry
	byName   map[string]ToolEntry
	problems []Problem
	served   served
}

// served is what the catalog serves besides tools.
type served struct {
	prompts      []PromptEntry
	promptByName map[string]PromptEntry
	resources    []ResourceEntry
	resourceByID map[string]ResourceEntry
	templates    []TemplateEntry
}

// entry is one file or directory of the catalog and what became of it.
type entry struct {
	name    string // in the catalog directory
	key     [32]byte
	plugin  *Plugin // nil if broken
	problem string
	// seq orders entries by when they first loaded, modTime those that
	// loaded in the same scan: the first to serve a name keeps it.
	seq     uint64
	modTime time.Time
}

// OpenCatalog loads every plugin in dir and starts following changes.
// Only a dir that cannot be read or watched is an error.
func OpenCatalog(ctx context.Context, rt *Runtime, dir string, opts CatalogOptions) (*Catalog, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("catalog: %s is not a directory", dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("catalog: watch %s: %w", dir, err)
	}
	c := &Catalog{
		rt:       rt,
		dir:      dir,
		opts:     opts,
		log:      opts.Logger,
		watcher:  w,
		debounce: 200 * time.Millisecond,
		watched:  make(map[string]bool),
		entries:  make(map[string]*entry),
		done:     make(chan struct{}),
		loaded:   make(chan struct{}),

		reloads:      make(map[string]bool),
		reloadSignal: make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	c.pinned = &pinnedSet{dir: opts.ModulesDir, loaded: map[string]*Plugin{}}
	if c.pinned.dir == "" {
		c.pinned.dir = filepath.Join(filepath.Dir(rt.opts.CacheDir), "modules")
	}
	if err := os.MkdirAll(c.pinned.dir, 0o700); err != nil {
		c.log.Warn("modules are not kept: a suspended task cannot resume after its plugin changes", "dir", c.pinned.dir, "error", err)
		c.pinned.dir = ""
	}
	// Builds and loads outlive the ctx of this call: they belong to the
	// catalog until Close.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := c.watcher.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("catalog: watch %s: %w", dir, err)
	}
	c.watched[dir] = true
	if opts.Background {
		// Fail now on a directory that cannot be listed; load later.
		if _, err := c.candidates(); err != nil {
			c.Close()
			return nil, err
		}
	} else {
		if _, err := c.rescan(nil); err != nil {
			c.Close()
			return nil, err
		}
		close(c.loaded)
	}
	c.started = true
	go c.watch()
	return c, nil
}

// Loaded is closed once the plugins present when the catalog opened have
// been loaded (or skipped). Without Background that is before OpenCatalog
// returns.
func (c *Catalog) Loaded() <-chan struct{} { return c.loaded }

// firstScan is OpenCatalog's scan, run by watch in the background.
func (c *Catalog) firstScan() {
	defer close(c.loaded)
	start := time.Now()
	c.progressive = true
	changed, err := c.rescan(nil)
	c.progressive = false
	if err != nil {
		c.log.Error("scanning the plugin directory", "dir", c.dir, "error", err)
	}
	if changed && c.opts.OnChange != nil {
		c.opts.OnChange()
	}
	c.mu.RLock()
	tools, problems := len(c.tools), len(c.problems)
	c.mu.RUnlock()
	c.log.Info("all plugins loaded", "tools", tools, "problems", problems, "took", time.Since(start).Round(time.Millisecond))
}

// Tools returns every tool served, sorted by name.
func (c *Catalog) Tools() []ToolEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]ToolEntry(nil), c.tools...)
}

// Lookup finds the tool of that name.
func (c *Catalog) Lookup(name string) (ToolEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byName[name]
	return e, ok
}

// Prompts returns every prompt served, sorted by name.
func (c *Catalog) Prompts() []PromptEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]PromptEntry(nil), c.served.prompts...)
}

// LookupPrompt finds the prompt of that name.
func (c *Catalog) LookupPrompt(name string) (PromptEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.served.promptByName[name]
	return e, ok
}

// Resources returns every resource with a fixed URI served, sorted by URI.
func (c *Catalog) Resources() []ResourceEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]ResourceEntry(nil), c.served.resources...)
}

// ResourceTemplates returns every resource template served, sorted by
// template.
func (c *Catalog) ResourceTemplates() []TemplateEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]TemplateEntry(nil), c.served.templates...)
}

// LookupResource finds the plugin serving uri: the one listing it as a
// resource, else the one whose template (in sorted order) first matches it
// (RFC 6570 level 1: each {var} matches one or more characters other than
// "/").
func (c *Catalog) LookupResource(uri string) (plugin *Plugin, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, ok := c.served.resourceByID[uri]; ok {
		return e.Plugin, true
	}
	for _, t := range c.served.templates {
		if _, ok := abi.MatchTemplate(t.Template.URITemplate, uri); ok {
			return t.Plugin, true
		}
	}
	return nil, false
}

// Problems lists broken plugins and shadowed tools, prompts, resources and
// templates, sorted by file.
func (c *Catalog) Problems() []Problem {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]Problem(nil), c.problems...)
}

// Close stops following changes and closes the catalog's plugins; calls in
// flight finish first (see [Plugin.Close]). The Runtime stays open.
func (c *Catalog) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.cancel()
		err = c.watcher.Close()
		if c.started {
			<-c.done // watch closes the plugins on its way out
		} else {
			c.closePlugins()
		}
		c.mu.Lock()
		c.tools, c.byName, c.problems, c.served = nil, nil, nil, served{}
		c.mu.Unlock()
	})
	return err
}

// watch waits for changes and rescans once they have settled, so that a
// file being copied in is loaded once, complete.
func (c *Catalog) watch() {
	defer close(c.done)
	defer c.closePlugins()
	if c.opts.Background {
		c.firstScan()
	}
	timer := time.NewTimer(c.debounce)
	timer.Stop()
	defer timer.Stop()
	dirty := map[string]bool{} // entry names touched; "" means everything
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev, ok := <-c.watcher.Events:
			if !ok {
				return
			}
			name, ok := c.entryName(ev.Name)
			if !ok || ev.Op == fsnotify.Chmod {
				continue
			}
			dirty[name] = true
			timer.Reset(c.debounce)
		case <-c.reloadSignal:
			c.reloadMu.Lock()
			for name := range c.reloads {
				dirty[name] = true
			}
			clear(c.reloads)
			c.reloadMu.Unlock()
			timer.Reset(c.debounce)
		case err, ok := <-c.watcher.Errors:
			if !ok {
				return
			}
			c.log.Warn("watching the plugin directory", "dir", c.dir, "error", err)
			dirty[""] = true // events may have been lost
			timer.Reset(c.debounce)
		case <-timer.C:
			only := dirty
			if dirty[""] {
				only = nil
			}
			dirty = map[string]bool{}
			changed, err := c.rescan(only)
			if err != nil {
				c.log.Error("rescanning the plugin directory", "dir", c.dir, "error", err)
			}
			if changed && c.opts.OnChange != nil {
				c.opts.OnChange()
			}
		}
	}
}

// reload has watch load the entry name again.
func (c *Catalog) reload(name string) {
	c.reloadMu.Lock()
	c.reloads[name] = true
	c.reloadMu.Unlock()
	select {
	case c.reloadSignal <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// entryName maps a path under the catalog to the top-level name it belongs
// to, ignoring hidden and underscored names (editor and build scratch).
func (c *Catalog) entryName(path string) (string, bool) {
	rel, err := filepath.Rel(c.dir, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", false
	}
	name, _, _ := strings.Cut(rel, string(filepath.Separator))
	return name, !ignored(name)
}

func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func (c *Catalog) closePlugins() {
	c.pinned.close()
	for _, e := range c.entries {
		if e.plugin != nil {
			e.plugin.retire()
		}
	}
}

// candidate is a directory entry that may be a plugin. refuse, if set, is
// why it will not be loaded (a link leading out of the directory).
type candidate struct {
	name   string
	isDir  bool
	refuse string
}

// rescan brings the catalog in line with the directory. only, if non-nil,
// limits reloading to those names; new and vanished names are always
// handled. It reports whether anything visible changed.
func (c *Catalog) rescan(only map[string]bool) (bool, error) {
	cands, err := c.candidates()
	if err != nil {
		return false, err
	}
	c.syncWatches(cands)
	if c.progressive {
		c.log.Info("loading plugins", "dir", c.dir, "count", len(cands))
		// Prebuilt modules load in milliseconds; builds take longer.
		sort.SliceStable(cands, func(i, j int) bool { return !cands[i].isDir && cands[j].isDir })
	}

	next := make(map[string]*entry, len(cands))
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		sem     = make(chan struct{}, runtime.GOMAXPROCS(0))
		changed bool
	)
	for _, cd := range cands {
		mu.Lock() // a progressive scan's loaders write c.entries meanwhile
		old := c.entries[cd.name]
		if old != nil && only != nil && !only[cd.name] {
			next[cd.name] = old
			mu.Unlock()
			continue
		}
		mu.Unlock()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e := c.loadEntry(cd, old)
			mu.Lock()
			defer mu.Unlock()
			next[cd.name] = e
			if e != old {
				changed = true
			}
			if c.progressive && c.ctx.Err() == nil {
				// Serve it now; nothing is being replaced on a first scan.
				c.entries[cd.name] = e
				if c.publish() && c.opts.OnChange != nil {
					c.opts.OnChange()
				}
			}
		}()
	}
	wg.Wait()
	c.seq++
	for _, e := range next {
		if e.seq == 0 {
			e.seq = c.seq
		}
	}
	for name, old := range c.entries {
		if next[name] == old {
			continue
		}
		changed = true
		if old.plugin != nil {
			old.plugin.retire() // calls in flight finish on their instances
			if next[name] == nil {
				c.log.Info("plugin removed", "file", filepath.Join(c.dir, name))
			}
		}
	}
	c.entries = next
	if c.publish() {
		changed = true
	}
	return changed, nil
}

// candidates lists the *.wasm files and Go source directories in the
// catalog directory. Symbolic links are followed only to targets inside
// the directory: a cloned plugin repository may carry a link to anything
// on the host.
func (c *Catalog) candidates() ([]candidate, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	var out []candidate
	for _, de := range ents {
		name := de.Name()
		if ignored(name) {
			continue
		}
		path := filepath.Join(c.dir, name)
		fi, err := os.Lstat(path)
		if err != nil {
			continue // vanished
		}
		var refuse string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if !insideDir(c.dir, path) {
				refuse = "is a symbolic link leading out of the plugin directory; copy the plugin in instead"
			} else if fi, err = os.Stat(path); err != nil {
				continue // a dangling link
			}
		}
		switch {
		case strings.HasSuffix(name, ".wasm") && !fi.IsDir():
			// Not only regular files: a FIFO or device is refused with a
			// reason rather than skipped in silence.
			out = append(out, candidate{name: name, refuse: refuse})
		case refuse != "" && fi.Mode()&fs.ModeSymlink != 0:
			out = append(out, candidate{name: name, refuse: refuse})
		case fi.IsDir() && isMainPackage(path):
			out = append(out, candidate{name: name, isDir: true})
		}
	}
	return out, nil
}

// maxWatches caps the directories one catalog watches.
const maxWatches = 1024

// syncWatches watches the catalog directory, every subdirectory (so that
// one becoming a plugin is noticed) and every directory inside a source
// plugin (so that editing any of its files rebuilds it).
//
// At most maxWatches directories are watched: inotify watches are a
// per-user kernel resource, and a plugin tree of a million directories
// must not exhaust them (nor the walk take minutes). Past the cap, changes
// deep inside a source plugin are not noticed; the log says so.
func (c *Catalog) syncWatches(cands []candidate) {
	want := map[string]bool{c.dir: true}
	ents, _ := os.ReadDir(c.dir)
	for _, de := range ents {
		if len(want) >= maxWatches {
			break
		}
		if de.IsDir() && !ignored(de.Name()) {
			want[filepath.Join(c.dir, de.Name())] = true
		}
	}
	for _, cd := range cands {
		if !cd.isDir {
			continue
		}
		filepath.WalkDir(filepath.Join(c.dir, cd.name), func(path string, d fs.DirEntry, err error) error {
			if len(want) >= maxWatches {
				return filepath.SkipAll
			}
			if err != nil || !d.IsDir() {
				return nil
			}
			if n := d.Name(); path != filepath.Join(c.dir, cd.name) && (ignored(n) || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			want[path] = true
			return nil
		})
	}
	if len(want) >= maxWatches && !c.watchCapped {
		c.log.Warn("too many directories to watch; changes in some will not be noticed", "dir", c.dir, "limit", maxWatches)
	}
	c.watchCapped = len(want) >= maxWatches
	for path := range c.watched {
		if !want[path] {
			c.watcher.Remove(path) // fails harmlessly if already gone
			delete(c.watched, path)
		}
	}
	for path := range want {
		if c.watched[path] {
			continue
		}
		if err := c.watcher.Add(path); err != nil {
			c.log.Warn("cannot watch for changes", "dir", path, "error", err)
			continue
		}
		c.watched[path] = true
	}
}

// loadEntry loads (building first, for source) one candidate. It returns
// old itself when the content has not changed.
func (c *Catalog) loadEntry(cd candidate, old *entry) *entry {
	e, err := safely("plugin "+cd.name+": load", c.log.Error, func() *entry { return c.loadEntryUnguarded(cd, old) })
	if err != nil {
		return &entry{name: cd.name, problem: err.Error()}
	}
	return e
}

func (c *Catalog) loadEntryUnguarded(cd candidate, old *entry) *entry {
	path := filepath.Join(c.dir, cd.name)
	e := &entry{name: cd.name}
	if fi, err := os.Lstat(path); err == nil {
		e.modTime = fi.ModTime()
	}
	fail := func(reason string) *entry {
		if old != nil && old.plugin == nil && old.problem == reason {
			return old // same failure as before: nothing new to say
		}
		e.problem = reason
		c.log.Warn("plugin skipped", "file", path, "reason", reason)
		return e
	}
	if cd.refuse != "" {
		return fail(cd.refuse)
	}
	wasmPath := path
	if cd.isDir {
		if c.opts.Builder == nil {
			return fail("Go source plugin, but this catalog has no builder: build it to a .wasm file or enable building from source")
		}
		built, cached, err := c.opts.Builder.Build(c.ctx, path)
		if err != nil {
			return fail(err.Error())
		}
		if !cached {
			c.log.Debug("built plugin", "dir", path, "wasm", built)
		}
		wasmPath = built
	}
	// The file is read and hashed unless its digest is kept for a file of
	// the same identity (describecache.go).
	restarting := old != nil && old.plugin != nil && old.plugin.failedToStart()
	var bin []byte
	digest, known := c.rt.descriptions.knownDigest(wasmPath)
	read := func() error {
		before, _ := os.Stat(wasmPath)
		var err error
		if bin, err = readModule(wasmPath); err != nil {
			return err
		}
		digest = sha256.Sum256(bin)
		if after, err := os.Stat(wasmPath); before != nil && err == nil {
			c.rt.descriptions.rememberDigest(wasmPath, before, after, digest)
		}
		return nil
	}
	if !known {
		if err := read(); err != nil {
			return fail(err.Error())
		}
	}
	e.key = digest
	if old != nil && old.key == e.key && !restarting {
		return old
	}
	// An unchanged module is listed from its description and starts on
	// its first call, unless that start just failed.
	p, listed, err := (*Plugin)(nil), false, error(nil)
	if !restarting {
		p, listed, err = c.rt.listed(wasmPath, filepath.Base(wasmPath), e.key, func() { c.reload(cd.name) })
	}
	if !listed {
		if bin == nil {
			if err := read(); err != nil {
				return fail(err.Error())
			}
		}
		e.key = digest
		p, err = c.rt.load(c.ctx, wasmPath, filepath.Base(wasmPath), bin, e.key)
	}
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return fail("runtime closed")
		}
		e.problem = err.Error()
		c.log.Warn("plugin skipped", "file", path, "reason", err)
		return e
	}
	e.plugin = p
	// A module listed from the description cache (bin unread) was kept
	// when it was loaded whole.
	if bin != nil {
		if err := c.pinned.keep(p.Digest(), p.name, bin); err != nil {
			c.log.Warn("cannot keep a copy of the module: a suspended task cannot resume after it changes", "file", path, "error", err)
		}
	}
	verb := "plugin loaded"
	if old != nil {
		verb = "plugin replaced"
	}
	c.log.Info(verb, "file", path, "tools", len(p.tools), "prompts", len(p.prompts),
		"resources", len(p.resources), "templates", len(p.templates))
	return e
}

// publish recomputes the tool table and problem list from c.entries and
// reports whether either changed.
func (c *Catalog) publish() bool {
	// The first to serve a name keeps it: entries in the order they
	// loaded (files installed together: oldest first, then by name), and
	// an entry that already served a name keeps it against any newcomer,
	// so dropping a file that sorts first cannot take a tool over.
	names := make([]string, 0, len(c.entries))
	for name := range c.entries {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := c.entries[names[i]], c.entries[names[j]]
		if a.seq != b.seq {
			return a.seq < b.seq
		}
		if !a.modTime.Equal(b.modTime) {
			return a.modTime.Before(b.modTime)
		}
		return a.name < b.name
	})
	offered := map[string]bool{} // kind + "\x00" + key + "\x00" + entry name
	for _, name := range names {
		if p := c.entries[name].plugin; p != nil {
			for _, k := range servedKeys(p) {
				offered[k+"\x00"+name] = true
			}
		}
	}

	byName := make(map[string]ToolEntry)
	var problems []Problem
	var sv served
	sv.promptByName = make(map[string]PromptEntry)
	sv.resourceByID = make(map[string]ResourceEntry)
	templateByID := make(map[string]TemplateEntry)
	// claim gives key (of kind) to the entry name unless another has it,
	// in which case it records the shadowing.
	owners := map[string]string{} // kind + "\x00" + key → entry name
	claim := func(kind, key, name, path string) bool {
		k := kind + "\x00" + key
		first, taken := owners[k]
		if prev, had := c.owners[k]; !taken && had && prev != name && offered[k+"\x00"+prev] {
			first, taken = prev, true
		}
		if taken {
			problems = append(problems, Problem{File: path, Reason: fmt.Sprintf(
				"%s %q is shadowed by the one in %s, which served it first; this one is not served: rename one of them", kind, key, first),
				Conflict: Conflict{Kind: kind, Name: key, Holder: first}})
			return false
		}
		owners[k] = name
		return true
	}
	for _, name := range names {
		e := c.entries[name]
		path := filepath.Join(c.dir, name)
		if e.plugin == nil {
			problems = append(problems, Problem{File: path, Reason: e.problem})
			continue
		}
		for _, t := range e.plugin.tools {
			if claim("tool", t.Name, name, path) {
				byName[t.Name] = ToolEntry{Tool: t, Plugin: e.plugin}
			}
		}
		for _, pr := range e.plugin.prompts {
			if claim("prompt", pr.Name, name, path) {
				sv.promptByName[pr.Name] = PromptEntry{Prompt: pr, Plugin: e.plugin}
			}
		}
		for _, r := range e.plugin.resources {
			if claim("resource", r.URI, name, path) {
				sv.resourceByID[r.URI] = ResourceEntry{Resource: r, Plugin: e.plugin}
			}
		}
		for _, t := range e.plugin.templates {
			if claim("resource template", t.URITemplate, name, path) {
				templateByID[t.URITemplate] = TemplateEntry{Template: t, Plugin: e.plugin}
			}
		}
	}
	c.owners = owners
	for _, pe := range sv.promptByName {
		sv.prompts = append(sv.prompts, pe)
	}
	sort.Slice(sv.prompts, func(i, j int) bool { return sv.prompts[i].Prompt.Name < sv.prompts[j].Prompt.Name })
	for _, re := range sv.resourceByID {
		sv.resources = append(sv.resources, re)
	}
	sort.Slice(sv.resources, func(i, j int) bool { return sv.resources[i].Resource.URI < sv.resources[j].Resource.URI })
	for _, te := range templateByID {
		sv.templates = append(sv.templates, te)
	}
	sort.Slice(sv.templates, func(i, j int) bool {
		return sv.templates[i].Template.URITemplate < sv.templates[j].Template.URITemplate
	})
	// Problems were appended entry by entry, tools first; keep them by file.
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].File < problems[j].File })
	tools := make([]ToolEntry, 0, len(byName))
	for _, te := range byName {
		tools = append(tools, te)
	}
	sort.Slice(tools, func(i, j int) bool { return tools[i].Tool.Name < tools[j].Tool.Name })

	c.mu.Lock()
	defer c.mu.Unlock()
	changed := !sameTools(c.tools, tools) || !sameProblems(c.problems, problems) || !sameServed(c.served, sv)
	for _, p := range problems {
		if p.Conflict.Kind != "" && !containsProblem(c.problems, p) {
			c.log.Warn("name conflict: the newcomer is not served", "file", p.File, "reason", p.Reason)
		}
	}
	c.tools, c.byName, c.problems, c.served = tools, byName, problems, sv
	return changed
}

// servedKeys lists what p offers, as claim keys.
func servedKeys(p *Plugin) []string {
	var keys []string
	for _, t := range p.tools {
		keys = append(keys, "tool\x00"+t.Name)
	}
	for _, pr := range p.prompts {
		keys = append(keys, "prompt\x00"+pr.Name)
	}
	for _, r := range p.resources {
		keys = append(keys, "resource\x00"+r.URI)
	}
	for _, t := range p.templates {
		keys = append(keys, "resource template\x00"+t.URITemplate)
	}
	return keys
}

func sameServed(a, b served) bool {
	if len(a.prompts) != len(b.prompts) || len(a.resources) != len(b.resources) || len(a.templates) != len(b.templates) {
		return false
	}
	for i := range a.prompts {
		if a.prompts[i].Plugin != b.prompts[i].Plugin || a.prompts[i].Prompt.Name != b.prompts[i].Prompt.Name {
			return false
		}
	}
	for i := range a.resources {
		if a.resources[i].Plugin != b.resources[i].Plugin || a.resources[i].Resource.URI != b.resources[i].Resource.URI {
			return false
		}
	}
	for i := range a.templates {
		if a.templates[i].Plugin != b.templates[i].Plugin || a.templates[i].Template.URITemplate != b.templates[i].Template.URITemplate {
			return false
		}
	}
	return true
}

func sameTools(a, b []ToolEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Plugin != b[i].Plugin || a[i].Tool.Name != b[i].Tool.Name {
			return false
		}
	}
	return true
}

func sameProblems(a, b []Problem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func containsProblem(ps []Problem, p Problem) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
