package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental/sysfs"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/grants"
)

// capabilities is what one plugin may use beyond computing and asking: its
// Grant (from Options.Grants, checked against its declared needs at load),
// the HTTP transports that enforce the address rules, and the secrets to
// keep out of everything the guest sends out.
type capabilities struct {
	grant  *grants.Grant
	http   *httpCaps
	redact *strings.Replacer // nil when the plugin holds no secrets
	// secrets are the secret values as raw bytes and as they appear
	// inside a JSON string, to keep them out of journals.
	secrets, secretsJSON [][]byte
}

// grantName is the name a plugin goes by in the grants file: its file name
// without .wasm (for a source plugin, its directory's name).
func grantName(file string) string { return strings.TrimSuffix(file, ".wasm") }

// resolveGrants checks a plugin's declared needs and resolves its grants;
// an error refuses the plugin.
func (r *Runtime) resolveGrants(name string, needs abi.Needs) (*capabilities, error) {
	if err := grants.CheckNeeds(needs); err != nil {
		return nil, err
	}
	g, err := r.opts.Grants.For(grantName(name), needs)
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	c := &capabilities{grant: g, http: r.httpCaps}
	if secrets := g.SecretValues(); len(secrets) > 0 {
		pairs := make([]string, 0, 2*len(secrets))
		for _, s := range secrets {
			pairs = append(pairs, s, "[secret redacted]")
			quoted, _ := json.Marshal(s)
			c.secrets = append(c.secrets, []byte(s))
			c.secretsJSON = append(c.secretsJSON, quoted[1:len(quoted)-1])
		}
		c.redact = strings.NewReplacer(pairs...)
	}
	return c, nil
}

// scrub removes the plugin's secrets from text the guest sends out (logs,
// progress, results): a plugin that echoes its token by mistake does not
// leak it into logs, task records or notifications.
func (c *capabilities) scrub(s string) string {
	if c == nil || c.redact == nil {
		return s
	}
	return c.redact.Replace(s)
}

// scrubResult applies scrub to every string a call result carries.
func (c *capabilities) scrubResult(res *abi.CallResult) {
	if c == nil || c.redact == nil || res == nil {
		return
	}
	for i := range res.Content {
		res.Content[i].Text = c.scrub(res.Content[i].Text)
		if r := res.Content[i].Resource; r != nil {
			r.Text = c.scrub(r.Text)
		}
	}
	if len(res.StructuredContent) > 0 {
		res.StructuredContent = json.RawMessage(c.scrubJSON(string(res.StructuredContent)))
	}
	if res.Error != nil {
		res.Error.Message = c.scrub(res.Error.Message)
		if len(res.Error.Data) > 0 {
			res.Error.Data = json.RawMessage(c.scrubJSON(string(res.Error.Data)))
		}
	}
}

// scrubPrompt and scrubResource are scrubResult for prompts and resources.
func (c *capabilities) scrubPrompt(res *abi.PromptResult) {
	if c == nil || c.redact == nil || res == nil {
		return
	}
	res.Description = c.scrub(res.Description)
	for i := range res.Messages {
		m := &res.Messages[i].Content
		m.Text = c.scrub(m.Text)
		if m.Resource != nil {
			m.Resource.Text = c.scrub(m.Resource.Text)
		}
	}
	if res.Error != nil {
		res.Error.Message = c.scrub(res.Error.Message)
	}
}

func (c *capabilities) scrubResource(res *abi.ResourceResult) {
	if c == nil || c.redact == nil || res == nil {
		return
	}
	for i := range res.Contents {
		res.Contents[i].Text = c.scrub(res.Contents[i].Text)
	}
	if res.Error != nil {
		res.Error.Message = c.scrub(res.Error.Message)
	}
}

// scrubJSON scrubs a JSON document, keeping it valid: a secret may appear
// escaped inside a string, so the value is decoded, scrubbed string by
// string and encoded again when a plain replace would not do.
func (c *capabilities) scrubJSON(doc string) string {
	if out := c.scrub(doc); json.Valid([]byte(out)) {
		return out
	}
	return `{"redacted":"the result held a secret"}`
}

// redactBytes and redactJSON remove the plugin's secrets from what goes
// into a journal: raw bytes (an HTTP body) and encoded JSON.
func (c *capabilities) redactBytes(b []byte) []byte {
	return c.redactAll(b, func(c *capabilities) [][]byte { return c.secrets })
}

func (c *capabilities) redactJSON(b []byte) []byte {
	return c.redactAll(b, func(c *capabilities) [][]byte { return c.secretsJSON })
}

