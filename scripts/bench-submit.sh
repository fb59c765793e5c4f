#!/usr/bin/env bash
# Submission benchmark (issue "Act on matches"): POST /v1/content with precomputed PDQ signals
# against a bank of N random PDQ hashes (default 10M), half of the submissions matching, with
# a webhook receiver (`safeguard bench receiver`, verifying every signature) on the same
# machine. In the same run, and with the same load generator (wrk, 1 thread, C connections):
#   1. GET /m/lookup for DURATION seconds: the baseline;
#   2. POST /v1/content for DURATION seconds, sampling the webhook backlog every 2 s;
#   3. the time the backlog takes to drain after the load stops, and the receiver's counts.
# Prints submissions/s, p99, the ratio to lookups/s, and whether the backlog drained while
# the load ran.
#
# Usage: scripts/bench-submit.sh [HASHES] [DURATION_SECONDS] [CONNECTIONS]
# SAFEGUARD_LOOKUP_SECONDS shortens the lookup phase (default DURATION_SECONDS), e.g. to grow
# the data directory with a long submission phase; the ratio printed then is not a result.
# The data directory (bench-submit-data-HASHES) is kept between runs (submissions add to it);
# delete it to reseed.
set -euo pipefail
cd "$(dirname "$0")/.."
hashes="${1:-10000000}"
duration="${2:-30}"
connections="${3:-32}"
data="bench-submit-data-$hashes"
port=5393
rport=5394
key="bench-admin-key-0123456789abcdef0123456789abcdef"
base="http://127.0.0.1:$port"

command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk; }
if [ -n "${SAFEGUARD_BIN:-}" ]; then
  bin=$SAFEGUARD_BIN
else
  cargo build --release -q -p safeguard-cli
  bin=target/release/safeguard
fi
if [ ! -f "$data/queries.txt" ]; then
  $bin bench seed --data-dir "$data" --hashes "$hashes" --queries "$data/queries.txt"
fi

pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
SAFEGUARD_ADMIN_KEY="$key" SAFEGUARD_LOG=warn SAFEGUARD_WEBHOOK_ALLOW_INTERNAL_HOSTS=127.0.0.1 \
  $bin serve --data-dir "$data" --listen "127.0.0.1:$port" >>"$data/server.log" 2>&1 &
spid=$!
pids+=("$spid")
until curl -sf "$base/status" >/dev/null; do
  kill -0 "$spid" || { echo "server exited; see $data/server.log"; exit 1; }
  sleep 0.2
done
auth=(-H "Authorization: Bearer $key")
# A fresh endpoint each run (earlier runs' endpoints are removed, so their receivers, long
# gone, hold nothing back).
for id in $(curl -sf "${auth[@]}" "$base/v1/webhooks" | python3 -c \
    'import json,sys; print(" ".join(str(w["id"]) for w in json.load(sys.stdin)["webhooks"]))'); do
  curl -sf -X DELETE "${auth[@]}" "$base/v1/webhooks/$id" >/dev/null
done
secret=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' \
  -d "{\"url\":\"http://127.0.0.1:$rport/hook\",\"event_types\":[\"*\"]}" "$base/v1/webhooks" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
SAFEGUARD_WEBHOOK_SECRET="$secret" $bin bench receiver --listen "127.0.0.1:$rport" \
  >>"$data/receiver.log" 2>&1 &
rpid=$!
pids+=("$rpid")
until curl -sf "http://127.0.0.1:$rport/stats" >/dev/null; do sleep 0.1; done

backlog() {
  curl -sf "${auth[@]}" "$base/metrics" | awk '/^safeguard_webhook_backlog /{print $2}'
}
tck=$(getconf CLK_TCK)
cpu_s() {  # user + system CPU seconds of a process so far (fields 14 and 15 of its stat)
  awk -v t="$tck" '{print ($14 + $15) / t}' /proc/"$1"/stat
}
per_request_us() {  # CPU seconds from $1 to $2 over $3 requests, in microseconds
  echo "scale=0; ($2 - $1) * 1000000 / $3" | bc
}
counter() {  # sum of a counter family's samples, e.g. safeguard_content_verdicts_total
  curl -sf "${auth[@]}" "$base/metrics" | awk -v m="$1" 'index($0, m)==1 {s+=$NF} END {print s+0}'
}

echo "hashes=$hashes duration_s=$duration connections=$connections"
echo "== lookups (baseline): GET /m/lookup"
c0=$(cpu_s "$spid")
lookup=$(SAFEGUARD_QUERIES="$data/queries.txt" SAFEGUARD_KEY="$key" \
  wrk -t1 -c"$connections" -d"${SAFEGUARD_LOOKUP_SECONDS:-$duration}s" --latency \
    -s scripts/wrk-lookup.lua "$base")
echo "$lookup" | grep -E "Requests/sec|p50_ms|requests="
lookups_per_s=$(echo "$lookup" | awk '/Requests\/sec/{print $2}')
c1=$(cpu_s "$spid")
r1=$(cpu_s "$rpid")

echo "== submissions: POST /v1/content (half matching), webhook receiver on this machine"
v0=$(counter safeguard_content_verdicts_total)
samples="$data/backlog.txt"
: >"$samples"
( t=0; while sleep 2; do t=$((t+2)); echo "$t $(backlog)" >>"$samples"; done ) &
sampler=$!
pids+=("$sampler")
submit=$(SAFEGUARD_QUERIES="$data/queries.txt" SAFEGUARD_KEY="$key" SAFEGUARD_RUN="r$(date +%s)" \
  wrk -t1 -c"$connections" -d"${duration}s" --latency -s scripts/wrk-submit.lua "$base")
kill "$sampler" 2>/dev/null || true
echo "$submit" | grep -E "Requests/sec|p50_ms|requests="
submits_per_s=$(echo "$submit" | awk '/Requests\/sec/{print $2}')
v1=$(counter safeguard_content_verdicts_total)
echo "verdicts recorded: $((v1 - v0)); by verdict:"
curl -sf "${auth[@]}" "$base/metrics" | grep '^safeguard_content_verdicts_total' | sed 's/^/  /'
echo "backlog samples during the load (seconds, pending deliveries): $(tr '\n' ' ' <"$samples")"
t0=$(date +%s.%N)
while [ "$(backlog)" != "0" ]; do sleep 0.2; done
drain=$(echo "$(date +%s.%N) - $t0" | bc)
echo "backlog drained ${drain}s after the load stopped"
c2=$(cpu_s "$spid")
r2=$(cpu_s "$rpid")
nl=$(echo "$lookup" | awk -F'[= ]' '/^requests=/{print $2}')
ns=$(echo "$submit" | awk -F'[= ]' '/^requests=/{print $2}')
echo "cpu per request (server; submissions include the drain): lookup_us=$(per_request_us "$c0" "$c1" "$nl") submission_us=$(per_request_us "$c1" "$c2" "$ns") receiver_us=$(per_request_us "$r1" "$r2" "$ns")"
echo "receiver: $(curl -sf "http://127.0.0.1:$rport/stats")"
grep -E "VmHWM" /proc/"$spid"/status | sed 's/^/server /'
echo "result: submissions_per_s=$submits_per_s lookups_per_s=$lookups_per_s ratio=$(echo "scale=3; $submits_per_s / $lookups_per_s" | bc)"
