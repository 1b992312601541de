package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkHTTPImport measures one HTTP request made by a guest through the
// capability import (the SDK's guesthttp client: encode, host call, grant
// check, the request on a kept-alive loopback connection, base64 body back,
// decode), against the same request made directly with net/http from the
// host, in the same run. All b.N guest requests happen inside one call, so
// instantiation is amortised away; each is timed by the guest. p50-ns is
// the median request; compare import/p50-ns with direct/p50-ns.
func BenchmarkHTTPImport(b *testing.B) {
	srv, port := loopbackForBench(b)
	url := srv + "/hello"
	for _, raw := range []bool{false, true} {
		name := "import"
		if raw {
			name = "import-raw"
		}
		b.Run(name, func(b *testing.B) {
			pol := policyB(b, fmt.Sprintf(`{"hosts": [{"host": "127.0.0.1", "port": %s, "plainHTTP": true, "private": true}]}`, port))
			r, _ := newRuntime(b, Options{Grants: pol})
			p := load(b, r, "capable")
			args, _ := json.Marshal(map[string]any{"url": url, "n": b.N, "raw": raw})
			b.ResetTimer()
			res, err := p.Call(context.Background(), "fetch_many", args, nil)
			b.StopTimer()
			if err != nil || res.IsError {
				b.Fatalf("%v %+v", err, res)
			}
			var out struct{ Nanos []int64 }
			if err := json.Unmarshal(res.StructuredContent, &out); err != nil || len(out.Nanos) != b.N {
				b.Fatalf("%v: %d timings for %d requests", err, len(out.Nanos), b.N)
			}
			b.ReportMetric(p50(out.Nanos), "p50-ns")
		})
	}
	b.Run("direct", func(b *testing.B) {
		client := &http.Client{}
		nanos := make([]int64, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			nanos = append(nanos, time.Since(start).Nanoseconds())
		}
		b.StopTimer()
		b.ReportMetric(p50(nanos), "p50-ns")
	})
}

func p50(nanos []int64) float64 {
	s := slices.Clone(nanos)
	slices.Sort(s)
	return float64(s[len(s)/2])
}
