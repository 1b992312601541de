#!/usr/bin/env bash
# bench/run.sh — run wasmhost's benchmarks and print each figure next to a
# baseline measured in the same run:
#   host     BenchmarkSyncCall         pool vs no pool
#   host     BenchmarkHTTPImport       a guest's request through the
#                                      capability import vs direct net/http
#                                      (p50, same loopback server)
#   tasks    BenchmarkAnswerRoundTrip  Redis vs memory
#   elicit   BenchmarkRelayRoundTrip   Redis vs memory (ask/resume p50, p99),
#                                      against the targets (< 1 ms p50
#                                      embedded, < 3 ms p50 Redis)
#   e2e      BenchmarkTaskThroughput   2 worker processes vs 1
#   tasks    answer → result latency of the TypeScript SDK tasks client
#            (bench/tasks-latency.mjs) on confirm_delete: stdio and HTTP,
#            embedded store and Redis (--workers 0 + 2 workers), against
#            the SDK's own task server (simpleTaskInteractive), target
#            p99 <= 50 ms
# Needs Go and a Redis at REDIS_URL (default redis://127.0.0.1:6379).
# Raw `go test -bench` output is kept in $OUT (default a temp file).
# Knobs: BENCHTIME (default 1s) for host and tasks, RELAY_N (default 3000)
# relay round trips, TASKS_N (default 400) tasks per throughput run,
# LATENCY_ROUNDS (default 30) rounds per latency setup. Needs Node 20+ for
# the latency figures (it runs `npm ci` in e2e/ts).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHTIME=${BENCHTIME:-1s}
RELAY_N=${RELAY_N:-3000}
TASKS_N=${TASKS_N:-400}
OUT=${OUT:-$(mktemp -t wasmhost-bench.XXXXXX)}
: > "$OUT"

bench() { # package, pattern, benchtime
  printf '== go test -bench %s -benchtime %s %s\n' "$2" "$3" "$1" >&2
  go test -run '^$' -bench "$2" -benchtime "$3" "$1" | tee -a "$OUT" | grep -E '^Benchmark' >&2
}
bench ./host/ 'SyncCall|InputRoundTrip' "$BENCHTIME"
bench ./host/ 'HTTPImport' "${HTTP_N:-3000}x"
bench ./tasks/ 'AnswerRoundTrip' "$BENCHTIME"
bench ./elicit/ 'RelayRoundTrip' "${RELAY_N}x"
bench ./e2e/distributed/ 'TaskThroughput' "${TASKS_N}x"

LATENCY_ROUNDS=${LATENCY_ROUNDS:-30}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
printf '== bench/tasks-latency.mjs, %s rounds per setup\n' "$LATENCY_ROUNDS" >&2
go build -o "$bin_dir/wasmhost" ./cmd/wasmhost
"$bin_dir/wasmhost" build plugins/*/ --log-level warn >/dev/null
(cd e2e/ts && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
latency() { node bench/tasks-latency.mjs --bin "$bin_dir/wasmhost" --plugins plugins --rounds "$LATENCY_ROUNDS" "$@" | tee -a "$OUT" | grep -v '^tasks-latency' >&2; }
latency --reference
for transport in stdio http; do
  latency --transport "$transport"
  latency --transport "$transport" --redis "$REDIS_URL"
done

# metric NAME UNIT: the value reported for UNIT by benchmark NAME (without
# the -GOMAXPROCS suffix).
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
echo "ratios (figure vs baseline, same run)"
ratio "host: sync call, no pool vs pool (ns/op)"            BenchmarkSyncCall/nopool ns/op BenchmarkSyncCall/pool ns/op
ratio "host: request path, no pool vs pool, paced (call-ns)" BenchmarkSyncCall/nopool-paced call-ns BenchmarkSyncCall/pool-paced call-ns
ratio "host: HTTP request p50, import vs direct net/http"  BenchmarkHTTPImport/import p50-ns BenchmarkHTTPImport/direct p50-ns
ratio "host: HTTP request p50, raw import vs direct"        BenchmarkHTTPImport/import-raw p50-ns BenchmarkHTTPImport/direct p50-ns
ratio "tasks: answer round trip, Redis vs memory (ns/op)"    BenchmarkAnswerRoundTrip/redis ns/op BenchmarkAnswerRoundTrip/memory ns/op
ratio "relay: ask p50, Redis vs memory"                     BenchmarkRelayRoundTrip/redis ask-p50-µs BenchmarkRelayRoundTrip/memory ask-p50-µs
ratio "relay: resume p50, Redis vs memory"                  BenchmarkRelayRoundTrip/redis resume-p50-µs BenchmarkRelayRoundTrip/memory resume-p50-µs
ratio "relay: ask p99, Redis vs memory"                     BenchmarkRelayRoundTrip/redis ask-p99-µs BenchmarkRelayRoundTrip/memory ask-p99-µs
ratio "relay: resume p99, Redis vs memory"                  BenchmarkRelayRoundTrip/redis resume-p99-µs BenchmarkRelayRoundTrip/memory resume-p99-µs
ratio "throughput: 2 worker processes vs 1 (tasks/s)"       BenchmarkTaskThroughput/workers=2 tasks/s BenchmarkTaskThroughput/workers=1 tasks/s
echo
echo "targets"
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
echo
echo "raw output: $OUT"
