package grants

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmhost/wasmhost/abi"
)

// Grant is what one plugin may use: its declared needs and what the
// operator (or a person asked) granted of them. Its methods are safe for
// concurrent use.
type Grant struct {
	plugin   string
	policy   *Policy // nil without a grants file
	declared abi.Needs

	hosts   []HostGrant
	dirs    []DirGrant
	config  map[string]string
	secrets map[string]string
}

// Error is a refused capability: Code is one of the abi.Cap* codes, Message
// says what was refused and how to allow it. It never holds a secret.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// For resolves the grants for the plugin called name (its file name without
// .wasm) against what it declares. A grant that exceeds the declaration, or
// names an environment variable that is not set, is an error naming the
// file, line and key: the host refuses to load the plugin. A plugin the file
// does not mention, or a nil Policy, gets nothing.
func (p *Policy) For(name string, declared abi.Needs) (*Grant, error) {
	g := &Grant{plugin: name, policy: p, declared: declared, config: map[string]string{}, secrets: map[string]string{}}
	if p == nil {
		return g, nil
	}
	pg := p.plugins[name]
	if pg == nil {
		pg = &pluginGrants{}
	}
	file := p.file
	for _, h := range pg.hosts {
		if !slices.ContainsFunc(declared.Hosts, func(d abi.HostNeed) bool { return d.Host == h.Host }) {
			return nil, h.at.fields["host"].errorf(file, "plugin %s does not declare host %s (it declares %s); a grant cannot exceed what the plugin declares",
				name, h.Host, listOr(hostNames(declared.Hosts)))
		}
		g.hosts = append(g.hosts, h)
	}
	for _, d := range pg.dirs {
		i := slices.IndexFunc(declared.Dirs, func(n abi.DirNeed) bool { return n.Path == d.Path })
		if i < 0 {
			return nil, d.at.fields["path"].errorf(file, "plugin %s does not declare directory %s (it declares %s); a grant cannot exceed what the plugin declares",
				name, d.Path, listOr(dirPaths(declared.Dirs)))
		}
		if d.Write && !declared.Dirs[i].Write {
			return nil, d.at.fields["write"].errorf(file, "plugin %s declares %s read-only; remove \"write\" (a grant cannot exceed what the plugin declares)", name, d.Path)
		}
		g.dirs = append(g.dirs, d)
	}
	resolve := func(kind string, grants map[string]valueGrant, declared []string, into map[string]string) error {
		for _, k := range sortedKeys(grants) {
			v := grants[k]
			if !slices.Contains(declared, k) {
				return v.at.errorf(file, "plugin %s does not declare %s %q (it declares %s); a grant cannot exceed what the plugin declares",
					name, kind, k, listOr(declared))
			}
			if v.env == "" {
				into[k] = v.value
				continue
			}
			val, ok := os.LookupEnv(v.env)
			if !ok {
				return v.at.fields["env"].errorf(file, "environment variable %s is not set; set it for wasmhost or remove the grant", v.env)
			}
			into[k] = val
		}
		return nil
	}
	if err := resolve("config key", pg.config, configKeys(declared.Config), g.config); err != nil {
		return nil, err
	}
	if err := resolve("secret", pg.secrets, secretNames(declared.Secrets), g.secrets); err != nil {
		return nil, err
	}
	return g, nil
}

// Plugin is the name the grant is for.
func (g *Grant) Plugin() string { return g.plugin }

// Declared is what the plugin declared.
func (g *Grant) Declared() abi.Needs { return g.declared }

// Hosts are the hosts granted in the file (without remembered answers).
func (g *Grant) Hosts() []HostGrant { return slices.Clone(g.hosts) }

// Dirs are the directories granted: in the file, and remembered from a
// person's "always" (for a directory still declared, never wider).
func (g *Grant) Dirs() []DirGrant {
	out := slices.Clone(g.dirs)
	for _, d := range g.policy.rememberedDirsFor(g.plugin) {
		i := slices.IndexFunc(g.declared.Dirs, func(n abi.DirNeed) bool { return n.Path == d.Path })
		if i < 0 || slices.ContainsFunc(out, func(f DirGrant) bool { return f.Path == d.Path }) {
			continue
		}
		d.Write = d.Write && g.declared.Dirs[i].Write
		out = append(out, d)
	}
	return out
}

// CanAskDir reports whether a person may be asked to allow the directory
// declared at guest path p: the operator turned asking on, and neither the
// file nor a remembered answer grants it.
func (g *Grant) CanAskDir(p string) bool {
	return g.policy.Ask() && slices.ContainsFunc(g.declared.Dirs, func(n abi.DirNeed) bool { return n.Path == p }) &&
		!slices.ContainsFunc(g.Dirs(), func(d DirGrant) bool { return d.Path == p })
}