func (c *capabilities) redactAll(b []byte, forms func(*capabilities) [][]byte) []byte {
	if c == nil {
		return b
	}
	for _, s := range forms(c) {
		if len(s) > 0 && bytes.Contains(b, s) {
			b = bytes.ReplaceAll(b, s, []byte("[secret redacted]"))
		}
	}
	return b
}

// mountsDirs reports whether the plugin's instances mount directories:
// granted ones, or declared ones a person may grant.
func (c *capabilities) mountsDirs() bool {
	return c != nil && (len(c.grant.Dirs()) > 0 || c.grant.Asks() && len(c.grant.Declared().Dirs) > 0)
}

// fsConfig mounts the plugin's granted directories, confined so that
// neither .. nor a symlink leads outside them, and, when the operator
// lets a person be asked, a closed gate at each other declared directory,
// returned by guest path; nil when it mounts nothing. Mounts follow the
// declaration's order, so every instance of a plugin sees the same ones.
func (c *capabilities) fsConfig() (wazero.FSConfig, map[string]*gatedFS) {
	if !c.mountsDirs() {
		return nil, nil
	}
	cfg := wazero.NewFSConfig()
	granted := c.grant.Dirs()
	var gates map[string]*gatedFS
	for _, n := range c.grant.Declared().Dirs {
		i := slices.IndexFunc(granted, func(d grants.DirGrant) bool { return d.Path == n.Path })
		switch {
		case i >= 0:
			cfg = cfg.(sysfs.FSConfig).WithSysFSMount(confine(granted[i].HostPath, granted[i].Write), n.Path)
		case c.grant.CanAskDir(n.Path):
			if gates == nil {
				gates = map[string]*gatedFS{}
			}
			gates[n.Path] = &gatedFS{}
			cfg = cfg.(sysfs.FSConfig).WithSysFSMount(gates[n.Path], n.Path)
		}
	}
	return cfg, gates
}

// capability serves the capability import: one request in, one result
// pending for response.
func (st *callState) capability(mod api.Module, ptr, n uint32) int32 {
	raw, err := read(mod, ptr, n, abi.MaxMessageSize)
	if err != nil {
		return st.bad(abi.ImportCapability, err)
	}
	var req abi.CapabilityRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return st.bad(abi.ImportCapability, fmt.Errorf("not a capability request: %w", err))
	}
	res := st.performJournalled(raw, req)
	if st.ctx.Err() != nil {
		st.pending, st.hasPending = nil, false
		return int32(abi.StatusCancelled)
	}
	b, err := json.Marshal(res)
	if err == nil && len(b) > abi.MaxMessageSize {
		err = fmt.Errorf("result of %d bytes is over the %d byte limit", len(b), abi.MaxMessageSize)
	}
	if err != nil {
		b, _ = json.Marshal(capError(abi.CapFailed, err.Error()))
	}
	st.pending, st.hasPending = b, true
	return int32(len(b))
}

// performJournalled is perform for a call that may keep a journal: it
// answers from the journal while replaying, and records what the guest
// learns, a side effect's start before it is performed.
func (st *callState) performJournalled(raw []byte, req abi.CapabilityRequest) abi.CapabilityResult {
	j := st.j
	if j == nil {
		return st.perform(req)
	}
	hash := digestOf(st.caps.redactJSON(raw))
	// A URL may hold a secret; each question skipped asked one request.
	what := st.caps.scrub(capWhat(req))
	st.asked += j.skipAsks()
	e := j.match(kindCap, hash, what)
	if e == nil {
		return st.performLive(req, hash, what, sideEffect(req))
	}
	if e.Started {
		if j.pos < len(j.replay) {
			if r := &j.replay[j.pos]; r.Kind == kindCap && r.Hash == hash && !r.Started {
				j.pos++
				return st.replayed(r, req)
			}
			j.diverged(&j.replay[j.pos], "the result of "+describe(kindCap, what))
		}
		if !j.rec.Idempotent() {
			abort(tag(ErrUnfinishedSideEffect, fmt.Errorf(
				"host call %d, %s, was started by an earlier run whose result was never journalled: it may or may not have happened, and the tool is not idempotent, so it is not repeated",
				j.calls, describe(kindCap, what))))
		}
		return st.performLive(req, hash, what, false) // started is on record already
	}
	return st.replayed(e, req)
}

