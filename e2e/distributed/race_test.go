//go:build race

package distributed_test

// Under `go test -race` the wasmhost processes are race-built too, so that
// a data race in a front end or worker fails them (exit status 66, shown
// with their log) rather than passing unseen.
func init() { buildFlags = append(buildFlags, "-race") }