// AskedDir is the grant a person's "once" or "always" gives for the
// directory declared at guest path p (see [Grant.CanAskDir]): a directory
// of its own under the operator's askDirsRoot, ROOT/PLUGIN/PATH, read-write
// if declared so. The plugin never chooses a directory of this machine.
func (g *Grant) AskedDir(p string) DirGrant {
	d := DirGrant{Path: p, HostPath: filepath.Join(g.policy.dirsRoot, g.plugin, filepath.FromSlash(strings.TrimPrefix(p, "/")))}
	if i := slices.IndexFunc(g.declared.Dirs, func(n abi.DirNeed) bool { return n.Path == p }); i >= 0 {
		d.Write = g.declared.Dirs[i].Write
	}
	return d
}

// RememberDir records a person's "always" for d.
func (g *Grant) RememberDir(d DirGrant) error { return g.policy.RememberDir(g.plugin, d) }

// ConfigKeys and SecretNames are the keys and names granted (never the
// secrets' values).
func (g *Grant) ConfigKeys() []string  { return sortedKeys(g.config) }
func (g *Grant) SecretNames() []string { return sortedKeys(g.secrets) }

// SecretValues are the values of the granted secrets, for the host to
// redact from everything the guest sends out. Empty values are left out.
func (g *Grant) SecretValues() []string {
	var out []string
	for _, k := range sortedKeys(g.secrets) {
		if v := g.secrets[k]; v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Config returns a granted configuration value.
func (g *Grant) Config(key string) (string, error) {
	if v, ok := g.config[key]; ok {
		return v, nil
	}
	if !slices.Contains(configKeys(g.declared.Config), key) {
		return "", g.notDeclared(fmt.Sprintf("config key %q", key), fmt.Sprintf("guest.NeedConfig(%q, why)", key))
	}
	return "", g.missing(fmt.Sprintf("config key %q", key), "config", map[string]any{key: map[string]string{"value": "..."}})
}

// Secret returns a granted secret. The error names the secret, never a
// value.
func (g *Grant) Secret(name string) (string, error) {
	if v, ok := g.secrets[name]; ok {
		return v, nil
	}
	if !slices.Contains(secretNames(g.declared.Secrets), name) {
		return "", g.notDeclared(fmt.Sprintf("secret %q", name), fmt.Sprintf("guest.NeedSecret(%q, why)", name))
	}
	return "", g.missing(fmt.Sprintf("secret %q", name), "secrets", map[string]any{name: map[string]string{"env": "NAME_OF_AN_ENVIRONMENT_VARIABLE"}})
}

// Dir returns the directory granted at the guest path p, or an error saying
// how to grant it.
func (g *Grant) Dir(p string) (DirGrant, error) {
	for _, d := range g.Dirs() {
		if d.Path == p {
			return d, nil
		}
	}
	i := slices.IndexFunc(g.declared.Dirs, func(n abi.DirNeed) bool { return n.Path == p })
	if i < 0 {
		return DirGrant{}, g.notDeclared("directory "+p, fmt.Sprintf("guest.NeedDir(%q, write, why)", p))
	}
	entry := map[string]any{"path": p, "hostPath": "/directory/on/this/machine"}
	if g.declared.Dirs[i].Write {
		entry["write"] = true
	}
	return DirGrant{}, g.missing("directory "+p, "dirs", []any{entry})
}

// CheckHTTP finds the grant allowing method on u, or explains which grant
// is missing. A host the plugin declared but nobody granted is
// abi.CapNotGranted, as is a granted host whose grant does not cover this
// method, port or path; [Grant.Declares] tells whether a person may be
// asked.
func (g *Grant) CheckHTTP(method string, u *url.URL) (HostGrant, error) {
	host := strings.ToLower(u.Hostname())
	if !g.Declares(host) { // a remembered answer may outlive a declaration
		return HostGrant{}, g.notDeclared("host "+host, fmt.Sprintf("guest.NeedHost(%q, why)", host))
	}
	// The allowed request is the common case, and a guest may send
	// thousands: find its grant before building any explanation.
	for _, h := range g.hosts {
		if h.Host == host && httpAllowed(h, method, u) == "" {
			return h, nil
		}
	}
	var near []HostGrant
	for _, h := range append(g.Hosts(), g.policy.rememberedFor(g.plugin)...) {
		if h.Host == host {
			near = append(near, h)
		}
	}
	want := map[string]any{"host": host, "methods": []string{method}}
	if u.Port() != "" {
		port, _ := strconv.Atoi(u.Port())
		want["port"] = port
	}
	if u.Scheme == "http" {
		want["plainHTTP"] = true
	}
	what := fmt.Sprintf("%s %s://%s%s", method, u.Scheme, u.Host, u.EscapedPath())
	if len(near) == 0 {
		return HostGrant{}, g.missing(what, "hosts", []any{want})
	}
	var why string
	for _, h := range near {
		if why = httpAllowed(h, method, u); why == "" {
			return h, nil
		}
	}
	return HostGrant{}, &Error{Code: abi.CapNotGranted, Message: fmt.Sprintf(
		"plugin %s may not send %s: %s; %s", g.plugin, what, why, g.howTo("hosts", []any{want}))}
}

// Asked is the grant a person's "once" or "always" gives: method
// requests to host over https, public addresses only, default limits.
func Asked(host, method string) HostGrant {
	return HostGrant{Host: host, Methods: []string{method}, Timeout: DefaultHTTPTimeout, MaxResponseBytes: defaultMaxResponse}
}

// Declares reports whether the plugin declared host.
func (g *Grant) Declares(host string) bool {
	return slices.ContainsFunc(g.declared.Hosts, func(d abi.HostNeed) bool { return d.Host == host })
}

// CanAsk reports whether a person may be asked to allow a request to host:
// the operator turned asking on and the plugin declared the host.
// A host the file grants (narrowly, or the request would have passed) is
// never asked about: the operator's word stands.
func (g *Grant) CanAsk(host string) bool {
	return g.policy.Ask() && g.Declares(host) && !slices.ContainsFunc(g.hosts, func(h HostGrant) bool { return h.Host == host })
}

// Asks reports whether the operator lets a person be asked for declared but
// ungranted hosts and directories.
func (g *Grant) Asks() bool { return g.policy.Ask() }

// Remember records a person's "always" for method requests to host.
func (g *Grant) Remember(host, method string) error { return g.policy.Remember(g.plugin, host, method) }

// httpAllowed says why h does not allow method on u, or "" if it does.
func httpAllowed(h HostGrant, method string, u *url.URL) string {
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && h.PlainHTTP):
		return fmt.Sprintf("the grant allows https only (add \"plainHTTP\": true to allow %s)", u.Scheme)
	case !portAllowed(h, u):
		return fmt.Sprintf("the grant does not allow port %s", orDefault(u.Port(), "(default)"))
	case !slices.Contains(h.Methods, method):
		return fmt.Sprintf("the grant allows methods %s, not %s", strings.Join(h.Methods, ", "), method)
	case h.PathPrefix != "" && !strings.HasPrefix(cleanPath(u), h.PathPrefix):
		return fmt.Sprintf("the grant allows paths under %s only", h.PathPrefix)
	}
	return ""
}

