package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

// fuzzArgs is a tool input with the kinds of field decodeArgs meets.
type fuzzArgs struct {
	Name  string            `json:"name"`
	N     int               `json:"n,omitempty"`
	Tags  []string          `json:"tags,omitempty"`
	Inner *struct{ A bool } `json:"inner,omitempty"`
}

// decodeArgsByMap is decodeArgs as it was before missingField: the keys
// found by decoding into a map first. FuzzDecodeArgs holds decodeArgs to
// it.
func decodeArgsByMap(args []byte, in any, required []string) error {
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(args, &present); err != nil {
		return fmt.Errorf("invalid arguments: want a JSON object: %v", err)
	}
	if err := json.Unmarshal(args, in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fmt.Errorf("invalid arguments: field %q: got a JSON %s, want %s", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type))
		}
		return fmt.Errorf("invalid arguments: %v", err)
	}
	for _, name := range required {
		if _, ok := present[name]; !ok {
			return fmt.Errorf("invalid arguments: missing required field %q", name)
		}
	}
	return nil
}

// FuzzDecodeArgs: decodeArgs decodes and refuses exactly as decoding into
// a map first did, with the same messages.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range []string{
		`{"name":"Ada"}`, ` { "n" : 3 , "name" : "x\"}" } `, `{"tags":["a",{"x":"]"}],"name":""}`,
		`{"na\u006de":"escaped key"}`, `{"name":"\ud800"}`, `{"inner":{"A":true,"B":[1,{"c":null}]},"n":-1.5e3}`,
		`[1]`, `"str"`, `null`, ``, `{"name":1}`, `{"n":"x","name":"y"}`, `{"name":"a"`, "{\"\xff\":1,\"name\":2}",
		`{"NAME":"case"}`, `{"name":"a","name":"b"}`, `{"n":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		for _, required := range [][]string{nil, {"name"}, {"name", "n"}} {
			var got, want fuzzArgs
			gotErr := decodeArgs(args, &got, required)
			wantErr := decodeArgsByMap(args, &want, required)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q, required %q: decodeArgs %+v, %v; by map %+v, %v", args, required, got, gotErr, want, wantErr)
			}
		}
	})
}

// FuzzEncodeCallResult: encodeCallResult writes what json.Marshal writes.
func FuzzEncodeCallResult(f *testing.F) {
	f.Add("text", "Hello, <Ada> & \"friends\"\n\u2028", "", "", false, uint8(1), false)
	f.Add("image", "", "aGk=", "image/png", true, uint8(2), false)
	f.Add("text", "\xff\x00é😀", "", "", false, uint8(0), true)
	f.Add("resource", "", "", "", false, uint8(3), true)
	f.Fuzz(func(t *testing.T, typ, text, data, mime string, isError bool, n uint8, extra bool) {
		res := abi.CallResult{IsError: isError}
		if n > 0 || !extra {
			res.Content = []abi.Content{}
		}
		for i := range int(n % 4) {
			c := abi.Content{Type: typ, Text: text, Data: data, MimeType: mime}
			if extra && i == 1 {
				c.Resource = &abi.EmbeddedResource{URI: "file:///x", Text: text}
			}
			res.Content = append(res.Content, c)
		}
		if extra && n%4 == 3 {
			res.StructuredContent = json.RawMessage(`{"a": 1}`)
		}
		got, err := encodeCallResult(res)
		want, wantErr := json.Marshal(res)
		if string(got) != string(want) || (err == nil) != (wantErr == nil) {
			t.Fatalf("%+v: encodeCallResult %s, %v; json.Marshal %s, %v", res, got, err, want, wantErr)
		}
	})
}
