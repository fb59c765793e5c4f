#!/usr/bin/env python3
"""Generates the hashing benchmark corpus: benign photos from 0.3 to 12 megapixels.

Usage: bench_corpus.py SOURCE_DIR OUT_DIR

Every source is a benign photo from the conformance set (desk, bridge, landscapes). Each is
resized (Lanczos) to each target size and saved as a 4:2:0 JPEG at quality 90, as phones and
upload pipelines produce. The same corpus feeds both sides of the benchmark.
"""
import os
import sys

from PIL import Image

# Megapixels of the generated images: the spread of sizes an upload pipeline sees.
SIZES_MP = [0.3, 0.5, 1, 2, 3, 5, 8, 12]
# Benign source photos, relative to the conformance folder; missing ones are skipped.
SOURCES = [
    "pdq/photos/images/pdq/data/reg-test-input/exif-rotn/exif-rotn-1.jpg",
    "pdq/photos/images/pdq/data/bridge-mods/aaa-orig.jpg",
    "pdq/photos/images/pdq/data/reg-test-input/pen-and-coaster.png",
    "pdq/lossless/images/photo_coffee_600x400.png",
    "pdq/photos/images/pdq/data/bridge-mods/square-512x512.jpg",
    "pdq/photos/images/pdq/data/reg-test-input/labelme-subset/q2821.jpg",
]


def main():
    src_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    made = 0
    for k, rel in enumerate(SOURCES):
        path = os.path.join(src_dir, rel)
        if not os.path.exists(path):
            continue
        base = Image.open(path).convert("RGB")
        aspect = base.width / base.height
        for mp in SIZES_MP:
            h = int(round((mp * 1e6 / aspect) ** 0.5))
            w = int(round(h * aspect))
            img = base.resize((w, h), Image.LANCZOS)
            img.save(os.path.join(out_dir, f"src{k}_{mp}mp.jpg"), quality=90, subsampling=2)
            made += 1
    if made == 0:
        sys.exit(f"no source photos found under {src_dir}")
    print(f"{made} images in {out_dir}")


if __name__ == "__main__":
    main()