func portAllowed(h HostGrant, u *url.URL) bool {
	p := u.Port()
	if h.Port != 0 {
		return p == strconv.Itoa(h.Port) || p == "" && (u.Scheme == "https" && h.Port == 443 || u.Scheme == "http" && h.Port == 80)
	}
	return p == "" || u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80"
}

// cleanPath is u's path with dot segments resolved, so that /repos/../admin
// cannot pass a /repos/ prefix.
func cleanPath(u *url.URL) string {
	p := u.Path // decoded: %2e%2e is .. to a server
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (g *Grant) notDeclared(what, decl string) error {
	return &Error{Code: abi.CapNotDeclared, Message: fmt.Sprintf(
		"plugin %s used %s without declaring it, so no grant can allow it; the plugin must call %s in its init and be rebuilt",
		g.plugin, what, decl)}
}

func (g *Grant) missing(what, section string, entry any) error {
	return &Error{Code: abi.CapNotGranted, Message: fmt.Sprintf("plugin %s may not use %s: not granted; %s", g.plugin, what, g.howTo(section, entry))}
}

// howTo says exactly how to add the grant: the JSON to add, and where.
func (g *Grant) howTo(section string, entry any) string {
	if g.policy == nil || g.policy.file == "" {
		b, _ := json.Marshal(map[string]any{"plugins": map[string]any{g.plugin: map[string]any{section: entry}}})
		return fmt.Sprintf("to allow it, start wasmhost with --grants FILE where FILE holds %s", b)
	}
	b, _ := json.Marshal(entry)
	if section == "hosts" || section == "dirs" {
		b, _ = json.Marshal(entry.([]any)[0])
		return fmt.Sprintf("to allow it, add %s to \"plugins\" → %q → %q in %s and restart wasmhost", b, g.plugin, section, g.policy.file)
	}
	b = b[1 : len(b)-1] // the key and value, without the braces
	return fmt.Sprintf("to allow it, add %s to \"plugins\" → %q → %q in %s and restart wasmhost", b, g.plugin, section, g.policy.file)
}

func hostNames(h []abi.HostNeed) []string {
	out := make([]string, len(h))
	for i := range h {
		out[i] = h[i].Host
	}
	return out
}

func dirPaths(d []abi.DirNeed) []string {
	out := make([]string, len(d))
	for i := range d {
		out[i] = d[i].Path
	}
	return out
}

func configKeys(c []abi.ConfigNeed) []string {
	out := make([]string, len(c))
	for i := range c {
		out[i] = c[i].Key
	}
	return out
}

func secretNames(s []abi.SecretNeed) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].Name
	}
	return out
}

func listOr(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
