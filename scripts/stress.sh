#!/usr/bin/env bash
# Runs the whole suite (scripts/test.sh) several times in a row from a fresh
# clone of the current commit, while a CPU-heavy job competes for the
# machine: what a new user on a busy laptop, or a loaded CI runner, sees.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/stress.sh [-n N] [--no-load] [--keep]

Clones the current commit (HEAD, committed work only) into a temporary
directory, starts a CPU-heavy job beside it (one busy loop per core less
one, at least one), and runs ./scripts/test.sh there N times in a row.
Prints pass or fail for each run and a final "N passed, N failed" line;
exits non-zero if any run failed. The load stops when the script ends,
however it ends.

  -n N        number of runs (default 3)
  --no-load   run without the CPU-heavy job
  --keep      keep the clone and the logs (default: removed unless a run failed)
  -h, --help  this text

Each run's output is in <clone>/stress-run-K.log. Needs what scripts/test.sh
needs (Go, Node, npm, Redis at REDIS_URL or 127.0.0.1:6379). One run takes
about 6 minutes or more on 2 busy cores.
EOF
}

runs=3
load=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="${2:?-n needs a number}"; shift 2 ;;
    -n*) runs="${1#-n}"; shift ;;
    --no-load) load=0; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "stress.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$runs" in
  ''|*[!0-9]*|0) echo "stress.sh: -n wants a positive number, got '$runs'" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain)" ]; then
  echo "stress.sh: note: uncommitted changes are not tested; the clone is of $commit" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/wasmhost-stress.XXXXXX")
load_pids=()
failed=0

cleanup() {
  for pid in "${load_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${load_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$keep" = 0 ] && [ "$failed" = 0 ]; then
    rm -rf "$work"
  else
    echo "stress.sh: clone and logs kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

git clone --quiet --no-hardlinks "$repo" "$work/wasmhost"
git -C "$work/wasmhost" checkout --quiet "$commit"

if [ "$load" = 1 ]; then
  cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
  busy=$(( cores > 1 ? cores - 1 : 1 ))
  for _ in $(seq "$busy"); do
    # A bounded busy loop: it also ends on its own after 2 hours, should
    # this script be killed with SIGKILL before its trap runs.
    bash -c 'end=$((SECONDS + 7200)); while [ $SECONDS -lt $end ]; do :; done' &
    load_pids+=("$!")
  done
  echo "stress.sh: $busy busy loop(s) running beside the suite on $cores core(s)" >&2
fi

passed=0
for k in $(seq "$runs"); do
  log="$work/wasmhost/stress-run-$k.log"
  start=$SECONDS
  if (cd "$work/wasmhost" && ./scripts/test.sh) >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "run $k/$runs: pass ($((SECONDS - start))s)"
  else
    failed=$((failed + 1))
    echo "run $k/$runs: FAIL ($((SECONDS - start))s); log: $log"
    grep -E -- '^(--- FAIL|FAIL|not ok)' "$log" | head -20 | sed 's/^/    /' || true
  fi
done

echo "$passed passed, $failed failed (commit ${commit:0:12}, load: $([ "$load" = 1 ] && echo on || echo off))"
[ "$failed" = 0 ]
