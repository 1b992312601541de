package guest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

// FuzzDecodeResult: whatever decodeResult's fast path accepts, it decodes
// exactly as encoding/json does; what it does not, encoding/json decodes.
func FuzzDecodeResult(f *testing.F) {
	for _, res := range []abi.CapabilityResult{
		{HTTP: &abi.HTTPResponse{Status: 200, Header: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}, "Date": {"Wed, 02 Dec 2026 02:10:00 GMT"}, "X-Empty": {}},
			Body: []byte("hello <world> & \x00\xff"), URL: "http://127.0.0.1:8080/a?b=1&c=\"2\""}},
		{HTTP: &abi.HTTPResponse{Status: 404, URL: "https://h/é\u2028😀"}},
		{Value: "rw"},
		{Error: &abi.CapabilityError{Code: abi.CapNotGranted, Message: "plugin x may not use \"y\": not granted;\n → add {\"a\":1}"}},
	} {
		b, _ := json.Marshal(res)
		f.Add(b)
	}
	f.Add([]byte(`{"http":{"status":1},"http":{"url":"x"},"error":{"code":"a"},"error":{"message":"b"}}`))
	f.Add([]byte(` {"value":"\ud83d\ude00\u00e9\/","http":null,"error":null} `))
	f.Add([]byte(`{"http":{"status":-0,"header":{"A":null,"B":[],"A":["x"]},"body":""}}`))
	f.Add([]byte(`{"Value":"case","http":{"status":2e2}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want abi.CapabilityResult
		wantErr := json.Unmarshal(raw, &want)
		got, ok := fastResult(raw)
		if ok && (wantErr != nil || !reflect.DeepEqual(got, want)) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v (%v)", raw, got, want, wantErr)
		}
		res, err := decodeResult(raw)
		if (err == nil) != (wantErr == nil) || err == nil && !reflect.DeepEqual(res, want) {
			t.Fatalf("%q: decodeResult %+v, %v; encoding/json %+v, %v", raw, res, err, want, wantErr)
		}
	})
}

// TestDecodeResultFastPath: the host's own encodings take the fast path.
func TestDecodeResultFastPath(t *testing.T) {
	for _, res := range []abi.CapabilityResult{
		{HTTP: &abi.HTTPResponse{Status: 200, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(`{"a":"<b>"}`), URL: "http://h/?x=1&y=2"}},
		{Value: "ro"},
		{Error: &abi.CapabilityError{Code: abi.CapRefused, Message: "a → b"}},
	} {
		b, _ := json.Marshal(res)
		if got, ok := fastResult(b); !ok || !reflect.DeepEqual(got, res) {
			t.Errorf("%s: fast path %v, %+v", b, ok, got)
		}
	}
}

// FuzzEncodeRequest: encodeRequest writes what json.Marshal writes.
func FuzzEncodeRequest(f *testing.F) {
	f.Add("http", "", "GET", "https://h/a?b=1&c=<2>", "Accept", "application/json", []byte("body"), false)
	f.Add("dir", "/notes", "", "", "", "", []byte(nil), true)
	f.Add("http", "x\u2028\xff\"\\\b\f\n\r\t\x01", "POST", "é😀", "X-Nil", "", []byte{0, 255}, true)
	f.Fuzz(func(t *testing.T, op, name, method, url, key, value string, body []byte, nilValues bool) {
		reqs := []abi.CapabilityRequest{{Op: op, Name: name}}
		for _, header := range []map[string][]string{nil, {}, {key: {value, name}, "B": {}, "A": nil}} {
			if nilValues && header != nil {
				header[key] = nil
			}
			reqs = append(reqs, abi.CapabilityRequest{Op: op, Name: name, HTTP: &abi.HTTPRequest{Method: method, URL: url, Header: header, Body: body}})
		}
		for _, req := range reqs {
			want, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := encodeRequest(req); string(got) != string(want) {
				t.Fatalf("encodeRequest\n%s\njson.Marshal\n%s", got, want)
			}
		}
	})
}
