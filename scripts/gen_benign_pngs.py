#!/usr/bin/env python3
"""Writes N small benign PNGs (32x32 grey, 4x4 blocks of random grey levels), 100 per folder,
for the backfill benchmark's many-small-files case. Standard library only.

Usage: gen_benign_pngs.py OUT_DIR N
"""
import os
import random
import struct
import sys
import zlib


def png(seed):
    rnd = random.Random(seed)
    blocks = [rnd.randrange(256) for _ in range(64)]
    raw = b"".join(
        b"\x00" + bytes(blocks[(y // 4) * 8 + x // 4] for x in range(32)) for y in range(32)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        d = os.path.join(out, f"d{i // 100:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"img{i:05}.png"), "wb") as f:
            f.write(png(i))


if __name__ == "__main__":
    main()
