package guest

import (
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/wasmhost/wasmhost/abi"
)

// needs is what the plugin declared with the Need functions.
var needs abi.Needs

// NeedHost declares that the plugin sends HTTP requests to host (a
// lower-case name such as "api.github.com": no scheme, port or path). Call
// it from init. The declaration shows in the plugin's description; the
// operator decides whether to grant it (and which methods, ports and
// paths), or the person using the client is asked. why tells them.
func NeedHost(host, why string) {
	declare("NeedHost", func(n *abi.Needs) { n.Hosts = append(n.Hosts, abi.HostNeed{Host: host, Why: why}) })
}

// NeedDir declares that the plugin uses a directory at the absolute guest
// path p (such as "/notes"), read-only unless write. The operator mounts a
// directory of the host machine there; the plugin uses it with os and
// io/fs as usual. [Call.Dir] tells whether it is mounted.
func NeedDir(p string, write bool, why string) {
	declare("NeedDir", func(n *abi.Needs) { n.Dirs = append(n.Dirs, abi.DirNeed{Path: p, Write: write, Why: why}) })
}

// NeedConfig declares a configuration value the plugin reads with
// [Call.Config].
func NeedConfig(key, why string) {
	declare("NeedConfig", func(n *abi.Needs) { n.Config = append(n.Config, abi.ConfigNeed{Key: key, Why: why}) })
}

// NeedSecret declares a secret the plugin reads with [Call.Secret]. The
// host never logs it and removes it from what the plugin logs or returns;
// the plugin should not try to show it either.
func NeedSecret(name, why string) {
	declare("NeedSecret", func(n *abi.Needs) { n.Secrets = append(n.Secrets, abi.SecretNeed{Name: name, Why: why}) })
}

// declare adds one declaration, applying the host's rules first and
// panicking in init (a mistake in the plugin's source) rather than failing
// at load. A refused declaration leaves the others as they were.
func declare(fn string, add func(*abi.Needs)) {
	next := abi.Needs{
		Hosts:   slices.Clone(needs.Hosts),
		Dirs:    slices.Clone(needs.Dirs),
		Config:  slices.Clone(needs.Config),
		Secrets: slices.Clone(needs.Secrets),
	}
	add(&next)
	mustCheckNeeds(fn, next)
	needs = next
}

func mustCheckNeeds(fn string, needs abi.Needs) {
	seen := map[string]bool{}
	check := func(kind, k string, ok bool) {
		if !ok {
			panic(fmt.Sprintf("guest: %s: %s %q is not valid", fn, kind, k))
		}
		if seen[kind+k] {
			panic(fmt.Sprintf("guest: %s: %s %q declared twice", fn, kind, k))
		}
		seen[kind+k] = true
	}
	for _, h := range needs.Hosts {
		check("host", h.Host, validHostName(h.Host))
	}
	for _, d := range needs.Dirs {
		check("directory", d.Path, len(d.Path) > 1 && d.Path[0] == '/' && path.Clean(d.Path) == d.Path)
	}
	for _, c := range needs.Config {
		check("config key", c.Key, c.Key != "")
	}
	for _, s := range needs.Secrets {
		check("secret", s.Name, s.Name != "")
	}
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':') {
			return false
		}
	}
	return true
}

// ErrNotGranted is returned (wrapped, as a [*CapabilityError]) when the
// plugin used something it declared but the operator has not granted and
// nobody allowed when asked. The error's message names the missing grant
// and how to add it: return it to the model as it is.
var ErrNotGranted = errors.New("not granted")

// CapabilityError is a capability request wasmhost refused or could not
// carry out. Code is one of the abi.Cap* codes; errors.Is(err,
// ErrNotGranted) is true for abi.CapNotGranted.
type CapabilityError struct {
	Code    string
	Message string
}

func (e *CapabilityError) Error() string { return e.Message }

func (e *CapabilityError) Is(target error) bool {
	return target == ErrNotGranted && e.Code == abi.CapNotGranted
}

// Capability sends one request to the capability import and returns its
// result; a refused request is a [*CapabilityError]. Plugins use the typed
// helpers ([Call.Config], [Call.Secret], [Call.Dir], package guesthttp);
// this is the step they share, and the way for another SDK package to
// reach a new operation.
func (c *Call) Capability(req abi.CapabilityRequest) (abi.CapabilityResult, error) {
	msg := encodeRequest(req)
	if len(msg) > abi.MaxMessageSize {
		return abi.CapabilityResult{}, fmt.Errorf("the %s request is %d bytes, over wasmhost's limit of %d", req.Op, len(msg), abi.MaxMessageSize)
	}
	raw, status := c.host.capability(msg)
	if status < 0 {
		return abi.CapabilityResult{}, statusError(status)
	}
	res, err := decodeResult(raw)
	if err != nil {
		return abi.CapabilityResult{}, fmt.Errorf("reading wasmhost's %s result: %w", req.Op, err)
	}
	if res.Error != nil {
		return res, &CapabilityError{Code: res.Error.Code, Message: res.Error.Message}
	}
	return res, nil
}

// Config returns the configuration value the operator set for key, which
// the plugin must have declared with [NeedConfig].
func (c *Call) Config(key string) (string, error) {
	res, err := c.Capability(abi.CapabilityRequest{Op: abi.OpConfig, Name: key})
	return res.Value, err
}

// Secret returns the secret the operator granted under name, which the
// plugin must have declared with [NeedSecret].
func (c *Call) Secret(name string) (string, error) {
	res, err := c.Capability(abi.CapabilityRequest{Op: abi.OpSecret, Name: name})
	return res.Value, err
}

// Dir checks that the directory declared at guest path p is mounted, and
// returns p, so that a plugin can fail with the operator's instructions
// rather than "no such file or directory". writable says whether it is
// mounted read-write.
func (c *Call) Dir(p string) (dir string, writable bool, err error) {
	res, err := c.Capability(abi.CapabilityRequest{Op: abi.OpDir, Name: p})
	if err != nil {
		return "", false, err
	}
	return p, res.Value == "rw", nil
}
