#!/usr/bin/env bash
# Import benchmark: generated benign hash lists imported through the release CLI, with wall
# time and peak resident memory from /usr/bin/time -v.
#
#   scripts/bench-import.sh [PLAIN_LINES] [NCMEC_ENTRIES]     (defaults: 10000000 1000000)
#
# Runs, each into a fresh data directory unless noted:
#   1. a plain list of PLAIN_LINES/10 MD5-shaped lines (the memory baseline)
#   2. a plain list of PLAIN_LINES lines
#   3. the same list again into the same bank (re-import: every entry refreshed)
#   4. an NCMEC-style XML page of NCMEC_ENTRIES entries (3 fingerprints each, 1% deletions)
# and prints the ratio of peak memory between 2 and 1 (bounded memory means about 1x) and
# of throughput between 2 and 1.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-10000000}
entries=${2:-1000000}
small=$((lines / 10))
work=$(mktemp -d "${TMPDIR:-/tmp}/safeguard-bench-import.XXXXXX")
trap 'rm -rf "$work"' EXIT

# SAFEGUARD_BIN: a safeguard binary to measure instead of building target/release/safeguard.
if [ -n "${SAFEGUARD_BIN:-}" ]; then
    bin=$SAFEGUARD_BIN
else
    cargo build --release -p safeguard-cli >&2
    bin=target/release/safeguard
fi

echo "generating lists in $work" >&2
python3 scripts/gen-hash-list.py plain "$small" 1 > "$work/small.txt"
python3 scripts/gen-hash-list.py plain "$lines" 2 > "$work/big.txt"
python3 scripts/gen-hash-list.py ncmec "$entries" 3 > "$work/page.xml"
ls -l "$work"/*.txt "$work"/*.xml >&2

# run NAME DATA_DIR ARGS...: prints "NAME seconds peak_kib" and the import's JSON report.
run() {
    local name=$1 dir=$2
    shift 2
    /usr/bin/time -v "$bin" bank import --data-dir "$dir" --create "$@" \
        > "$work/$name.json" 2> "$work/$name.time"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
    # m:ss.ss or h:mm:ss to seconds
    secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    printf '%-12s %8.2f s  %8d KiB peak RSS  %s\n' "$name" "$secs" "$rss" "$(cat "$work/$name.json")"
    eval "${name}_secs=$secs ${name}_rss=$rss"
}

run small "$work/d1" --bank BENCH --format plain "$work/small.txt"
run big "$work/d2" --bank BENCH --format plain "$work/big.txt"
run reimport "$work/d2" --bank BENCH --format plain "$work/big.txt"
run ncmec "$work/d3" --bank NCMEC --format ncmec "$work/page.xml"

awk -v a="$big_rss" -v b="$small_rss" -v n="$lines" -v m="$small" \
    -v ta="$big_secs" -v tb="$small_secs" 'BEGIN {
    printf "peak RSS %d lines / %d lines: %.2fx\n", n, m, a / b
    printf "throughput %d lines: %.0f lines/s; %d lines: %.0f lines/s (%.2fx)\n",
        n, n / ta, m, m / tb, (n / ta) / (m / tb)
}'
du -sh "$work/d2" "$work/d3" | sed 's/^/data directory: /'
