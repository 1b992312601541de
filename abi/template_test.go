package abi_test

import (
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

func TestMatchTemplate(t *testing.T) {
	tests := []struct {
		tmpl, uri, want string // want "" means no match
	}{
		{"test://template/{id}/data", "test://template/123/data", "id=123"},
		{"test://template/{id}/data", "test://template//data", ""},
		{"test://template/{id}/data", "test://template/1/2/data", ""},
		{"test://template/{id}/data", "test://template/123/datax", ""},
		{"file:///{dir}/{name}.{ext}", "file:///a/b.c.txt", "dir=a ext=txt name=b.c"},
		{"{scheme}://x", "https://x", "scheme=https"},
		{"u://{a}-{b}", "u://x-y-z", "a=x-y b=z"},
		{"u://{a}", "u://", ""},
	}
	for _, tc := range tests {
		vars, ok := abi.MatchTemplate(tc.tmpl, tc.uri)
		var parts []string
		for _, k := range []string{"a", "b", "dir", "ext", "id", "name", "scheme"} {
			if v, has := vars[k]; has {
				parts = append(parts, k+"="+v)
			}
		}
		got := strings.Join(parts, " ")
		if (tc.want == "") == ok || got != tc.want {
			t.Errorf("MatchTemplate(%q, %q) = %q, %v; want %q", tc.tmpl, tc.uri, got, ok, tc.want)
		}
	}
}

// FuzzMatchTemplate: any template against any URI. A match binds every
// variable to a non-empty value without "/", and substituting the values
// back into the template gives the URI.
func FuzzMatchTemplate(f *testing.F) {
	f.Add("test://template/{id}/data", "test://template/123/data")
	f.Add("file:///{dir}/{name}.{ext}", "file:///a/b.c.txt")
	f.Add("u://{a}-{b}-{c}-{d}-{e}x", "u://"+strings.Repeat("-", 200))
	f.Add("{scheme}://x", "https://x")
	f.Fuzz(func(t *testing.T, tmpl, uri string) {
		vars, ok := abi.MatchTemplate(tmpl, uri)
		if !ok {
			return
		}
		var b strings.Builder
		rest := tmpl
		for {
			open := strings.IndexByte(rest, '{')
			if open < 0 {
				b.WriteString(rest)
				break
			}
			end := strings.IndexByte(rest[open:], '}') + open
			v, has := vars[rest[open+1:end]]
			if !has || v == "" || strings.Contains(v, "/") {
				t.Fatalf("MatchTemplate(%q, %q): variable %q = %q", tmpl, uri, rest[open+1:end], v)
			}
			b.WriteString(rest[:open])
			b.WriteString(v)
			rest = rest[end+1:]
		}
		if got := b.String(); got != uri && !repeatedNames(tmpl) {
			t.Fatalf("MatchTemplate(%q, %q) = %v, which gives back %q", tmpl, uri, vars, got)
		}
	})
}

// repeatedNames reports whether a variable occurs twice in tmpl: the match
// then keeps one of its values, and substitution cannot give the URI back.
func repeatedNames(tmpl string) bool {
	seen := map[string]bool{}
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			return false
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			return false
		}
		name := tmpl[open+1 : open+end]
		if seen[name] {
			return true
		}
		seen[name] = true
		tmpl = tmpl[open+end+1:]
	}
}
