// Package safetext makes text from a guest or a client safe to put in a
// log line, a terminal or a notification: it cannot start a new line,
// move the cursor, drive the terminal (ANSI CSI, OSC 52 clipboard writes,
// window titles) or reorder what a person reads (Unicode bidirectional
// overrides).
//
// It owns only this escaping; it knows nothing of where the text goes.
package safetext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line returns s with every character that is not printable escaped as in
// a Go string literal (\n, \r, \x1b, \u202e), backslashes doubled, and
// invalid UTF-8 escaped byte by byte, so the result is one inert line. Text
// that needs no escaping is returned as it is, without allocating.
func Line(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i]), 16))
		case r == '\\':
			b.WriteString(`\\`)
		case safe(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r) // 'x' with the escape inside
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// Cut is Line for text that must also be short: at most max bytes of s are
// kept (on a rune boundary), with "…" and the number of bytes cut off.
func Cut(s string, max int) string {
	if len(s) <= max {
		return Line(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return Line(s[:cut]) + "… (" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' || c >= utf8.RuneSelf {
			return allSafe(s[i:])
		}
	}
	return true
}

func allSafe(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !safe(r) {
			return false
		}
	}
	return true
}

// safe reports whether r may reach a terminal as it is: printable and not
// a format character (bidi overrides, zero-width joiners are category Cf,
// which unicode.IsPrint already excludes), or a plain space.
func safe(r rune) bool {
	return r == ' ' || unicode.IsPrint(r)
}
