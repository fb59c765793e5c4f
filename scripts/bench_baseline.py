#!/usr/bin/env python3
"""The baseline: HMA's hashing path (Pillow decode + convert('RGB') + pdqhash) on one thread.

Usage: bench_baseline.py DIR REPEAT
Prints one JSON object: images, best pass seconds, images per second. Mirrors
`safeguard bench hash`: every file is read, decoded and hashed; the best of REPEAT passes counts.
"""
import json
import os
import sys
import time

import numpy
import pdqhash
from PIL import Image


def one_pass(files):
    start = time.perf_counter()
    for f in files:
        with Image.open(f) as im:
            arr = numpy.asarray(im.convert("RGB"))
        pdqhash.compute(arr)
    return time.perf_counter() - start


def main():
    d, repeat = sys.argv[1], int(sys.argv[2])
    files = []
    for root, _, names in os.walk(d):
        files += [os.path.join(root, n) for n in sorted(names)]
    best = min(one_pass(files) for _ in range(repeat))
    print(json.dumps({"images": len(files), "seconds": best, "images_per_second": len(files) / best}))


if __name__ == "__main__":
    main()
