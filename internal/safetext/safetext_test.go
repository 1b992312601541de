package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text, with punctuation: ok!", "plain text, with punctuation: ok!"},
		{"héllo wörld 日本", "héllo wörld 日本"},
		{"forged\n2099-01-01T00:00:00.000Z [ERROR] wasmhost.host: x", `forged\n2099-01-01T00:00:00.000Z [ERROR] wasmhost.host: x`},
		{"overwrite\rthe question", `overwrite\rthe question`},
		{"\x1b]52;c;aGk=\x07clipboard", `\x1b]52;c;aGk=\aclipboard`},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"tab\there", `tab\there`},
		{`back\slash`, `back\\slash`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"c1 \u009b control", `c1 \u009b control`},
	}
	for _, tc := range cases {
		got := Line(tc.in)
		if got != tc.want {
			t.Errorf("Line(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzLine(f *testing.F) {
	f.Add("a\nb\x1b[0m\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Line(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Line(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if r != ' ' && !safe(r) {
				t.Fatalf("Line(%q) = %q: contains %U", s, out, r)
			}
		}
		if c := Cut(s, 10); len(s) > 10 && !strings.Contains(c, "more bytes") {
			t.Fatalf("Cut(%q) = %q", s, c)
		}
	})
}
