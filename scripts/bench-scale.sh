#!/usr/bin/env bash
# Lookups through two `safeguard serve` processes sharing one PostgreSQL database, against the
# single SQLite process, on the same 10M-hash bank and queries, in one run (issue 16; results in
# docs/performance.md, "Lookups through two processes on PostgreSQL").
#
# 1. Seeds a SQLite data directory with N random PDQ hashes and the query file (as
#    scripts/bench-server.sh; half the queries are in the bank), exports the bank and imports it
#    into a fresh PostgreSQL database through COPY.
# 2. Starts two servers on PostgreSQL (their own data directories) and loads them at once with
#    two wrk instances, one per server (half the connections each): the rates add up, each
#    prints its latency percentiles.
# 3. Stops them and loads the SQLite server alone with all the connections.
#
# Usage: scripts/bench-scale.sh [HASHES] [DURATION_SECONDS] [CONNECTIONS]
# Needs: wrk (Debian package), the PostgreSQL server of .ci/run (127.0.0.1:5432, trust).
set -euo pipefail
cd "$(dirname "$0")/.."
hashes="${1:-10000000}"
duration="${2:-30}"
connections="${3:-32}"
half=$((connections / 2))
work="${SAFEGUARD_BENCH_DIR:-bench-scale-$hashes}"
db="sg_bench_scale_$hashes"
url="postgres://postgres@127.0.0.1:5432/$db"
key="bench-admin-key-0123456789abcdef0123456789abcdef"
bin="${SAFEGUARD_BIN:-target/release/safeguard}"

command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk; }
[ -n "${SAFEGUARD_BIN:-}" ] || cargo build --release -q -p safeguard-cli
mkdir -p "$work"
if [ ! -f "$work/queries.txt" ]; then
  $bin bench seed --data-dir "$work/sqlite" --hashes "$hashes" --queries "$work/queries.txt"
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  $bin bank export --data-dir "$work/sqlite" --bank BENCH_BANK --format plain -o "$work/list.txt"
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
  t0=$(date +%s.%N)
  SAFEGUARD_STORE= $bin bank import --store "$url" --bank BENCH_BANK --create --format plain \
    --type pdq "$work/list.txt" >/dev/null
  echo "postgres_import_s=$(echo "$(date +%s.%N) - $t0" | bc)"
fi

pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null || true' EXIT
# start NAME PORT ARGS...: starts a server, waits for /status, prints its time to ready.
start() {
  local name=$1 port=$2
  shift 2
  SAFEGUARD_ADMIN_KEY="$key" SAFEGUARD_LOG=warn SAFEGUARD_STORE= $bin serve \
    --listen "127.0.0.1:$port" "$@" >>"$work/$name.log" 2>&1 &
  pids+=($!)
  local t0 pid=$!
  t0=$(date +%s.%N)
  until curl -sf "http://127.0.0.1:$port/status" >/dev/null; do
    kill -0 $pid || { echo "$name exited; see $work/$name.log"; exit 1; }
    sleep 0.1
  done
  echo "$name ready_s=$(echo "$(date +%s.%N) - $t0" | bc) rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
}
load() { # load PORT CONNECTIONS
  SAFEGUARD_QUERIES="$work/queries.txt" SAFEGUARD_KEY="$key" \
    wrk -t1 -c"$2" -d"${duration}s" --latency -s scripts/wrk-lookup.lua "http://127.0.0.1:$1" \
    | grep -E "Requests/sec|p50_ms|requests="
}

echo "== two processes on PostgreSQL, $half connections each, load $(cut -d' ' -f1-3 /proc/loadavg)"
start pg-a 5401 --store "$url" --data-dir "$work/pg-a"
start pg-b 5402 --store "$url" --data-dir "$work/pg-b"
load 5401 "$half" >"$work/wrk-a.txt" &
wa=$!
load 5402 "$half" >"$work/wrk-b.txt" &
wb=$!
wait $wa $wb
sed 's/^/pg-a /' "$work/wrk-a.txt"
sed 's/^/pg-b /' "$work/wrk-b.txt"
awk '/Requests\/sec/ {s += $2} END {printf "postgres_two_processes_lookups_per_s=%.0f\n", s}' \
  "$work/wrk-a.txt" "$work/wrk-b.txt"
for p in "${pids[@]}"; do kill $p; done
wait 2>/dev/null || true
pids=()

echo "== one process on SQLite, $connections connections, load $(cut -d' ' -f1-3 /proc/loadavg)"
start sqlite 5403 --data-dir "$work/sqlite"
load 5403 "$connections" | sed 's/^/sqlite /'
