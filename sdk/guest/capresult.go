package guest

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wasmhost/wasmhost/abi"
)

// decodeResult decodes the host's CapabilityResult. Compiled to wasm,
// encoding/json took about 250 µs for a small HTTP result (reflection and
// maps run slowly there; 10 µs natively), the largest part of a request
// through the import (BenchmarkHTTPImport). This reads, in one pass, the
// shape the host writes, and hands anything else to encoding/json; for
// any document it accepts it gives exactly what encoding/json would
// (FuzzDecodeResult).
func decodeResult(raw []byte) (abi.CapabilityResult, error) {
	if res, ok := fastResult(raw); ok {
		return res, nil
	}
	var res abi.CapabilityResult
	err := json.Unmarshal(raw, &res)
	return res, err
}

// scanner reads JSON from b at i. Its methods report false for anything
// outside the plain forms they read; the caller then falls back.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// lit skips white space and c, if c is next.
func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// str reads a string: valid UTF-8, no control characters, the standard
// escapes (a lone surrogate falls back: encoding/json replaces it).
func (s *scanner) str() (string, bool) {
	if !s.lit('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// escaped finishes a string holding escapes, begun at start.
func (s *scanner) escaped(start int) (string, bool) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				if s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
					return "", false
				}
				s.i += 2
				r2, ok := s.hex4()
				if !ok {
					return "", false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

// int reads a whole number of at most 9 digits, in JSON's form.
func (s *scanner) int() (int, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 9 || n > 1 && s.b[digits] == '0' {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	return v, err == nil
}

// object reads {"key": value, ...}, calling field for each key (which
// reads the value).
func (s *scanner) object(field func(key string) bool) bool {
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.lit(':') || !field(key) {
			return false
		}
		if s.lit(',') {
			continue
		}
		return s.lit('}')
	}
}

func fastResult(raw []byte) (abi.CapabilityResult, bool) {
	s := &scanner{b: raw}
	var res abi.CapabilityResult
	ok := s.object(func(key string) bool {
		var ok bool
		switch key {
		case "http":
			if s.null() {
				res.HTTP = nil
				return true
			}
			if res.HTTP == nil { // a repeated key fills the same value, as encoding/json does
				res.HTTP = &abi.HTTPResponse{}
			}
			ok = s.httpResponse(res.HTTP)
		case "value":
			res.Value, ok = s.str()
		case "error":
			if s.null() {
				res.Error = nil
				return true
			}
			if res.Error == nil {
				res.Error = &abi.CapabilityError{}
			}
			e := res.Error
			ok = s.object(func(key string) bool {
				var ok bool
				switch key {
				case "code":
					e.Code, ok = s.str()
				case "message":
					e.Message, ok = s.str()
				}
				return ok
			})
		}
		return ok
	})
	s.ws()
	return res, ok && s.i == len(s.b)
}

func (s *scanner) httpResponse(h *abi.HTTPResponse) bool {
	return s.object(func(key string) bool {
		var ok bool
		switch key {
		case "status":
			h.Status, ok = s.int()
		case "url":
			h.URL, ok = s.str()
		case "body":
			if s.null() {
				h.Body = nil
				return true
			}
			var b64 string
			if b64, ok = s.str(); ok {
				b := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
				n, err := base64.StdEncoding.Decode(b, []byte(b64))
				h.Body, ok = b[:n], err == nil
			}
		case "header":
			if s.null() {
				h.Header = nil
				return true
			}
			if h.Header == nil {
				h.Header = map[string][]string{}
			}
			ok = s.object(func(name string) bool {
				if s.null() {
					h.Header[name] = nil
					return true
				}
				if !s.lit('[') {
					return false
				}
				vals := []string{}
				if !s.lit(']') {
					for {
						v, ok := s.str()
						if !ok {
							return false
						}
						vals = append(vals, v)
						if s.lit(',') {
							continue
						}
						if !s.lit(']') {
							return false
						}
						break
					}
				}
				h.Header[name] = vals
				return true
			})
		}
		return ok
	})
}
