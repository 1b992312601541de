package stack

import (
	"encoding/json"
	"strings"
	"testing"
)

// deep stands for a request's path: JSON decoding a few levels deep
// under a chain of calls.
var deep = []byte(strings.Repeat(`{"a":[`, 12) + `1` + strings.Repeat(`]}`, 12))

func work(depth int) {
	if depth > 0 {
		work(depth - 1)
		return
	}
	var v any
	_ = json.Unmarshal(deep, &v)
}

// BenchmarkFreshGoroutine compares a fresh goroutine running deep code
// with and without Reserve first.
func BenchmarkFreshGoroutine(b *testing.B) {
	for _, reserve := range []bool{false, true} {
		name := "grown-on-demand"
		if reserve {
			name = "reserved"
		}
		b.Run(name, func(b *testing.B) {
			done := make(chan struct{})
			for range b.N {
				go func() {
					if reserve {
						Reserve()
					}
					work(40)
					done <- struct{}{}
				}()
				<-done
			}
		})
	}
}
