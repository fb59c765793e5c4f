#!/usr/bin/env bash
# Durability under repeated crashes: SIGKILLs `safeguard serve` CYCLES times (default 100)
# during mixed writes over HTTP (adds, removes, list imports, exchange pages from a peer
# instance), and after every restart checks that no acknowledged write was lost and that the
# index agrees with the store. See scripts/crash_loop.py for what is written and checked.
#
#   scripts/crash-loop.sh [CYCLES] [extra crash_loop.py options, e.g. --seed N --port P]
#
# SAFEGUARD_BIN: a safeguard binary to drive instead of building target/release/safeguard.
# Not part of `cargo test`: it takes minutes and needs free local ports (default 5491-5493).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-100}
shift || true
if [ -n "${SAFEGUARD_BIN:-}" ]; then
    bin=$SAFEGUARD_BIN
else
    cargo build --release -p safeguard-cli >&2
    bin=target/release/safeguard
fi
exec python3 scripts/crash_loop.py --bin "$bin" --cycles "$cycles" "$@"