// performLive performs req and records its result; a side effect is
// recorded as started first.
func (st *callState) performLive(req abi.CapabilityRequest, hash, what string, started bool) abi.CapabilityResult {
	if started {
		// Once allowed (a person may be asked first), before it is sent.
		st.beforeSend = func() {
			st.j.record([]journalEntry{{Kind: kindCap, Hash: hash, What: what, Started: true}}, nil)
		}
	}
	res := st.perform(req)
	st.beforeSend = nil
	if st.ctx.Err() != nil {
		return res // the call is ending; the guest learns nothing
	}
	e := journalEntry{Kind: kindCap, Hash: hash, What: what}
	if req.Op == abi.OpSecret && res.Error == nil {
		e.Secret = req.Name // the value is read from the grants again on replay
	} else {
		kept := res
		if res.HTTP != nil {
			h := *res.HTTP
			h.Body = st.caps.redactBytes(h.Body)
			kept.HTTP = &h
		}
		b, err := json.Marshal(kept)
		if err != nil {
			abort(fmt.Errorf("journal: %w", err))
		}
		e.Result = b
	}
	st.j.record([]journalEntry{e}, nil)
	return res
}

// replayed is the result a journal entry recorded.
func (st *callState) replayed(e *journalEntry, req abi.CapabilityRequest) abi.CapabilityResult {
	if e.Secret != "" {
		v, err := st.caps.grant.Secret(e.Secret)
		if err != nil {
			return st.refused(req, err)
		}
		return abi.CapabilityResult{Value: v}
	}
	var res abi.CapabilityResult
	if err := json.Unmarshal(e.Result, &res); err != nil {
		abort(tag(ErrReplayDiverged, fmt.Errorf("journal entry of host call %d holds no capability result: %v", st.j.calls, err)))
	}
	if req.Op == abi.OpDir && res.Error == nil {
		st.reopenGate(req.Name)
	}
	return res
}

// reopenGate opens, for a replayed call, the gate at guest path p that a
// person opened for the run being replayed: the journal says access was
// allowed, and this instance's gates start closed.
func (st *callState) reopenGate(p string) {
	gate := st.gates[p]
	if gate == nil {
		return
	}
	if _, errno := gate.fs(); errno == 0 {
		return
	}
	if err := gate.open(st.caps.grant.AskedDir(p)); err != nil {
		st.log.Warn("cannot reopen a directory a person allowed; the replayed call sees it empty", "dir", p, "error", err)
	}
}

func capError(code, msg string) abi.CapabilityResult {
	return abi.CapabilityResult{Error: &abi.CapabilityError{Code: code, Message: msg}}
}

// perform carries out one request under the plugin's grant.
func (st *callState) perform(req abi.CapabilityRequest) abi.CapabilityResult {
	if st.caps == nil {
		return capError(abi.CapNotGranted, "capabilities are not available while the plugin starts; use them inside a call")
	}
	g := st.caps.grant
	switch req.Op {
	case abi.OpConfig:
		v, err := g.Config(req.Name)
		if err != nil {
			return st.refused(req, err)
		}
		return abi.CapabilityResult{Value: v}
	case abi.OpSecret:
		v, err := g.Secret(req.Name)
		if err != nil {
			return st.refused(req, err)
		}
		st.log.Debug("secret read", "secret", req.Name) // the name, never the value
		return abi.CapabilityResult{Value: v}
	case abi.OpDir:
		d, err := st.allowDir(req.Name)
		if err != nil {
			return st.refused(req, err)
		}
		if d.Write {
			return abi.CapabilityResult{Value: "rw"}
		}
		return abi.CapabilityResult{Value: "ro"}
	case abi.OpHTTP:
		if req.HTTP == nil {
			return capError(abi.CapBadRequest, `an "http" request without "http"`)
		}
		resp, err := st.caps.http.do(st, *req.HTTP)
		if err != nil {
			return st.refused(req, err)
		}
		return abi.CapabilityResult{HTTP: resp}
	}
	return capError(abi.CapBadRequest, fmt.Sprintf("unknown capability operation %q; this wasmhost knows %s, %s, %s and %s",
		req.Op, abi.OpHTTP, abi.OpConfig, abi.OpSecret, abi.OpDir))
}

