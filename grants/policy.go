package grants

import (
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

// Policy is the operator's grants file, read and checked. Its zero value
// and nil grant nothing. It is safe for concurrent use.
type Policy struct {
	file string // as given, for messages
	dir  string // relative host paths are relative to the file

	ask      bool
	remember string // the file "always" answers go to; "" when ask is off
	dirsRoot string // where directories a person allows are made: dirsRoot/PLUGIN/PATH

	plugins map[string]*pluginGrants

	mu             sync.Mutex
	remembered     map[string][]HostGrant // plugin → hosts a person allowed "always"
	rememberedDirs map[string][]DirGrant  // plugin → directories a person allowed "always"
}

// HostGrant allows HTTP requests to one host.
type HostGrant struct {
	// Host is the name requests go to, as declared.
	Host string
	// Port, if not 0, is the only port allowed; 0 allows the scheme's
	// default port only.
	Port int
	// PathPrefix, if not "", is a prefix every request path must have.
	PathPrefix string
	// Methods allowed, upper case. Default GET and HEAD.
	Methods []string
	// Private allows the host to resolve to loopback, private, link-local
	// or otherwise non-public addresses. Default false: such an address is
	// refused even if the name resolves to it.
	Private bool
	// PlainHTTP allows http:// as well as https://. Default false.
	PlainHTTP bool
	// Timeout caps one request, redirects included. Default 30s.
	Timeout time.Duration
	// MaxResponseBytes caps the response body. Default and maximum
	// abi.MaxHTTPResponseBody.
	MaxResponseBytes int64

	at *node
}

// DirGrant mounts a directory of this machine into the guest.
type DirGrant struct {
	// Path is where the guest sees it (absolute, as declared).
	Path string
	// HostPath is the directory on this machine (absolute).
	HostPath string
	// Write mounts it read-write; default read-only.
	Write bool

	at *node
}

type valueGrant struct {
	value string
	env   string // name of the environment variable holding the value
	at    *node
}

type pluginGrants struct {
	hosts           []HostGrant
	dirs            []DirGrant
	config, secrets map[string]valueGrant
	at              *node
}

// Defaults of a [HostGrant].
const (
	DefaultHTTPTimeout = 30 * time.Second
	maxHTTPTimeout     = 10 * time.Minute
)

var defaultMethods = []string{"GET", "HEAD"}

const defaultMaxResponse = abi.MaxHTTPResponseBody

// Load reads and checks the grants file at file. Errors name the file, the
// line and the key.
func Load(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("grants: %w; pass --grants the path of an existing grants file", err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	p, err := parse(file, filepath.Dir(abs), data)
	if err != nil {
		return nil, err
	}
	if p.remember != "" {
		if err := p.loadRemembered(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// File is the path the policy was loaded from ("" for none).
func (p *Policy) File() string {
	if p == nil {
		return ""
	}
	return p.file
}

// Ask reports whether a person may be asked for a declared but ungranted
// host or directory.
func (p *Policy) Ask() bool { return p != nil && p.ask }

func parse(file, dir string, data []byte) (*Policy, error) {
	root, err := parseTree(file, data)
	if err != nil {
		return nil, err
	}
	if err := root.object(file, "ask", "remember", "askDirsRoot", "plugins"); err != nil {
		return nil, err
	}
	p := &Policy{file: file, dir: dir, plugins: map[string]*pluginGrants{}, remembered: map[string][]HostGrant{},
		rememberedDirs: map[string][]DirGrant{}, dirsRoot: filepath.Join(dir, "plugin-data")}
	if n := root.fields["askDirsRoot"]; n != nil {
		if err := n.want(file, 's'); err != nil {
			return nil, err
		}
		if n.str == "" {
			return nil, n.errorf(file, "empty; name the directory where directories a person allows are made, or leave the key out")
		}
		p.dirsRoot = n.str
		if !filepath.IsAbs(p.dirsRoot) {
			p.dirsRoot = filepath.Join(dir, p.dirsRoot)
		}
	}
	if n := root.fields["ask"]; n != nil {
		if err := n.want(file, 'b'); err != nil {
			return nil, err
		}
		p.ask = n.boolv
	}
	if n := root.fields["remember"]; n != nil {
		if err := n.want(file, 's'); err != nil {
			return nil, err
		}
		if n.str == "" {
			return nil, n.errorf(file, "empty; name the file that remembers \"always\" answers, or leave the key out")
		}
		p.remember = n.str
	}
	if p.ask && p.remember == "" {
		p.remember = strings.TrimSuffix(file, filepath.Ext(file)) + ".remembered.json"
	}
	if p.remember != "" && !filepath.IsAbs(p.remember) {
		p.remember = filepath.Join(dir, p.remember)
	}
	if n := root.fields["plugins"]; n != nil {
		if err := n.want(file, 'o'); err != nil {
			return nil, err
		}
		for _, name := range n.keys {
			pg, err := parsePlugin(file, dir, n.fields[name])
			if err != nil {
				return nil, err
			}
			p.plugins[name] = pg
		}
	}
	return p, nil
}

func parsePlugin(file, dir string, n *node) (*pluginGrants, error) {
	if err := n.object(file, "hosts", "dirs", "config", "secrets"); err != nil {
		return nil, err
	}
	pg := &pluginGrants{config: map[string]valueGrant{}, secrets: map[string]valueGrant{}, at: n}
	if hs := n.fields["hosts"]; hs != nil {
		if err := hs.want(file, 'a'); err != nil {
			return nil, err
		}
		for _, h := range hs.items {
			hg, err := parseHost(file, h)
			if err != nil {
				return nil, err
			}
			pg.hosts = append(pg.hosts, hg)
		}
	}
	if ds := n.fields["dirs"]; ds != nil {
		if err := ds.want(file, 'a'); err != nil {
			return nil, err
		}
		for _, d := range ds.items {
			dg, err := parseDir(file, dir, d)
			if err != nil {
				return nil, err
			}
			pg.dirs = append(pg.dirs, dg)
		}
	}
	for _, sec := range []struct {
		key string
		to  map[string]valueGrant
	}{{"config", pg.config}, {"secrets", pg.secrets}} {
		vs := n.fields[sec.key]
		if vs == nil {
			continue
		}
		if err := vs.want(file, 'o'); err != nil {
			return nil, err
		}
		for _, k := range vs.keys {
			v := vs.fields[k]
			if err := v.object(file, "value", "env"); err != nil {
				return nil, err
			}
			val, env := v.fields["value"], v.fields["env"]
			if (val == nil) == (env == nil) {
				return nil, v.errorf(file, `give exactly one of "value" (the value itself) or "env" (the environment variable holding it)`)
			}
			vg := valueGrant{at: v}
			if val != nil {
				if err := val.want(file, 's'); err != nil {
					return nil, err
				}
				vg.value = val.str
			} else {
				if err := env.want(file, 's'); err != nil {
					return nil, err
				}
				if env.str == "" {
					return nil, env.errorf(file, "empty; name an environment variable")
				}
				vg.env = env.str
			}
			sec.to[k] = vg
		}
	}
	return pg, nil
}

func parseHost(file string, n *node) (HostGrant, error) {
	if err := n.object(file, "host", "port", "pathPrefix", "methods", "private", "plainHTTP", "timeoutSeconds", "maxResponseBytes"); err != nil {
		return HostGrant{}, err
	}
	hg := HostGrant{Timeout: DefaultHTTPTimeout, MaxResponseBytes: defaultMaxResponse, at: n}
	h := n.fields["host"]
	if h == nil {
		return HostGrant{}, n.errorf(file, `missing "host"`)
	}
	if err := h.want(file, 's'); err != nil {
		return HostGrant{}, err
	}
	if err := validHost(h.str); err != nil {
		return HostGrant{}, h.errorf(file, "%v", err)
	}
	hg.Host = h.str
	number := func(key string, lo, hi float64) (float64, bool, error) {
		v := n.fields[key]
		if v == nil {
			return 0, false, nil
		}
		if err := v.want(file, 'n'); err != nil {
			return 0, false, err
		}
		if v.num != math.Trunc(v.num) || v.num < lo || v.num > hi {
			return 0, false, v.errorf(file, "want a whole number from %g to %g", lo, hi)
		}
		return v.num, true, nil
	}
	if v, ok, err := number("port", 1, 65535); err != nil {
		return HostGrant{}, err
	} else if ok {
		hg.Port = int(v)
	}
	if v, ok, err := number("timeoutSeconds", 1, maxHTTPTimeout.Seconds()); err != nil {
		return HostGrant{}, err
	} else if ok {
		hg.Timeout = time.Duration(v) * time.Second
	}
	if v, ok, err := number("maxResponseBytes", 1, abi.MaxHTTPResponseBody); err != nil {
		return HostGrant{}, err
	} else if ok {
		hg.MaxResponseBytes = int64(v)
	}
	if v := n.fields["pathPrefix"]; v != nil {
		if err := v.want(file, 's'); err != nil {
			return HostGrant{}, err
		}
		if !strings.HasPrefix(v.str, "/") || path.Clean(v.str) != strings.TrimSuffix(v.str, "/") && v.str != "/" {
			return HostGrant{}, v.errorf(file, "want a clean absolute path such as /repos/ (no .., no //)")
		}
		hg.PathPrefix = v.str
	}
	hg.Methods = defaultMethods
	if v := n.fields["methods"]; v != nil {
		if err := v.want(file, 'a'); err != nil {
			return HostGrant{}, err
		}
		hg.Methods = nil
		for _, m := range v.items {
			if err := m.want(file, 's'); err != nil {
				return HostGrant{}, err
			}
			if !validMethod(m.str) {
				return HostGrant{}, m.errorf(file, "%q is not an HTTP method; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS", m.str)
			}
			hg.Methods = append(hg.Methods, m.str)
		}
		if len(hg.Methods) == 0 {
			return HostGrant{}, v.errorf(file, "empty; list at least one method, or leave the key out for GET and HEAD")
		}
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"private", &hg.Private}, {"plainHTTP", &hg.PlainHTTP}} {
		if v := n.fields[b.key]; v != nil {
			if err := v.want(file, 'b'); err != nil {
				return HostGrant{}, err
			}
			*b.to = v.boolv
		}
	}
	return hg, nil
}

func parseDir(file, dir string, n *node) (DirGrant, error) {
	if err := n.object(file, "path", "hostPath", "write"); err != nil {
		return DirGrant{}, err
	}
	var dg DirGrant
	dg.at = n
	for _, f := range []struct {
		key string
		to  *string
	}{{"path", &dg.Path}, {"hostPath", &dg.HostPath}} {
		v := n.fields[f.key]
		if v == nil {
			return DirGrant{}, n.errorf(file, "missing %q", f.key)
		}
		if err := v.want(file, 's'); err != nil {
			return DirGrant{}, err
		}
		*f.to = v.str
	}
	if err := validGuestPath(dg.Path); err != nil {
		return DirGrant{}, n.fields["path"].errorf(file, "%v", err)
	}
	if !filepath.IsAbs(dg.HostPath) {
		dg.HostPath = filepath.Join(dir, dg.HostPath)
	}
	dg.HostPath = filepath.Clean(dg.HostPath)
	if fi, err := os.Stat(dg.HostPath); err != nil || !fi.IsDir() {
		return DirGrant{}, n.fields["hostPath"].errorf(file, "%s is not a directory on this machine; create it or fix the path", dg.HostPath)
	}
	if v := n.fields["write"]; v != nil {
		if err := v.want(file, 'b'); err != nil {
			return DirGrant{}, err
		}
		dg.Write = v.boolv
	}
	return dg, nil
}

func validMethod(m string) bool {
	return slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, m)
}

// validHost accepts a lower-case DNS name or an IP literal (IPv6 without
// brackets): what a plugin declares and an operator grants.
func validHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("host %q: want a host name such as api.github.com (no scheme, port or path)", h)
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':') {
			return fmt.Errorf("host %q: want a lower-case host name such as api.github.com (no scheme, port or path)", h)
		}
	}
	return nil
}

