#!/usr/bin/env python3
"""Baseline for `safeguard bench video`: Meta's `vpdq` Python package (PyPI 0.2.5, the C++
reference behind Cython) hashing the same files.

Prints one JSON object per file: {"path", "seconds" (best of --repeat), "frames": [[frame
number, quality, hex], ...]}. The caller pins the process to a core; the package is asked for
one hashing thread, and its decoder's automatic thread count follows the CPU affinity.
"""

import argparse
import json
import sys
import time

import vpdq


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds-per-hash", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    for path in args.files:
        best = None
        frames = None
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            features = vpdq.computeHash(
                path, seconds_per_hash=args.seconds_per_hash, thread_count=1
            )
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
            frames = [[f.frame_number, f.quality, f.hex] for f in features]
        print(json.dumps({"path": path, "seconds": best, "frames": frames}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