// allowDir finds the grant of the directory declared at guest path p, or
// asks the person when the operator allows asking and this instance has a
// gate there: "once" opens the gate for this call (its instance is never
// reused), "always" also writes the directory to the remembered file, so
// later instances mount it. The directory is the plugin's own under the
// operator's askDirsRoot (grants.Grant.AskedDir), made on the first yes.
func (st *callState) allowDir(p string) (grants.DirGrant, error) {
	g := st.caps.grant
	d, err := g.Dir(p)
	var ge *grants.Error
	if err == nil || !errors.As(err, &ge) || ge.Code != abi.CapNotGranted {
		return d, err
	}
	gate := st.gates[p]
	if gate == nil {
		return d, err
	}
	asked := g.AskedDir(p)
	if _, errno := gate.fs(); errno == 0 {
		return asked, nil // allowed earlier in this call
	}
	mode := "read-only"
	if asked.Write {
		mode = "read-write"
	}
	why := ""
	for _, n := range g.Declared().Dirs {
		if n.Path == p && n.Why != "" {
			why = fmt.Sprintf(" It says it needs it %s.", strings.TrimSuffix(n.Why, "."))
		}
	}
	decision := st.askPerson(fmt.Sprintf("Allow plugin %s to use %s %s? On this machine that is the directory %s.%s",
		g.Plugin(), p, mode, asked.HostPath, why))
	switch decision {
	case "once", "always":
	case "deny":
		return d, &grants.Error{Code: abi.CapNotGranted, Message: "the person asked did not allow it: " + ge.Message}
	default:
		return d, err
	}
	if mkErr := gate.open(asked); mkErr != nil {
		return d, &grants.Error{Code: abi.CapFailed, Message: fmt.Sprintf("allowed, but the directory cannot be made: %v", mkErr)}
	}
	if decision == "always" {
		if rerr := g.RememberDir(asked); rerr != nil {
			st.log.Warn("cannot remember the answer; it holds for this call", "error", rerr)
		}
	}
	st.log.Info("allowed by the person asked", "dir", p, "hostPath", asked.HostPath, "write", asked.Write)
	return asked, nil
}

// refused turns an error into the guest's result and logs the refusal
// (which names what was asked for, never a secret's value).
func (st *callState) refused(req abi.CapabilityRequest, err error) abi.CapabilityResult {
	code := abi.CapFailed
	var ge *grants.Error
	var he *httpError
	switch {
	case errors.As(err, &ge):
		code = ge.Code
	case errors.As(err, &he):
		code = he.code
	}
	msg := st.caps.scrub(err.Error())
	st.log.Info("capability request refused", "op", req.Op, "code", code, "reason", msg)
	return capError(code, msg)
}

// Needs returns what the plugin declared it may use.
func (p *Plugin) Needs() abi.Needs { return p.caps.grant.Declared() }

// Grant returns what the operator granted the plugin, checked against its
// declaration.
func (p *Plugin) Grant() *grants.Grant { return p.caps.grant }

// annotate appends what the plugin needs, and whether it is granted, to
// each tool's description, so that the model (and the person reading
// tools/list) knows what a call may reach and what will be refused.
func (c *capabilities) annotate(tools []abi.Tool) {
	text := c.needsText()
	if text == "" {
		return
	}
	for i := range tools {
		if tools[i].Description != "" {
			tools[i].Description += "\n\n"
		}
		tools[i].Description += text
	}
}

// needsText is one line per declared need: "Needs: HTTPS to api.github.com
// (granted), secret token (not granted), ...".
func (c *capabilities) needsText() string {
	g := c.grant
	n := g.Declared()
	if n.Empty() {
		return ""
	}
	status := func(ok bool) string {
		if ok {
			return "granted"
		}
		if g.Asks() {
			return "not granted; the user may be asked"
		}
		return "not granted"
	}
	var parts []string
	for _, h := range n.Hosts {
		ok := slices.ContainsFunc(g.Hosts(), func(hg grants.HostGrant) bool { return hg.Host == h.Host })
		parts = append(parts, fmt.Sprintf("HTTP to %s (%s)", h.Host, status(ok)))
	}
	for _, d := range n.Dirs {
		_, err := g.Dir(d.Path)
		mode := "read-only"
		if d.Write {
			mode = "read-write"
		}
		parts = append(parts, fmt.Sprintf("%s directory %s (%s)", mode, d.Path, status(err == nil)))
	}
	for _, k := range n.Config {
		parts = append(parts, fmt.Sprintf("config %s (%s)", k.Key, statusNoAsk(slices.Contains(g.ConfigKeys(), k.Key))))
	}
	for _, s := range n.Secrets {
		parts = append(parts, fmt.Sprintf("secret %s (%s)", s.Name, statusNoAsk(slices.Contains(g.SecretNames(), s.Name))))
	}
	return "Needs: " + strings.Join(parts, ", ") + "."
}

func statusNoAsk(ok bool) string {
	if ok {
		return "granted"
	}
	return "not granted"
}
