#!/usr/bin/env bash
# The whole test suite: what the README's quick start and .ci/run run.
#   Go: gofmt, go vet, go test -race (unit, host, store, front end; Redis
#       tests use REDIS_URL, default redis://127.0.0.1:6379)
#   Node: the official TypeScript SDK client against `wasmhost serve`
#   Conformance: the official MCP conformance suite (pinned) against
#       `wasmhost serve --http`, embedded store and Redis
# Needs Go 1.26+, Node 20+ and npm; everything else (pinned npm packages,
# Node 22 for the conformance suite) it installs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi

step "go vet"
go vet ./...
GOOS=wasip1 GOARCH=wasm go vet ./sdk/... ./plugins/...

step "go test -race"
# A generous -timeout: the default 10m per package binary is too short for
# cmd/wasmhost and e2e/distributed under -race on a busy 2-core machine
# (each compiles plugins).
go test -race -count=1 -timeout 30m ./...

step "build wasmhost"
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
go build -o "$bin_dir/wasmhost" ./cmd/wasmhost

step "build the example plugins (each e2e test starts its own server)"
"$bin_dir/wasmhost" build plugins/*/ --log-level warn

step "TypeScript SDK end to end (e2e/ts)"
(cd e2e/ts && npm ci --no-audit --no-fund --loglevel=error)
WASMHOST_BIN="$bin_dir/wasmhost" WASMHOST_PLUGINS="$PWD/plugins" \
  node --test --test-concurrency=1 e2e/ts/

step "MCP conformance suite (scripts/conformance.sh)"
scripts/conformance.sh --strict

echo "all tests passed" >&2
