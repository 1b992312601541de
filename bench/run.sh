#!/usr/bin/env bash
# bench/run.sh [--short] — wasmhost's benchmarks, each figure printed next to
# a baseline measured in the same run, as
#   figure / wasmhost / baseline / ratio / target
#
# 1. Client view (always): the official TypeScript SDK client (bench/driver,
#    pinned) drives `wasmhost serve` and a native go-sdk server with the same
#    tool logic (bench/native) over stdio, one after the other:
#    greet sequential p50/p99, greet with 16 concurrent callers, confirm_delete
#    with one elicitation, start to `initialize` answered and to a complete
#    tools/list (wasmhost serving 20 prebuilt plugins plus the example source
#    plugins, warm caches: bench/fixture.sh).
# 2. go test -bench: host (instantiate, call; pool vs none; a guest's HTTP
#    request through the capability import vs direct net/http), and in full
#    mode also tasks, elicit relay (Redis vs memory) and the distributed
#    throughput (with CPU per task per process).
# 3. Full mode: answer → result latency of the TypeScript SDK tasks client
#    (bench/tasks-latency.mjs) on confirm_delete, stdio and HTTP, embedded
#    store and Redis (--workers 0 + 2 workers), against the SDK's own task
#    server (simpleTaskInteractive); target p99 <= 50 ms.
#
# --short (CI): fewer rounds, host benchmarks only. Full mode is for people.
# Needs Go, Node 20+ and npm; full mode also a Redis at REDIS_URL (default
# redis://127.0.0.1:6379). Raw output is kept in $OUT (default a temp file).
# Knobs: BENCHTIME (default 1s), RELAY_N (3000), TASKS_N (400), SEQ, CONC,
# PER, ELICIT, STARTS (client rounds; see bench/driver/bench.mjs), ROUNDS
# (client runs of each server, alternated; each figure is the median),
# HTTP_N (3000 requests), LATENCY_ROUNDS (30 rounds per latency setup).
set -euo pipefail
cd "$(dirname "$0")/.."

short=false
[[ "${1:-}" == "--short" ]] && short=true
if $short; then
  : "${BENCHTIME:=200ms}" "${SEQ:=300}" "${CONC:=16}" "${PER:=25}" "${ELICIT:=50}" "${STARTS:=3}" "${ROUNDS:=1}"
else
  : "${BENCHTIME:=1s}" "${SEQ:=2000}" "${CONC:=16}" "${PER:=125}" "${ELICIT:=300}" "${STARTS:=7}" "${ROUNDS:=5}"
fi
RELAY_N=${RELAY_N:-3000}
TASKS_N=${TASKS_N:-400}
OUT=${OUT:-$(mktemp -t wasmhost-bench.XXXXXX)}
: > "$OUT"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

