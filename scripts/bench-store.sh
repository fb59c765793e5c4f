#!/usr/bin/env bash
# Store benchmark: bulk writes (staged import and re-import against row-at-a-time
# add_contents) and the reads startup and followers do (scan, change feed, reopen + scan,
# against one in-memory pass), on disk with full durability. Ratios against the baselines are
# printed from the same run.
#
#   scripts/bench-store.sh [SIGNALS] [DIR]     (defaults: 1000000, the system temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release -q -p safeguard-store --example store_rates -- "$@"
