package grants

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The remembered file holds the hosts and directories a person allowed
// "always" when asked. It has the grants file's format (only "plugins" →
// name → "hosts" and "dirs"), so the
// operator reads and edits it the same way; deleting an entry, or the file,
// takes the permission back at the next start.

// RememberFile is the file "always" answers are written to ("" when asking
// is off).
func (p *Policy) RememberFile() string {
	if p == nil {
		return ""
	}
	return p.remember
}

func (p *Policy) loadRemembered() error {
	data, err := os.ReadFile(p.remember)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("grants: remembered answers: %w", err)
	}
	rp, err := parse(p.remember, filepath.Dir(p.remember), data)
	if err != nil {
		return err
	}
	for name, pg := range rp.plugins {
		if len(pg.config) > 0 || len(pg.secrets) > 0 {
			return pg.at.errorf(p.remember, "a remembered-answers file holds only \"hosts\" and \"dirs\"; move the rest to %s", p.file)
		}
		p.rememberedDirs[name] = pg.dirs
		for _, h := range pg.hosts {
			if h.Private {
				return h.at.errorf(p.remember, "\"private\" can only be granted in %s, not remembered", p.file)
			}
		}
		p.remembered[name] = pg.hosts
	}
	return nil
}

func (p *Policy) rememberedFor(plugin string) []HostGrant {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.remembered[plugin])
}

// Remember records that a person allowed plugin to send method requests to
// host from now on, and rewrites the remembered file. Such a grant never
// allows private addresses or plain http.
func (p *Policy) Remember(plugin, host, method string) error {
	if p == nil || p.remember == "" {
		return errors.New("grants: asking is not enabled, so nothing can be remembered")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	hs := p.remembered[plugin]
	for i, h := range hs {
		if h.Host == host && h.Port == 0 && h.PathPrefix == "" {
			if !slices.Contains(h.Methods, method) {
				hs[i].Methods = append(slices.Clone(h.Methods), method)
			}
			return p.writeRemembered()
		}
	}
	p.remembered[plugin] = append(hs, Asked(host, method))
	return p.writeRemembered()
}

func (p *Policy) rememberedDirsFor(plugin string) []DirGrant {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rememberedDirs[plugin])
}

// RememberDir records that a person allowed plugin to use d from now on,
// and rewrites the remembered file.
func (p *Policy) RememberDir(plugin string, d DirGrant) error {
	if p == nil || p.remember == "" {
		return errors.New("grants: asking is not enabled, so nothing can be remembered")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ds := p.rememberedDirs[plugin]
	if i := slices.IndexFunc(ds, func(r DirGrant) bool { return r.Path == d.Path }); i >= 0 {
		ds[i] = d
	} else {
		p.rememberedDirs[plugin] = append(ds, d)
	}
	return p.writeRemembered()
}

// writeRemembered rewrites the file whole (write to a temporary file, then
// rename), so a crash never leaves half a file. Called with p.mu held.
func (p *Policy) writeRemembered() error {
	type host struct {
		Host           string   `json:"host"`
		Port           int      `json:"port,omitempty"`
		PathPrefix     string   `json:"pathPrefix,omitempty"`
		Methods        []string `json:"methods"`
		TimeoutSeconds int      `json:"timeoutSeconds,omitempty"`
	}
	type dir struct {
		Path     string `json:"path"`
		HostPath string `json:"hostPath"`
		Write    bool   `json:"write,omitempty"`
	}
	type grants struct {
		Hosts []host `json:"hosts,omitempty"`
		Dirs  []dir  `json:"dirs,omitempty"`
	}
	plugins := map[string]*grants{}
	entry := func(name string) *grants {
		if plugins[name] == nil {
			plugins[name] = &grants{}
		}
		return plugins[name]
	}
	for name, hs := range p.remembered {
		for _, h := range hs {
			entry(name).Hosts = append(entry(name).Hosts, host{Host: h.Host, Port: h.Port, PathPrefix: h.PathPrefix, Methods: h.Methods,
				TimeoutSeconds: int(h.Timeout.Seconds())})
		}
	}
	for name, ds := range p.rememberedDirs {
		for _, d := range ds {
			entry(name).Dirs = append(entry(name).Dirs, dir{Path: d.Path, HostPath: d.HostPath, Write: d.Write})
		}
	}
	out := map[string]map[string]*grants{"plugins": plugins}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("grants: remembered answers: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.remember), ".remembered-*.json")
	if err != nil {
		return fmt.Errorf("grants: remembered answers: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("grants: remembered answers: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("grants: remembered answers: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.remember); err != nil {
		return fmt.Errorf("grants: remembered answers: %w", err)
	}
	return nil
}