echo "== build wasmhost, the native baseline and the startup fixture" >&2
# WASMHOST_BIN measures another build (say, main's) against the same baseline.
if [[ -n "${WASMHOST_BIN:-}" ]]; then cp "$WASMHOST_BIN" "$bin/wasmhost"; else go build -o "$bin/wasmhost" ./cmd/wasmhost; fi
go build -o "$bin/native" ./bench/native
fixture=$PWD/bench/.cache/startup
bench/fixture.sh "$bin/wasmhost" "$fixture"
ntools=27 # 20 greet_NN + greet + confirm (2) + jobs (3) + releasenotes (1)
(cd bench/driver && [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error)
# Warm the caches (compile cache, source builds) once.
node bench/driver/bench.mjs --starts 1 --tools "$ntools" --seq 0 --conc 0 --elicit 0 -- \
  "$bin/wasmhost" serve --plugins "$fixture" --log-level warn > /dev/null

drive() { # label, tools, command...
  local label=$1 tools=$2; shift 2
  echo "== client: $label" >&2
  node bench/driver/bench.mjs --label "$label" --seq "$SEQ" --conc "$CONC" --per "$PER" \
    --elicit "$ELICIT" --starts "$STARTS" --tools "$tools" -- "$@" | tee -a "$OUT"
}
# The two servers take turns, ROUNDS times: on a shared machine one run's
# figures move by a third from one run to the next, more than the
# difference measured; the medians do not.
W= N=
for _ in $(seq "$ROUNDS"); do
  W+=$(drive wasmhost "$ntools" "$bin/wasmhost" serve --plugins "$fixture" --log-level warn)$'\n'
  N+=$(drive native 2 "$bin/native")$'\n'
done
# medians LINES: one JSON object holding each numeric field's median.
medians() {
  node -e '
    const runs = process.argv[1].trim().split("\n").map(l => JSON.parse(l));
    const out = {};
    for (const k of Object.keys(runs[0])) {
      const v = runs.map(r => r[k]).filter(x => typeof x === "number").sort((a, b) => a - b);
      out[k] = v.length ? v[Math.floor(v.length / 2)] : runs[0][k];
    }
    console.log(JSON.stringify(out));' "$1"
}
W=$(medians "$W"); N=$(medians "$N")

bench() { # package, pattern, benchtime; a failure is reported, the rest still runs
  printf '== go test -bench %s -benchtime %s %s\n' "$2" "$3" "$1" >&2
  go test -run '^$' -bench "$2" -benchtime "$3" "$1" | tee -a "$OUT" | grep -E '^Benchmark' >&2 ||
    echo "   (failed: see $OUT)" >&2
}
bench ./host/ 'SyncCall|GreetCall|InputRoundTrip|Instantiate' "$BENCHTIME"
bench ./host/ 'HTTPImport' "${HTTP_N:-3000}x"
if ! $short; then
  bench ./tasks/ 'AnswerRoundTrip' "$BENCHTIME"
  bench ./elicit/ 'RelayRoundTrip' "${RELAY_N}x"
  bench ./e2e/distributed/ 'TaskThroughput' "${TASKS_N}x"

  LATENCY_ROUNDS=${LATENCY_ROUNDS:-30}
  REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
  printf '== bench/tasks-latency.mjs, %s rounds per setup\n' "$LATENCY_ROUNDS" >&2
  "$bin/wasmhost" build plugins/*/ --log-level warn >/dev/null
  (cd e2e/ts && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  latency() {
    node bench/tasks-latency.mjs --bin "$bin/wasmhost" --plugins plugins --rounds "$LATENCY_ROUNDS" "$@" |
      tee -a "$OUT" | { grep -v '^tasks-latency' || true; } >&2 || echo "   (failed: see $OUT)" >&2
  }
  latency --reference
  for transport in stdio http; do
    latency --transport "$transport"
    latency --transport "$transport" --redis "$REDIS_URL"
  done
fi

# field JSON KEY: a number from a driver's JSON line.
field() { node -e 'const v = JSON.parse(process.argv[1])[process.argv[2]]; console.log(v === undefined ? "" : v)' "$1" "$2"; }

# row LABEL KEY TARGET: TARGET is "ratio<=X", "ratio>=X", "<=X" (ms) or "-".
row() {
  local w b
  w=$(field "$W" "$2"); b=$(field "$N" "$2")
  awk -v l="$1" -v w="$w" -v b="$b" -v t="$3" 'BEGIN {
    r = (b == "" || b == 0 || w == "") ? 0 : w / b
    verdict = ""
    # +0: compare as numbers (substr and -v values would compare as text)
    if (t ~ /^ratio<=/) { lim = substr(t, 8) + 0; verdict = (r <= lim) ? "PASS" : "MISS" }
    else if (t ~ /^ratio>=/) { lim = substr(t, 8) + 0; verdict = (r >= lim) ? "PASS" : "MISS" }
    else if (t ~ /^<=/) { lim = substr(t, 3) + 0; verdict = (w != "" && w + 0 <= lim) ? "PASS" : "MISS" }
    printf "%-44s %10.2f %10.2f %8.2fx   %-12s %s\n", l, w, b, r, t, verdict
  }'
}

# metric NAME UNIT: the value reported for UNIT by go benchmark NAME
# (without the -GOMAXPROCS suffix).
metric() {
  awk -v name="$1" -v unit="$2" '
    $1 ~ /^Benchmark/ {
      n = $1; sub(/-[0-9]+$/, "", n)
      if (n != name) next
      for (i = 3; i < NF; i += 2) if ($(i + 1) == unit) { print $i; exit }
    }' "$OUT"
}

# ratio LABEL NAME UNIT BASE_NAME BASE_UNIT
ratio() {
  local v b
  v=$(metric "$2" "$3"); b=$(metric "$4" "$5")
  if [[ -z "$v" || -z "$b" ]]; then
    printf '%-58s %s\n' "$1" "(not measured)"; return
  fi
  awk -v l="$1" -v v="$v" -v b="$b" -v u="$3" \
    'BEGIN { printf "%-58s %12.1f %-10s vs %12.1f  = %6.2fx\n", l, v, u, b, (b == 0 ? 0 : v / b) }'
}

# target LABEL NAME UNIT LIMIT: PASS if the value is below LIMIT.
target() {
  local v
  v=$(metric "$2" "$3")
  [[ -z "$v" ]] && { printf '%-58s %s\n' "$1" "(not measured)"; return; }
  awk -v l="$1" -v v="$v" -v lim="$4" -v u="$3" \
    'BEGIN { printf "%-58s %12.1f %-10s limit %8.0f  %s\n", l, v, u, lim, (v < lim ? "PASS" : "MISS") }'
}

echo
echo "client over stdio (TypeScript SDK), wasmhost vs native go-sdk, same run (median of $ROUNDS alternated runs each)"
printf '%-44s %10s %10s %9s   %-12s\n' figure wasmhost native ratio target
row "greet sequential p50 (ms)"                  greet_p50_ms   "ratio<=2"
row "greet sequential p99 (ms)"                  greet_p99_ms   "ratio<=3"
row "greet, $CONC concurrent callers (calls/s)"  greet_conc_cps "ratio>=0.5"
row "confirm_delete + 1 elicitation p50 (ms)"    confirm_p50_ms "-"
row "confirm_delete + 1 elicitation p99 (ms)"    confirm_p99_ms "-"
row "start to initialize answered (ms)"          start_init_ms  "<=150"
row "start to complete tools/list (ms)"          start_list_ms  "<=300"
echo
echo "host (go test -bench)"
ratio "host: sync call, fresh instance vs restored (ns/op)"   BenchmarkSyncCall/fresh ns/op BenchmarkSyncCall/pool ns/op
ratio "host: instantiate, _initialize vs from snapshot"      BenchmarkInstantiate/initialize ns/op BenchmarkInstantiate/snapshot ns/op
ratio "host: restore a snapshot vs a call on a restored one" BenchmarkInstantiate/restore ns/op BenchmarkSyncCall/pool ns/op
ratio "host: greet call vs echo call, restore included"      BenchmarkGreetCall ns/op BenchmarkSyncCall/pool ns/op
ratio "host: HTTP request p50, import vs direct net/http"  BenchmarkHTTPImport/import p50-ns BenchmarkHTTPImport/direct p50-ns
ratio "host: HTTP request p50, raw import vs direct"        BenchmarkHTTPImport/import-raw p50-ns BenchmarkHTTPImport/direct p50-ns
if ! $short; then
  echo
  echo "store and relay (go test -bench)"
  ratio "tasks: answer round trip, Redis vs memory (ns/op)"    BenchmarkAnswerRoundTrip/redis ns/op BenchmarkAnswerRoundTrip/memory ns/op
  ratio "relay: ask p50, Redis vs memory"                     BenchmarkRelayRoundTrip/redis ask-p50-µs BenchmarkRelayRoundTrip/memory ask-p50-µs
  ratio "relay: resume p50, Redis vs memory"                  BenchmarkRelayRoundTrip/redis resume-p50-µs BenchmarkRelayRoundTrip/memory resume-p50-µs
  ratio "relay: ask p99, Redis vs memory"                     BenchmarkRelayRoundTrip/redis ask-p99-µs BenchmarkRelayRoundTrip/memory ask-p99-µs
  ratio "relay: resume p99, Redis vs memory"                  BenchmarkRelayRoundTrip/redis resume-p99-µs BenchmarkRelayRoundTrip/memory resume-p99-µs
  ratio "throughput: 2 worker processes vs 1 (tasks/s)"       BenchmarkTaskThroughput/workers=2 tasks/s BenchmarkTaskThroughput/workers=1 tasks/s
  target "relay p50 ask, embedded (< 1 ms)"    BenchmarkRelayRoundTrip/memory ask-p50-µs 1000
  target "relay p50 resume, embedded (< 1 ms)" BenchmarkRelayRoundTrip/memory resume-p50-µs 1000
  target "relay p50 ask, Redis (< 3 ms)"       BenchmarkRelayRoundTrip/redis ask-p50-µs 3000
  target "relay p50 resume, Redis (< 3 ms)"    BenchmarkRelayRoundTrip/redis resume-p50-µs 3000
  echo
  echo "tasks client: answer → result (ms), wasmhost vs the TypeScript reference task server, same run"
  # lat LABEL FIELD: FIELD (p50, p99) of the tasks-latency line for LABEL.
  lat() { awk -v l="$1" -v f="$2" '$1 == "tasks-latency" && $2 == l { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$OUT"; }
  ref99=$(lat ts-reference_http p99)
  for l in wasmhost_stdio_embedded wasmhost_http_embedded wasmhost_stdio_redis+2workers wasmhost_http_redis+2workers; do
    p50=$(lat "$l" p50); p99=$(lat "$l" p99)
    [[ -z "$p99" ]] && { printf '  %-32s (not measured)\n' "$l"; continue; }
    awk -v l="$l" -v a="$p50" -v b="$p99" -v r="$ref99" 'BEGIN {
      printf "  %-32s p50 %7.1f  p99 %7.1f  (reference p99 %s, ratio %.2fx)  p99 <= 50 ms: %s\n",
        l, a, b, (r == "" ? "?" : r), (r + 0 > 0 ? b / r : 0), (b <= 50 ? "PASS" : "MISS") }'
  done
  echo
  echo "throughput CPU per task (ms): front end / workers / Redis"
  for n in 1 2; do
    printf '  %d worker(s): %s / %s / %s   (%s CPUs here)\n' "$n" \
      "$(metric BenchmarkTaskThroughput/workers=$n frontend-cpu-ms/task)" \
      "$(metric BenchmarkTaskThroughput/workers=$n workers-cpu-ms/task)" \
      "$(metric BenchmarkTaskThroughput/workers=$n redis-cpu-ms/task)" "$(nproc 2>/dev/null || echo '?')"
  done
fi
echo
echo "machine: $(nproc 2>/dev/null || echo '?') CPUs, $(uname -sm), $(go version | cut -d' ' -f3)"
echo "raw output: $OUT"
