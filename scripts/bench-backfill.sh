#!/usr/bin/env bash
# Backfill scan throughput against `safeguard hash` on the same files and cores, in one run
# (docs/performance.md, "Backfill scans"): the photo corpus of scripts/bench-hash.sh ten times
# over (480 files, hard links), and 50,000 small generated PNGs, each with no bank and with a
# bank of 100,000 random PDQ hashes.
#
# Usage: scripts/bench-backfill.sh [REPEAT]     (default 3 rounds; the best of each side counts)
# Needs: the photo corpus (`bench-corpus`, made by scripts/bench-hash.sh) for the first case;
# it is skipped with a message when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat="${1:-3}"
cargo build --release -q -p safeguard-cli
small=bench-small-pngs
[ -d "$small" ] || python3 scripts/gen_benign_pngs.py "$small" 50000
photos=bench-photos-x10
if [ -d bench-corpus ] && [ ! -d "$photos" ]; then
  for i in $(seq 0 9); do mkdir -p "$photos/c$i" && cp -l bench-corpus/* "$photos/c$i/"; done
fi
for dir in "$photos" "$small"; do
  if [ ! -d "$dir" ]; then
    echo "== $dir: absent (make bench-corpus with scripts/bench-hash.sh); skipped"
    continue
  fi
  for bank in 0 100000; do
    echo "== $dir, bank of $bank hashes, load $(cut -d' ' -f1-3 /proc/loadavg)"
    target/release/safeguard bench backfill "$dir" --repeat "$repeat" --bank-hashes "$bank"
  done
done
