package abi

import "strings"

// MatchTemplate matches uri against an RFC 6570 level-1 template, the
// only level [ResourceTemplate] allows: each {var} matches one or more
// characters other than "/". It reports the variables' values. It is part
// of the contract because the host (choosing which plugin reads a URI) and
// the guest (choosing which handler) must agree on it exactly.
func MatchTemplate(tmpl, uri string) (map[string]string, bool) {
	vars := map[string]string{}
	if !matchFrom(tmpl, uri, vars) {
		return nil, false
	}
	return vars, true
}

func matchFrom(tmpl, uri string, vars map[string]string) bool {
	open := strings.IndexByte(tmpl, '{')
	if open < 0 {
		return tmpl == uri
	}
	if !strings.HasPrefix(uri, tmpl[:open]) {
		return false
	}
	tmpl, uri = tmpl[open:], uri[open:]
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
		if matchFrom(rest, uri[n:], vars) {
			vars[name] = uri[:n]
			return true
		}
	}
	return false
}
