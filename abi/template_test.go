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
