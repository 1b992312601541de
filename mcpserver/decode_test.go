package mcpserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// FuzzDecodeMessage: the stdio connection's decoder gives exactly what
// go-sdk's gives, message or error, for any line.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"a\u00e9","method":"x","params":null}`,
		`{"jsonrpc":"2.0","id":1.5,"method":null}`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}`,
		`{"jsonrpc":"2.0","id":true,"method":"x"}`,
		`{"jsonrpc":"1.0","id":1,"method":"x"}`,
		`{"Jsonrpc":"2.0","id":1,"method":"x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","extra":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","method":"y","id":2}`,
		`{"jsonrpc":"2.0","id":1,"meth\u006fd":"x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"x"} trailing`,
		`{"jsonrpc":"2.0","id":{},"method":"x"}`,
		`{"jsonrpc":"2.0","id":1e400,"method":"x"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"x\"}",
		`{"jsonrpc":"2.0","id":1,"method":"x","params":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`,
		`[{"jsonrpc":"2.0","id":1,"method":"x"}]`,
		`{"jsonrpc":"2.0","id":null,"method":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, gotErr := decodeMessage(line)
		want, wantErr := jsonrpc.DecodeMessage(line)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeMessage %#v, %v; go-sdk %#v, %v", line, got, gotErr, want, wantErr)
		}
	})
}

// TestLiftTaskField: the task field is lifted however its key is
// written, and params without one are passed on untouched.
func TestLiftTaskField(t *testing.T) {
	for _, params := range []string{
		`{"name":"x","task":{"ttl":1000}}`,
		`{"name":"x","t\u0061sk":{"ttl":1000}}`,
	} {
		var p map[string]json.RawMessage
		if err := json.Unmarshal(liftTaskField(json.RawMessage(params)), &p); err != nil {
			t.Fatal(err)
		}
		if _, ok := p["task"]; ok || !strings.Contains(string(p["_meta"]), metaTaskRequest) {
			t.Errorf("liftTaskField(%s) = %s", params, liftTaskField(json.RawMessage(params)))
		}
	}
	plain := json.RawMessage(`{"name":"greet","arguments":{"name":"Ada"}}`)
	if got := liftTaskField(plain); string(got) != string(plain) {
		t.Errorf("liftTaskField(%s) = %s", plain, got)
	}
}

// TestDecodeRequestFastPath: requests and notifications as clients send
// them are decoded without go-sdk's decoder.
func TestDecodeRequestFastPath(t *testing.T) {
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"}}}`,
		`{"method":"notifications/initialized","jsonrpc":"2.0"}`,
		`{"jsonrpc":"2.0","id":"x","method":"tasks/get","params":{"taskId":"t"}}`,
	} {
		if _, ok := decodeRequest([]byte(line)); !ok {
			t.Errorf("%s: not on the fast path", line)
		}
	}
}

// BenchmarkDecodeMessage compares decoding a tools/call line with go-sdk's
// decoder and with the stdio connection's.
func BenchmarkDecodeMessage(b *testing.B) {
	line := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"},"_meta":{"progressToken":7}}}`)
	for name, decode := range map[string]func([]byte) (jsonrpc.Message, error){"go-sdk": jsonrpc.DecodeMessage, "stdio": decodeMessage} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := decode(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
