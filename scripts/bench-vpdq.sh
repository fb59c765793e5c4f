#!/usr/bin/env bash
# vPDQ speed: Safeguard against Meta's `vpdq` Python package (PyPI 0.2.5, the C++ reference
# behind Cython) on the same files, both pinned to the same single core, in one run. Prints
# videos/s, x realtime and the ratio, per file and in all, plus how many hashes agree.
#
# Usage: scripts/bench-vpdq.sh [REPEAT] [SECONDS_PER_HASH]   (defaults 3 and 1)
# Files: the 14 upstream sample videos (../shared/conformance/vpdq, else the repository's two)
# and a generated 60-second 1280x720 30 fps H.264 clip of FFmpeg's testsrc2 pattern.
# Also measures decode + RGB conversion of every frame: FFmpeg's libraries in process against
# the `ffmpeg` program as a subprocess (--decode-compare).
# Needs: scripts/setup (FFmpeg dev libraries and the ffmpeg program) and python3; installs
# what the baseline builds with (libavdevice/libavfilter headers, python3-venv) when missing,
# then vpdq 0.2.5 into .venv-bench (it builds against the same FFmpeg libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
repeat="${1:-3}"
sph="${2:-1}"
conformance="${SAFEGUARD_CONFORMANCE:-../shared/conformance}"
[ -d "$conformance/vpdq/videos" ] || conformance=testdata/conformance

# The baseline compiles against every FFmpeg library, two more than Safeguard links, plus
# python3-venv for its environment.
base_pkgs=()
for lib in libavdevice libavfilter; do
  pkg-config --exists "$lib" 2>/dev/null || base_pkgs+=("$lib-dev")
done
python3 -c 'import ensurepip' 2>/dev/null || base_pkgs+=(python3-venv)
if [ ${#base_pkgs[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bench-vpdq: installing ${base_pkgs[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${base_pkgs[@]}" >/dev/null
fi
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/python -c 'import vpdq' 2>/dev/null || .venv-bench/bin/pip install -q vpdq==0.2.5

clip=bench-corpus/testsrc2-720p-60s.mp4
if [ ! -f "$clip" ]; then
  mkdir -p bench-corpus
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 60 -c:v libx264 \
    -pix_fmt yuv420p "$clip"
fi
cargo build --release -q -p safeguard-cli

taskset -c 0 target/release/safeguard bench video --repeat "$repeat" \
  --seconds-per-hash "$sph" --python .venv-bench/bin/python --decode-compare \
  "$conformance"/vpdq/videos/*.mp4 "$clip"
