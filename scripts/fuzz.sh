#!/usr/bin/env bash
# Runs every native Go fuzz target (func FuzzXxx in a _test.go file) for a
# while and prints how many inputs each one tried.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/fuzz.sh [-t DURATION] [-p N] [PATTERN]

Runs each fuzz target of the module, one after the other, for DURATION
(go test -fuzztime; default 60s) with N workers (default 1, kind to a
shared machine), then prints a table: package, target, executions, result.
PATTERN (a regexp) selects targets by name. Exits non-zero if a target
failed; go test then writes the failing input to the package's
testdata/fuzz/<Target>/ (commit it: it becomes a regression seed).

`go test ./...` runs every target's seeds (f.Add and testdata/fuzz) without
fuzzing; that is what CI runs.

  -t DURATION  time per target (default 60s)
  -p N         fuzzing workers per target (default 1)
  -h, --help   this text
EOF
}

fuzztime=60s
workers=1
pattern=.
while [ $# -gt 0 ]; do
  case "$1" in
    -t) fuzztime="${2:?-t needs a duration}"; shift 2 ;;
    -p) workers="${2:?-p needs a number}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
    *) pattern="$1"; shift ;;
  esac
done
cd "$(dirname "$0")/.."

# package dir <TAB> target, for every func FuzzXxx(f *testing.F).
targets=$(git grep -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go' |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*).*#\1\t\2#' | sort -u || true)
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
results=()
while IFS=$'\t' read -r dir target; do
  [[ "$target" =~ $pattern ]] || continue
  printf '== %s %s (%s)\n' "$dir" "$target" "$fuzztime" >&2
  if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -parallel "$workers" "./$dir" >"$log" 2>&1; then
    result=ok
  else
    result=FAIL
    failed=$((failed + 1))
    grep -v '^fuzz: elapsed' "$log" | tail -20 >&2
  fi
  execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  results+=("$(printf '%-20s %-22s %12s  %s' "$dir" "$target" "${execs:-?}" "$result")")
done <<<"$targets"

printf '\n%-20s %-22s %12s  %s\n' package target executions result
printf '%s\n' "${results[@]}"
[ "$failed" = 0 ]
