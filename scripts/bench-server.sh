#!/usr/bin/env bash
# Server load benchmark: GET /m/lookup against a bank of N random PDQ hashes (default 10M),
# with wrk (Debian package) on the same machine. Prints restart-to-ready time, lookups/s,
# latency percentiles and the server's peak RSS.
#
# Usage: scripts/bench-server.sh [HASHES] [DURATION_SECONDS] [CONNECTIONS]
# The data directory (bench-server-data-HASHES) is kept between runs; delete it to reseed.
set -euo pipefail
cd "$(dirname "$0")/.."
hashes="${1:-10000000}"
duration="${2:-30}"
connections="${3:-32}"
data="bench-server-data-$hashes"
port=5391
key="bench-admin-key-0123456789abcdef0123456789abcdef"

command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk; }
# SAFEGUARD_BIN: a safeguard binary to measure instead of building target/release/safeguard.
if [ -n "${SAFEGUARD_BIN:-}" ]; then
  bin=$SAFEGUARD_BIN
else
  cargo build --release -q -p safeguard-cli
  bin=target/release/safeguard
fi
if [ ! -f "$data/queries.txt" ]; then
  $bin bench seed --data-dir "$data" --hashes "$hashes" --queries "$data/queries.txt"
fi

# Starts the server; sets $pid and $ready (seconds until /status answered 200).
start_server() {
  SAFEGUARD_ADMIN_KEY="$key" SAFEGUARD_LOG=warn $bin serve --data-dir "$data" --listen "127.0.0.1:$port" \
    >>"$data/server.log" 2>&1 &
  pid=$!
  local t0
  t0=$(date +%s.%N)
  until curl -sf "http://127.0.0.1:$port/status" >/dev/null; do
    kill -0 $pid || { echo "server exited; see $data/server.log"; exit 1; }
    sleep 0.05
  done
  ready=$(echo "$(date +%s.%N) - $t0" | bc)
}
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

# First start: from the snapshot if a previous run left one, else a full build from the store.
start_server
echo "hashes=$hashes first_start_ready_s=$ready"
# Graceful stop writes the index snapshot; the restart measures the normal restart path.
kill -TERM $pid; wait $pid || true
start_server
echo "hashes=$hashes ready_after_restart_s=$ready"
grep -E "VmRSS" /proc/$pid/status | sed 's/^/idle /'

SAFEGUARD_QUERIES="$data/queries.txt" SAFEGUARD_KEY="$key" \
  wrk -t1 -c"$connections" -d"${duration}s" --latency -s scripts/wrk-lookup.lua "http://127.0.0.1:$port" \
  | grep -E "Requests/sec|p50_ms|requests=|Latency"
grep -E "VmHWM|VmRSS" /proc/$pid/status | sed 's/^/after load /'
