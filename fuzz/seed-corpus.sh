#!/usr/bin/env bash
# Fills corpus/decode_hash with small valid files of every format: the Pillow-made fixtures of
# the media crate's tests and the smaller images of the shared PDQ conformance corpus (all
# benign: generated patterns and test photos). Safe to re-run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/corpus/decode_hash"
mkdir -p "$corpus"
cp "$here"/../crates/media/tests/data/pillow13/*.{jpg,webp,gif,bmp,tif} "$corpus"/
shared="$here/../../shared/conformance/pdq"
if [ -d "$shared" ]; then
  find "$shared" -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.webp' \) -size -24k \
    -exec cp {} "$corpus"/ \;
fi
echo "$(ls "$corpus" | wc -l) seed files in $corpus"
