// Package conformancefix has no code of its own: its tests build the MCP
// conformance suite's fixture guests in testdata/conformance (at the
// module root) with internal/gobuild, load them in a host.Runtime, and
// check their tools and behaviour against docs/research/conformance.md §6
// with scripted answers, so that a fixture that drifts from what the suite
// expects fails here rather than in a conformance run.
//
// It must not be imported.
package conformancefix
