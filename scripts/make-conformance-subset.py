#!/usr/bin/env python3
"""Copies the small conformance subset that the repository carries from the full set.

Run from the repository root: python3 scripts/make-conformance-subset.py [FULL_SET_DIR]
The full set defaults to ../shared/conformance. Every CSV keeps its header and only the rows
of the copied files, so tests read the subset exactly as they read the full set.
"""
import csv
import os
import shutil
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join("..", "shared", "conformance")
DST = os.path.join("testdata", "conformance")

PHOTOS = {
    "images/pdq/data/misc-images/small.jpg",
    "images/pdq/data/misc-images/wee.jpg",
    "images/pdq/data/reg-test-input/labelme-subset/q0003.jpg",
    "images/pdq/data/reg-test-input/labelme-subset/q0004.jpg",
    "images/pdq/data/reg-test-input/labelme-subset/q0122.jpg",
    "images/pdq/data/reg-test-input/labelme-subset/q0746.jpg",
    "images/pdq/data/reg-test-input/labelme-subset/q1050.jpg",
    "images/pdq/data/reg-test-input/labelme-subset/q2821.jpg",
    "images/pdq/data/bridge-mods/shrink-a-lot.jpg",
    "images/pdq/data/bridge-mods/square-128x128.jpg",
    "images/pdq/data/bridge-mods/square-256x256.jpg",
    "images/pdq/data/bridge-mods/square-512x512.jpg",
    "images/pdq/data/bridge-mods/blur-a-lot.jpg",
    "images/pdq/data/misc-images/modes/1.png",
    "images/pdq/data/misc-images/modes/I.webp",
    "images/pdq/data/misc-images/modes/CMYK.jpg",
    "images/python-threatexchange/threatexchange/tests/hashing/resources/rgb.jpeg",
    "images/python-threatexchange/threatexchange/tests/hashing/resources/I16.png",
    "images/python-threatexchange/threatexchange/tests/hashing/resources/LA.png",
}
VARIANT_GROUPS = {"coins", "logo"}
LOSSLESS_MAX_BYTES = 60_000


def keep_rows(folder, keep):
    for name in sorted(os.listdir(os.path.join(SRC, "pdq", folder))):
        src = os.path.join(SRC, "pdq", folder, name)
        dst = os.path.join(DST, "pdq", folder, name)
        if name.endswith(".csv"):
            with open(src, newline="") as f:
                rows = list(csv.reader(f))
            with open(dst, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(rows[0])
                w.writerows(r for r in rows[1:] if r[0] in keep or not r[0].startswith("images/"))
        elif os.path.isfile(src):
            shutil.copyfile(src, dst)
    for path in sorted(keep):
        os.makedirs(os.path.dirname(os.path.join(DST, "pdq", folder, path)), exist_ok=True)
        shutil.copyfile(os.path.join(SRC, "pdq", folder, path), os.path.join(DST, "pdq", folder, path))


def main():
    shutil.rmtree(DST, ignore_errors=True)
    for folder in ("lossless", "photos", "variants"):
        os.makedirs(os.path.join(DST, "pdq", folder), exist_ok=True)
    for name in os.listdir(os.path.join(SRC, "pdq")):
        if os.path.isfile(os.path.join(SRC, "pdq", name)):
            shutil.copyfile(os.path.join(SRC, "pdq", name), os.path.join(DST, "pdq", name))
    with open(os.path.join(SRC, "pdq", "lossless", "manifest.csv"), newline="") as f:
        lossless = {r["path"] for r in csv.DictReader(f) if int(r["bytes"]) < LOSSLESS_MAX_BYTES}
    with open(os.path.join(SRC, "pdq", "variants", "groups.csv"), newline="") as f:
        variants = {r["path"] for r in csv.DictReader(f) if r["group"] in VARIANT_GROUPS}
    keep_rows("lossless", lossless)
    keep_rows("photos", PHOTOS)
    keep_rows("variants", variants)


if __name__ == "__main__":
    main()