func validGuestPath(p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("guest path %q: want a clean absolute path other than / (such as /notes)", p)
	}
	return nil
}

// CheckNeeds checks what a plugin declares: host names, absolute guest
// paths, unique non-empty keys. The host refuses a plugin whose needs fail.
func CheckNeeds(n abi.Needs) error {
	seen := map[string]bool{}
	dup := func(kind, k string) error {
		if seen[kind+"\x00"+k] {
			return fmt.Errorf("needs: %s %q declared twice", kind, k)
		}
		seen[kind+"\x00"+k] = true
		return nil
	}
	for _, h := range n.Hosts {
		if err := validHost(h.Host); err != nil {
			return fmt.Errorf("needs: %w", err)
		}
		if err := dup("host", h.Host); err != nil {
			return err
		}
	}
	for _, d := range n.Dirs {
		if err := validGuestPath(d.Path); err != nil {
			return fmt.Errorf("needs: %w", err)
		}
		if err := dup("dir", d.Path); err != nil {
			return err
		}
	}
	for _, c := range n.Config {
		if c.Key == "" {
			return fmt.Errorf("needs: a config key is empty")
		}
		if err := dup("config key", c.Key); err != nil {
			return err
		}
	}
	for _, s := range n.Secrets {
		if s.Name == "" {
			return fmt.Errorf("needs: a secret name is empty")
		}
		if err := dup("secret", s.Name); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
