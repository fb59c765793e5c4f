#!/usr/bin/env bash
# Soak test (issue 12, item 10): `safeguard serve` on a fresh data directory with a bank of
# 1M random PDQ hashes, under mixed load at fixed rates (HMA lookups, image uploads to /h/hash,
# adds and removes through /c/bank/.../signal, complete list imports) for SECONDS (default
# 3600), with the server's RSS (and its decode workers') sampled every 5 s. Writes
# target/soak-<time>/soak.csv, soak.png (the curve), soak.json (the summary) and server.log, and
# prints requests and errors per kind, min/max RSS after the 5-minute warm-up and the slope in
# MiB/hour. See scripts/soak.py for what is sent and the options (rates, sizes, port).
#
#   scripts/soak.sh [SECONDS] [extra soak.py options, e.g. --hashes 1000000 --lookup-rate 200]
#
# SAFEGUARD_BIN: a safeguard binary to drive instead of building target/release/safeguard.
# Needs python3 with venv (installs matplotlib, which brings Pillow, into .venv-soak).
# On a shared machine run it as `nice -n 15 scripts/soak.sh`: the rates are fixed, so the
# load does not grow to take whatever CPU is free.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
shift || true
if [ -n "${SAFEGUARD_BIN:-}" ]; then
    bin=$SAFEGUARD_BIN
else
    cargo build --release -p safeguard-cli >&2
    bin=target/release/safeguard
fi
if [ ! -x .venv-soak/bin/python ]; then
    python3 -m venv .venv-soak
fi
.venv-soak/bin/python -c "import matplotlib, PIL" 2>/dev/null \
    || .venv-soak/bin/pip install -q matplotlib==3.11.2
exec .venv-soak/bin/python scripts/soak.py --bin "$bin" --seconds "$seconds" "$@"
