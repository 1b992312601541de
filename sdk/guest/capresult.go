package guest

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
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

// encodeRequest is json.Marshal(req), byte for byte (FuzzEncodeRequest),
// without reflection: 30 µs of each request through the import, in wasm.
func encodeRequest(req abi.CapabilityRequest) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"op":`...)
	b = appendJSONString(b, req.Op)
	if req.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, req.Name)
	}
	if h := req.HTTP; h != nil {
		b = append(b, `,"http":{"method":`...)
		b = appendJSONString(b, h.Method)
		b = append(b, `,"url":`...)
		b = appendJSONString(b, h.URL)
		if len(h.Header) > 0 {
			b = append(b, `,"header":{`...)
			for i, k := range slices.Sorted(maps.Keys(h.Header)) {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, k)
				b = append(b, ':')
				vs := h.Header[k]
				if vs == nil {
					b = append(b, "null"...)
					continue
				}
				b = append(b, '[')
				for j, v := range vs {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendJSONString(b, v)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		if len(h.Body) > 0 {
			b = append(b, `,"body":"`...)
			b = base64.StdEncoding.AppendEncode(b, h.Body)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes it: HTML characters,
// U+2028 and U+2029 escaped, invalid UTF-8 replaced.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&':
				b = append(b, c)
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
