#!/usr/bin/env python3
"""Writes a benign synthetic hash list for the import benchmark (scripts/bench-import.sh).

Values are random numbers from a seeded generator, shaped like hashes: they come from no
content at all. Formats:
  plain N    N lines of 32 hex digits (MD5-shaped), one per line
  ncmec N    an NCMEC hash-sharing v2 queryResult page with N image entries, each with an
             MD5-, a SHA-1- and a PDQ-shaped fingerprint and a classification; every 100th
             entry is a deletedImage of an earlier one
Output goes to standard output.
"""
import random
import sys


def plain(n, rng, out):
    fmt = "%032x\n"
    bits = rng.getrandbits
    chunk = []
    for i in range(n):
        chunk.append(fmt % bits(128))
        if len(chunk) == 10000:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))


def ncmec(n, rng, out):
    bits = rng.getrandbits
    out.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">\n'
              '  <images count="%d">\n' % n)
    classes = ("A1", "A2", "B1", "B2")
    chunk = []
    for i in range(n):
        if i % 100 == 99:
            chunk.append("    <deletedImage><member id=\"1\">Bench</member><id>e%d</id>"
                         "<timestamp>2024-01-01T00:00:00Z</timestamp></deletedImage>\n" % (i - 50))
        else:
            chunk.append(
                "    <image><member id=\"1\">Bench</member><timestamp>2024-01-01T00:00:00Z"
                "</timestamp><id>e%d</id><classification>%s</classification><fingerprints>"
                "<md5>%032x</md5><sha1>%040x</sha1><pdq>%064x</pdq></fingerprints></image>\n"
                % (i, classes[i % 4], bits(128), bits(160), bits(256)))
        if len(chunk) == 5000:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))
    out.write("  </images>\n  <paging></paging>\n</queryResult>\n")


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("plain", "ncmec"):
        sys.exit("usage: gen-hash-list.py plain|ncmec COUNT [SEED]")
    n = int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) == 4 else 1)
    out = sys.stdout
    (plain if sys.argv[1] == "plain" else ncmec)(n, rng, out)


if __name__ == "__main__":
    main()
