#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while, on one core, starting from the committed seeds.
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#   fuzz/run.sh --list            the targets
# The working corpus grows in fuzz/corpus/TARGET (not committed); crashes land in
# fuzz/artifacts/TARGET/, and the run's log in fuzz/artifacts/TARGET/run-<UTC time>.log, whose
# last lines ("Done N runs in S second(s)", "#N DONE cov: ... ft: ...") are what
# docs/security.md records.
#
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP=1 unlocks them on the pinned stable
# toolchain (rust-toolchain.toml), so no other toolchain is needed. Install cargo-fuzz with
# `cargo install cargo-fuzz` (or scripts/setup --fuzz).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if [ "${1:-}" = "--list" ]; then
  RUSTC_BOOTSTRAP=1 cargo fuzz list
  exit 0
fi
target="${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}"
seconds="${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer flags]}"
shift 2
[ -d "seeds/$target" ] || { echo "run.sh: no seeds/$target" >&2; exit 2; }

# Longest input the fuzzer builds: media needs room for real container structure; the text
# formats stay small so each execution is fast.
case "$target" in
  decode_hash|video_decode) max_len=262144 ;;
  *) max_len=65536 ;;
esac

mkdir -p "corpus/$target" "artifacts/$target"
cp -n "seeds/$target"/* "corpus/$target"/ 2>/dev/null || true
log="artifacts/$target/run-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "run.sh: $target for ${seconds}s, log in fuzz/$log" >&2
# -O: optimised build with debug assertions. One process (no -jobs/-workers): the machine is
# shared. -timeout: one input taking longer than 10 s is a hang (the media decoders have 2 s
# budgets in the targets). -rss_limit_mb: a decoder that allocates beyond its limits fails.
RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
  -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$@" 2>&1 | tee "$log"
