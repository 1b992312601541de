package grants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// node is one JSON value of the grants file with the line it starts on, so
// that every validation error can name file, line and key. encoding/json
// alone gives offsets only for syntax errors; walking the token stream gives
// them for everything.
type node struct {
	line int
	key  string // dotted path from the root, e.g. plugins.tracker.hosts[0].host

	kind   byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	str    string
	num    float64
	boolv  bool
	keys   []string // object keys in file order
	fields map[string]*node
	items  []*node
}

// fileError is an error at one place in a file.
type fileError struct {
	file string
	line int
	key  string
	msg  string
}

func (e *fileError) Error() string {
	if e.key == "" {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.file, e.line, e.key, e.msg)
}

// parseTree reads data as one JSON value.
func parseTree(file string, data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	var value func(key string, depth int) (*node, error)
	value = func(key string, depth int) (*node, error) {
		if depth > 32 {
			return nil, &fileError{file, lineAt(dec.InputOffset()), key, "nested too deeply"}
		}
		// The offset after the previous token (the ':' or ',') is on the
		// line of the key, which is where a reader looks.
		n := &node{line: lineAt(dec.InputOffset()), key: key}
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(file, data, dec, err)
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				n.kind, n.fields = 'o', map[string]*node{}
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return nil, syntaxError(file, data, dec, err)
					}
					k := kt.(string)
					sub := k
					if key != "" {
						sub = key + "." + k
					}
					if _, dup := n.fields[k]; dup {
						return nil, &fileError{file, lineAt(dec.InputOffset()), sub, "given twice"}
					}
					v, err := value(sub, depth+1)
					if err != nil {
						return nil, err
					}
					n.keys = append(n.keys, k)
					n.fields[k] = v
				}
			case '[':
				n.kind = 'a'
				for i := 0; dec.More(); i++ {
					v, err := value(fmt.Sprintf("%s[%d]", key, i), depth+1)
					if err != nil {
						return nil, err
					}
					n.items = append(n.items, v)
				}
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, syntaxError(file, data, dec, err)
			}
		case string:
			n.kind, n.str = 's', t
		case json.Number:
			n.kind = 'n'
			n.num, _ = t.Float64()
		case bool:
			n.kind, n.boolv = 'b', t
		case nil:
			n.kind = 'z'
		}
		return n, nil
	}
	root, err := value("", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &fileError{file, lineAt(dec.InputOffset()), "", "unexpected data after the top-level object"}
	}
	return root, nil
}

func syntaxError(file string, data []byte, dec *json.Decoder, err error) error {
	off := dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("unexpected end of file")
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	return &fileError{file: file, line: line, msg: "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// errorf makes an error at n.
func (n *node) errorf(file, format string, args ...any) error {
	return &fileError{file, n.line, n.key, fmt.Sprintf(format, args...)}
}

var kindNames = map[byte]string{'o': "an object", 'a': "an array", 's': "a string", 'n': "a number", 'b': "true or false", 'z': "null"}

// want checks n's kind.
func (n *node) want(file string, kind byte) error {
	if n.kind != kind {
		return n.errorf(file, "want %s, got %s", kindNames[kind], kindNames[n.kind])
	}
	return nil
}

// object checks that n is an object with only the allowed keys.
func (n *node) object(file string, allowed ...string) error {
	if err := n.want(file, 'o'); err != nil {
		return err
	}
	for _, k := range n.keys {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return n.fields[k].errorf(file, "unknown key; this object takes %s", strings.Join(allowed, ", "))
		}
	}
	return nil
}
