package guest

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"

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
