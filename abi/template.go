package abi

import "strings"

// MatchTemplate matches uri against an RFC 6570 level-1 template, the
// only level [ResourceTemplate] allows: each {var} matches one or more
// characters other than "/". It reports the variables' values. It is part
// of the contract because the host (choosing which plugin reads a URI) and
// the guest (choosing which handler) must agree on it exactly.
func MatchTemplate(tmpl, uri string) (map[string]string, bool) {
	m := matcher{vars: map[string]string{}, failed: map[[2]int]bool{}}
	if !m.match(tmpl, uri) {
		return nil, false
	}
	return m.vars, true
}

// matcher tries the longest value first for each variable and backtracks.
// It remembers which (rest of template, rest of URI) pairs cannot match, so
// that a template with several variables costs polynomial time, not
// exponential, in the length of a URI a client chose.
type matcher struct {
	vars   map[string]string
	failed map[[2]int]bool // by len(tmpl), len(uri): both are suffixes
}

func (m *matcher) match(tmpl, uri string) bool {
	open := strings.IndexByte(tmpl, '{')
	if open < 0 {
		return tmpl == uri
	}
	if !strings.HasPrefix(uri, tmpl[:open]) {
		return false
	}
	tmpl, uri = tmpl[open:], uri[open:]
	key := [2]int{len(tmpl), len(uri)}
	if m.failed[key] {
		return false
	}
	end := strings.IndexByte(tmpl, '}')
	if end < 0 {
		return false
	}
	name, rest := tmpl[1:end], tmpl[end+1:]
	limit := strings.IndexByte(uri, '/')
	if limit < 0 {
		limit = len(uri)
	}
	for n := limit; n >= 1; n-- { // longest first
		if m.match(rest, uri[n:]) {
			m.vars[name] = uri[:n]
			return true
		}
	}
	m.failed[key] = true
	return false
}
