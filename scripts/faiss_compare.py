#!/usr/bin/env python3
"""Compare Safeguard's exact PDQ index with FAISS on the very same bank and queries.

1. Runs `safeguard bench index --size N --queries Q --data D --dump DIR`, which generates the
   bank and queries (seeded SplitMix64, see docs/performance.md), measures Safeguard's index
   and a brute-force scan, and writes bank.bin, queries.bin, results.bin and bench.json.
2. Loads the same bank and queries into FAISS `IndexBinaryMultiHash(256, 16, 16)` with
   `nflip = 1` (what Meta's HMA uses; exact for radius 31 by the pigeonhole principle) and into
   `IndexBinaryFlat`, and times `range_search` on 1 and 2 threads.
3. Checks that the three result sets are identical, query by query, and prints the ratios.

FAISS's range_search keeps distances strictly below its threshold, so radius r is searched
with threshold r + 1.

Usage:
    scripts/faiss_compare.py --size 10000000 --queries 1000 --data uniform
    scripts/faiss_compare.py --size 1000000 --data clustered --safeguard target/release/safeguard

The first run creates .venv-bench/ (ignored by git) and installs faiss-cpu and numpy from PyPI
into it. Exits 1 if any result set differs.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bench"


def ensure_venv():
    """Re-runs this script inside .venv-bench, creating it first if needed."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} with faiss-cpu and numpy", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "faiss-cpu", "numpy"],
            check=True,
        )
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def result_sets(lims, D, I):
    """Per query, the set of (id, distance) pairs."""
    return [
        set(zip(I[lims[q]:lims[q + 1]].tolist(), D[lims[q]:lims[q + 1]].tolist()))
        for q in range(len(lims) - 1)
    ]


def timed_range_search(faiss, index, queries, threshold, threads):
    """Queries per second and results, after a short untimed warm-up (as Safeguard's bench)."""
    faiss.omp_set_num_threads(threads)
    index.range_search(queries[: min(len(queries), 20)], threshold)
    start = time.perf_counter()
    lims, D, I = index.range_search(queries, threshold)
    secs = time.perf_counter() - start
    return len(queries) / secs, (lims, D, I)


def main():
    ensure_venv()
    import faiss
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--data", choices=["uniform", "clustered"], default="uniform")
    ap.add_argument("--radius", type=int, default=31)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--safeguard",
        default=str(ROOT / "target" / "release" / "safeguard"),
        help="the safeguard binary (build it with `cargo build --release -p safeguard-cli`)",
    )
    ap.add_argument("--workdir", help="where the data are dumped (default: target/faiss-compare/...)")
    ap.add_argument("--skip-flat", action="store_true", help="do not run IndexBinaryFlat")
    args = ap.parse_args()

    workdir = Path(
        args.workdir or ROOT / "target" / "faiss-compare" / f"{args.data}-{args.size}-{args.seed}"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        args.safeguard, "bench", "index",
        "--size", str(args.size), "--queries", str(args.queries),
        "--data", args.data, "--radius", str(args.radius), "--seed", str(args.seed),
        "--dump", str(workdir),
    ]
    print("$", " ".join(cmd), flush=True)
    run = subprocess.run(cmd)
    if run.returncode not in (0, 1):
        sys.exit(f"safeguard bench failed with status {run.returncode}")
    sg = json.loads((workdir / "bench.json").read_text())

    bank = np.fromfile(workdir / "bank.bin", dtype=np.uint8).reshape(-1, 32)
    queries = np.fromfile(workdir / "queries.bin", dtype=np.uint8).reshape(-1, 32)
    rec = np.fromfile(
        workdir / "results.bin", dtype=[("q", "<u4"), ("d", "<u4"), ("id", "<u8")]
    )
    assert len(bank) == args.size and len(queries) == args.queries
    sg_sets = [set() for _ in range(len(queries))]
    for q, d, i in zip(rec["q"].tolist(), rec["d"].tolist(), rec["id"].tolist()):
        sg_sets[q].add((i, d))
    threshold = args.radius + 1
    faiss_version = faiss.__version__
    print(f"\nFAISS {faiss_version} on the same {len(bank)} hashes and {len(queries)} queries")

    rows = {}
    # IndexBinaryMultiHash(256, 16, 16), nflip = 1: HMA's configuration. Its memory is the
    # growth of this process's resident set while it is built.
    before = rss_bytes()
    start = time.perf_counter()
    mih = faiss.IndexBinaryMultiHash(256, 16, 16)
    mih.nflip = 1
    mih.add(bank)
    mih_build = time.perf_counter() - start
    mih_bytes = (rss_bytes() - before) / len(bank)
    mih1, mih_res = timed_range_search(faiss, mih, queries, threshold, 1)
    mih2, _ = timed_range_search(faiss, mih, queries, threshold, 2)
    rows["IndexBinaryMultiHash"] = (mih_build, mih_bytes, mih1, mih2, result_sets(*mih_res))
    del mih

    if not args.skip_flat:
        start = time.perf_counter()
        flat = faiss.IndexBinaryFlat(256)
        flat.add(bank)
        flat_build = time.perf_counter() - start
        # Flat holds exactly the 32-byte codes; its RSS growth is hidden by memory the
        # multi-hash index just freed.
        flat_bytes = float(flat.code_size)
        flat1, flat_res = timed_range_search(faiss, flat, queries, threshold, 1)
        flat2, _ = timed_range_search(faiss, flat, queries, threshold, 2)
        rows["IndexBinaryFlat"] = (flat_build, flat_bytes, flat1, flat2, result_sets(*flat_res))
        del flat

    print(f"\n{'index':<28}{'build s':>9}{'bytes/hash':>12}{'q/s 1 thr':>12}{'q/s 2 thr':>12}")
    print(
        f"{'safeguard':<28}{sg['build_s']:>9.2f}{sg['bytes_per_hash']:>12.1f}"
        f"{sg['qps_1']:>12.0f}{sg['qps_2']:>12.0f}"
    )
    identical = True
    for name, (build, per_hash, q1, q2, sets) in rows.items():
        print(f"{'faiss ' + name:<28}{build:>9.2f}{per_hash:>12.1f}{q1:>12.1f}{q2:>12.1f}")
        differ = sum(1 for a, b in zip(sets, sg_sets) if a != b)
        if differ:
            identical = False
            print(f"  RESULT SETS DIFFER from Safeguard's on {differ} of {len(queries)} queries")
    total = sum(len(s) for s in sg_sets)
    print(
        f"\nresult sets: {'identical' if identical else 'DIFFERENT'} across "
        f"{', '.join(['safeguard', *rows])} ({total} matches, "
        f"{sum(1 for s in sg_sets if s)} queries with a match)"
    )
    for name, (build, per_hash, q1, q2, _) in rows.items():
        line = (
            f"safeguard / faiss {name}: {sg['qps_1'] / q1:.1f}x queries/s on 1 thread, "
            f"{sg['qps_2'] / q2:.1f}x on 2 threads"
        )
        if name == "IndexBinaryMultiHash":
            # Flat needs no build and holds only the codes: those ratios would say nothing.
            line += (
                f"; builds {build / sg['build_s']:.1f}x faster; "
                f"{per_hash / sg['bytes_per_hash']:.1f}x less memory per hash"
            )
        print(line)
    sys.exit(0 if identical and sg.get("exact", True) else 1)


if __name__ == "__main__":
    main()
