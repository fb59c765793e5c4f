#!/usr/bin/env bash
# Hashing speed: Safeguard (exact in-process, exact in a sandboxed worker, and --fast) against
# Pillow + pdqhash (the path HMA uses), on
# the same generated corpus, all pinned to the same single core (the worker inherits the pin), in
# one run; Safeguard's three modes take turns within each pass.
#
# Usage: scripts/bench-hash.sh [REPEAT]     (default 3 passes each; the best pass counts)
# Needs: python3 with venv (installs Pillow 13.0.0, numpy and pdqhash 0.2.8 into .venv-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
repeat="${1:-3}"
conformance="${SAFEGUARD_CONFORMANCE:-../shared/conformance}"
[ -d "$conformance/pdq" ] || conformance=testdata/conformance

if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install -q pillow==13.0.0 numpy pdqhash==0.2.8

corpus=bench-corpus
if [ ! -d "$corpus" ]; then
  .venv-bench/bin/python scripts/bench_corpus.py "$conformance" "$corpus"
fi
cargo build --release -q -p safeguard-cli

core=0
echo "== baseline: Pillow + pdqhash, 1 core"
base=$(taskset -c "$core" .venv-bench/bin/python scripts/bench_baseline.py "$corpus" "$repeat")
echo "$base"
echo "== safeguard bench hash, 1 core"
ours=$(taskset -c "$core" target/release/safeguard bench hash "$corpus" --repeat "$repeat" --json)
echo "$ours"
python3 - "$base" "$ours" <<'PY'
import json, sys
b, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"images: {o['images']} ({o['megapixels']:.1f} MP in all)")
print(f"baseline      {b['images_per_second']:8.2f} images/s")
print(f"safeguard     {o['exact_images_per_second']:8.2f} images/s  ratio {o['exact_images_per_second'] / b['images_per_second']:.2f}x (exact, in-process)")
print(f"safeguard sb  {o['sandboxed_images_per_second']:8.2f} images/s  ratio {o['sandboxed_images_per_second'] / b['images_per_second']:.2f}x (exact, sandboxed worker); time ratio sandboxed/in-process {o['sandbox_time_ratio']:.3f}")
print(f"load average  before {o['load_average_before']}, after {o['load_average_after']}")
print(f"safeguard -f  {o['fast_images_per_second']:8.2f} images/s  ratio {o['fast_images_per_second'] / b['images_per_second']:.2f}x (--fast, not bit-exact; drift max {o['fast_drift_max_bits']} bits, mean {o['fast_drift_mean_bits']:.2f})")
PY
