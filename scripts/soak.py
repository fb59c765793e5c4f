#!/usr/bin/env python3
"""Soak test: `safeguard serve` under mixed load at a fixed rate for a long time, with its
memory sampled, to show whether memory is flat after warm-up (issue 12, item 10).

Run through `scripts/soak.sh [SECONDS]` (it builds the binary and the plotting venv); by hand:

    .venv-soak/bin/python scripts/soak.py --bin target/release/safeguard --seconds 3600

What it does:
  1. seeds a fresh data directory with a bank of --hashes random PDQ hashes
     (`safeguard bench seed`, bank BENCH_BANK) and writes lookup queries (half near a bank
     entry, half random);
  2. starts the server on it (sandboxed decoding, the default) and creates banks SOAK_ADDS
     and SOAK_IMPORTS;
  3. for --seconds, at fixed rates (each kind on its own schedule; a request that is late
     delays the next one instead of bursting):
       lookups  GET  /m/lookup?signal_type=pdq&signal=...        (HMA)
       uploads  POST /h/hash  (multipart `photo`: one of 48 generated benign PNG/JPEG
                images, 64-800 px: gradients, stripes, noise, circles)
       adds     POST /c/bank/SOAK_ADDS/signal {"pdq": ...}          (HMA)
       removes  DELETE /c/bank/SOAK_ADDS/content/{id}, keeping --live-adds contents, so the
                bank's size is steady after the first minutes and any growth is the server's
       imports  POST /v1/banks/SOAK_IMPORTS/import?format=plain&type=md5&complete=true of
                --import-size MD5 values, each list the previous one with 10% replaced
                (so every import both adds and withdraws)
  4. every --sample seconds records the server's VmRSS and VmHWM (/proc/PID/status), its
     CPU time (/proc/PID/stat), and the summed VmRSS of its decode workers (child
     processes), into soak.csv;
  5. at the end writes soak.png (RSS over time, warm-up shaded), soak.json (the summary) and
     prints: requests and errors per kind, min/max server RSS after warm-up, and the slope of
     a least-squares line through the post-warm-up samples (MiB/hour).

Memory is called flat when the post-warm-up slope is under --flat-slope MiB/hour (default 5).
Exit status 0 when the server stayed up, every kind got answers, and errors were under 1%.
"""

import argparse
import http.client
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

KEY = "soak-admin-key-0123456789abcdef0123456789abcdef01"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Stats:
    def __init__(self, kinds):
        self.lock = threading.Lock()
        self.ok = {k: 0 for k in kinds}
        self.errors = {k: {} for k in kinds}
        self.lat = {k: [] for k in kinds}
        self.late = {k: 0 for k in kinds}

    def record(self, kind, status, seconds):
        with self.lock:
            if status is not None and 200 <= status < 300:
                self.ok[kind] += 1
                self.lat[kind].append(seconds)
            else:
                key = str(status) if status is not None else "connection"
                self.errors[kind][key] = self.errors[kind].get(key, 0) + 1

    def snapshot(self):
        with self.lock:
            return dict(self.ok), {k: sum(v.values()) for k, v in self.errors.items()}


class Client:
    """One keep-alive connection, reopened after an error."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def send(self, method, path, body=None, content_type=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": "Bearer " + KEY}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            return None, b""


def paced(rate, stop, deadline, fn):
    """Calls fn() at `rate` per second until stop or deadline; returns how many were late."""
    period = 1.0 / rate
    nxt = time.monotonic()
    late = 0
    while not stop.is_set():
        now = time.monotonic()
        if now >= deadline:
            break
        if nxt > now:
            stop.wait(nxt - now)
            continue
        if now - nxt > period:
            late += 1
            # Behind schedule: start again from now rather than bursting to catch up.
            nxt = now
        fn()
        nxt += period
    return late


def rand_hex(rng, digits):
    return "%0*x" % (digits, rng.getrandbits(digits * 4))


def make_images(n, seed):
    """Benign generated images: gradients, stripes, noise and circles, PNG and JPEG."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    out = []
    for i in range(n):
        w, h = rng.randint(64, 800), rng.randint(64, 800)
        im = Image.new("RGB", (w, h))
        d = ImageDraw.Draw(im)
        style = i % 4
        c1 = tuple(rng.randrange(256) for _ in range(3))
        c2 = tuple(rng.randrange(256) for _ in range(3))
        if style == 0:
            for y in range(h):
                t = y / max(1, h - 1)
                d.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(c1, c2)))
        elif style == 1:
            step = rng.randint(4, 40)
            for x in range(0, w, step):
                d.rectangle([x, 0, x + step // 2, h], fill=c1)
        elif style == 2:
            im = Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3))
        else:
            im.paste(c2, (0, 0, w, h))
            for _ in range(rng.randint(1, 8)):
                r = rng.randint(5, max(6, min(w, h) // 3))
                x, y = rng.randrange(w), rng.randrange(h)
                d.ellipse([x - r, y - r, x + r, y + r], fill=c1)
        buf = io.BytesIO()
        if i % 2 == 0:
            im.save(buf, "JPEG", quality=rng.randint(60, 95))
            out.append(("image/jpeg", "img%d.jpg" % i, buf.getvalue()))
        else:
            im.save(buf, "PNG")
            out.append(("image/png", "img%d.png" % i, buf.getvalue()))
    return out


def multipart(field, filename, ctype, data):
    boundary = "soakboundary%016x" % random.getrandbits(64)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, "multipart/form-data; boundary=" + boundary


def read_proc(pid):
    """(VmRSS KiB, VmHWM KiB, CPU seconds, RssAnon KiB, RssFile KiB) of a process, or None if
    it is gone. Heap growth shows in RssAnon; pages of mapped files (the binary, libraries) in
    RssFile."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = {}
    for line in status.splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    kib = lambda k: int(fields.get(k, "0 kB").split()[0])
    rest = stat.rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return kib("VmRSS"), kib("VmHWM"), cpu, kib("RssAnon"), kib("RssFile")


def dir_kib(path):
    """Bytes on disk of the files in a directory tree, in KiB (the data directory: the
    database, its WAL, the index snapshot, the vault)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total // 1024


def children_rss(pid):
    """Summed VmRSS (KiB) and count of the direct children of pid (the decode workers)."""
    total, n = 0, 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        n += 1
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total, n


def wait_ready(port, proc, log, timeout=600):
    t0 = time.monotonic()
    c = Client(port)
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}; see {log}")
        status, _ = c.send("GET", "/status")
        if status == 200:
            return time.monotonic() - t0
        time.sleep(0.1)
    sys.exit(f"server not ready after {timeout} s; see {log}")


def slope_mib_per_hour(ts, vals):
    n = len(ts)
    if n < 2:
        return 0.0
    mt, mv = sum(ts) / n, sum(vals) / n
    den = sum((t - mt) ** 2 for t in ts)
    if den == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vals)) / den * 3600


def pct(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin")
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--hashes", type=int, default=1_000_000)
    ap.add_argument("--port", type=int, default=5591)
    ap.add_argument("--out", default=None, help="output folder (default target/soak-<UTC time>)")
    ap.add_argument("--lookup-rate", type=float, default=200.0, help="per second")
    ap.add_argument("--lookup-threads", type=int, default=4)
    ap.add_argument("--upload-rate", type=float, default=10.0, help="per second")
    ap.add_argument("--upload-threads", type=int, default=2)
    ap.add_argument("--add-rate", type=float, default=10.0, help="adds (and removes) per second")
    ap.add_argument("--live-adds", type=int, default=2000)
    ap.add_argument("--import-every", type=float, default=30.0, help="seconds between imports")
    ap.add_argument("--import-size", type=int, default=20000)
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=300.0, help="seconds left out of min/max/slope")
    ap.add_argument("--flat-slope", type=float, default=5.0, help="MiB/hour called flat")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--write-images", metavar="DIR",
                    help="only write the upload images into DIR and exit (a small-image corpus "
                         "for `safeguard bench hash`)")
    args = ap.parse_args()
    if args.write_images:
        os.makedirs(args.write_images, exist_ok=True)
        for _, name, data_ in make_images(48, args.seed):
            with open(os.path.join(args.write_images, name), "wb") as f:
                f.write(data_)
        return

    if not args.bin:
        ap.error("--bin is required")
    out = args.out or time.strftime("target/soak-%Y%m%dT%H%M%SZ", time.gmtime())
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="safeguard-soak-")
    data = os.path.join(work, "data")
    queries_file = os.path.join(work, "queries.txt")
    rng = random.Random(args.seed)
    print(f"soak: {args.seconds:.0f} s, {args.hashes} hashes, binary {args.bin}, work {work}, "
          f"out {out}", flush=True)

    t0 = time.monotonic()
    subprocess.run([args.bin, "bench", "seed", "--data-dir", data, "--hashes", str(args.hashes),
                    "--queries", queries_file, "--query-count", "100000",
                    "--seed", str(args.seed)], check=True, stdout=subprocess.DEVNULL)
    print(f"seeded {args.hashes} hashes in {time.monotonic() - t0:.0f} s", flush=True)
    with open(queries_file) as f:
        queries = [l.strip() for l in f if l.strip()]
    images = make_images(48, args.seed)
    print(f"{len(images)} images, {sum(len(i[2]) for i in images) / 1e6:.1f} MB", flush=True)

    env = dict(os.environ, SAFEGUARD_ADMIN_KEY=KEY)
    env.setdefault("SAFEGUARD_LOG", "warn")
    log = os.path.join(out, "server.log")
    with open(log, "ab") as lf:
        proc = subprocess.Popen([args.bin, "serve", "--data-dir", data, "--listen",
                                 f"127.0.0.1:{args.port}"], env=env, stdout=lf, stderr=lf)
    try:
        ready = wait_ready(args.port, proc, log)
        print(f"server pid {proc.pid} ready in {ready:.1f} s", flush=True)
        c = Client(args.port)
        for bank in ("SOAK_ADDS", "SOAK_IMPORTS"):
            st, body = c.send("POST", "/v1/banks", json.dumps({"name": bank}).encode(),
                              "application/json")
            assert st == 201, (st, body)

        kinds = ["lookup", "upload", "add", "remove", "import"]
        stats = Stats(kinds)
        stop = threading.Event()
        start = time.monotonic()
        deadline = start + args.seconds
        lates = {k: 0 for k in kinds}
        lates_lock = threading.Lock()
        live = []  # ids in SOAK_ADDS, oldest first
        live_lock = threading.Lock()

        def runner(kind, rate, make_fn):
            def run():
                fn = make_fn()
                late = paced(rate, stop, deadline, fn)
                with lates_lock:
                    lates[kind] += late
            return threading.Thread(target=run, name=kind, daemon=True)

        def lookup_fn():
            cl, r = Client(args.port), random.Random(rng.random())

            def f():
                q = r.choice(queries)
                t = time.monotonic()
                st, _ = cl.send("GET", f"/m/lookup?signal_type=pdq&signal={q}")
                stats.record("lookup", st, time.monotonic() - t)
            return f

        def upload_fn():
            cl, r = Client(args.port), random.Random(rng.random())

            def f():
                ctype, name, data_ = r.choice(images)
                body, ct = multipart("photo", name, ctype, data_)
                t = time.monotonic()
                st, _ = cl.send("POST", "/h/hash", body, ct)
                stats.record("upload", st, time.monotonic() - t)
            return f

        def add_fn():
            cl, r = Client(args.port), random.Random(rng.random())

            def f():
                body = json.dumps({"pdq": rand_hex(r, 64)}).encode()
                t = time.monotonic()
                st, resp = cl.send("POST", "/c/bank/SOAK_ADDS/signal", body, "application/json")
                stats.record("add", st, time.monotonic() - t)
                if st == 200:
                    with live_lock:
                        live.append(json.loads(resp)["id"])
                with live_lock:
                    victim = live.pop(0) if len(live) > args.live_adds else None
                if victim is not None:
                    t = time.monotonic()
                    st, resp = cl.send("DELETE", f"/c/bank/SOAK_ADDS/content/{victim}")
                    ok = st == 200 and json.loads(resp).get("deleted") == 1
                    stats.record("remove", st if ok else (st or 0) + 10000,
                                 time.monotonic() - t)
            return f

        current = {rand_hex(rng, 32) for _ in range(args.import_size)}

        def import_fn():
            cl, r = Client(args.port), random.Random(rng.random())

            def f():
                nonlocal current
                drop = set(r.sample(sorted(current), args.import_size // 10))
                current = (current - drop) | {rand_hex(r, 32) for _ in range(len(drop))}
                body = ("\n".join(sorted(current)) + "\n").encode()
                t = time.monotonic()
                st, resp = cl.send(
                    "POST", "/v1/banks/SOAK_IMPORTS/import?format=plain&type=md5&complete=true"
                    "&source=file:soak", body, "text/plain")
                stats.record("import", st, time.monotonic() - t)
            return f

        threads = []
        for _ in range(args.lookup_threads):
            threads.append(runner("lookup", args.lookup_rate / args.lookup_threads, lookup_fn))
        for _ in range(args.upload_threads):
            threads.append(runner("upload", args.upload_rate / args.upload_threads, upload_fn))
        threads.append(runner("add", args.add_rate, add_fn))
        threads.append(runner("import", 1.0 / args.import_every, import_fn))
        for t in threads:
            t.start()

        csv_path = os.path.join(out, "soak.csv")
        rows = []
        extra = []  # (t, RssAnon KiB, RssFile KiB, data directory KiB), one per row
        with open(csv_path, "w") as csv:
            # The anonymous/file split and the data directory's size came after the first
            # runs' CSVs; they go last so those stay readable by the same column numbers.
            csv.write("t_s,server_rss_kib,server_hwm_kib,server_cpu_s,workers_rss_kib,workers,"
                      + ",".join(f"{k}_ok" for k in kinds) + ","
                      + ",".join(f"{k}_err" for k in kinds)
                      + ",server_rss_anon_kib,server_rss_file_kib,data_dir_kib\n")
            nxt = time.monotonic()
            last_print = 0.0
            while True:
                now = time.monotonic()
                sample = read_proc(proc.pid)
                if sample is None or proc.poll() is not None:
                    print(f"server died (exit {proc.poll()}); see {log}", flush=True)
                    break
                wrss, wn = children_rss(proc.pid)
                ok, err = stats.snapshot()
                row = (now - start, sample[0], sample[1], sample[2], wrss, wn)
                rows.append(row)
                extra.append((now - start, sample[3], sample[4], dir_kib(data)))
                csv.write("%.1f,%d,%d,%.2f,%d,%d," % row
                          + ",".join(str(ok[k]) for k in kinds) + ","
                          + ",".join(str(err[k]) for k in kinds)
                          + ",%d,%d,%d\n" % extra[-1][1:])
                csv.flush()
                if now - last_print >= 60:
                    last_print = now
                    print(f"t={now - start:6.0f}s rss={sample[0] / 1024:7.1f} MiB "
                          f"workers={wrss / 1024:6.1f} MiB ({wn}) cpu={sample[2]:7.1f}s ok="
                          + " ".join(f"{k}:{ok[k]}" for k in kinds)
                          + " err=" + " ".join(f"{k}:{err[k]}" for k in kinds), flush=True)
                if now >= deadline:
                    break
                nxt += args.sample
                stop.wait(max(0.0, nxt - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(timeout=180)
        alive = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    wall = time.monotonic() - start

    post = [r for r in rows if r[0] >= args.warmup]
    ts = [r[0] for r in post]
    rss = [r[1] / 1024 for r in post]
    wrk = [r[4] / 1024 for r in post]
    half = [r for r in post if r[0] >= (args.warmup + rows[-1][0]) / 2] if post else []
    ok, err = stats.snapshot()
    summary = {
        "seconds": round(wall, 1),
        "hashes": args.hashes,
        "samples": len(rows),
        "warmup_s": args.warmup,
        "server_alive_at_end": alive,
        "server_cpu_s": rows[-1][3] if rows else None,
        "rss_mib_after_warmup": {"min": min(rss, default=0), "max": max(rss, default=0),
                                 "first": rss[0] if rss else 0, "last": rss[-1] if rss else 0},
        "rss_slope_mib_per_hour": slope_mib_per_hour(ts, rss),
        "rss_slope_second_half_mib_per_hour": slope_mib_per_hour(
            [r[0] for r in half], [r[1] / 1024 for r in half]),
        "rss_anon_slope_mib_per_hour": slope_mib_per_hour(
            [e[0] for e in extra if e[0] >= args.warmup],
            [e[1] / 1024 for e in extra if e[0] >= args.warmup]),
        "data_dir_mib": {"after_warmup": next((e[3] / 1024 for e in extra if e[0] >= args.warmup),
                                              0),
                         "last": extra[-1][3] / 1024 if extra else 0},
        "workers_rss_mib_after_warmup": {"min": min(wrk, default=0), "max": max(wrk, default=0)},
        "workers_rss_slope_mib_per_hour": slope_mib_per_hour(ts, wrk),
        "hwm_mib": rows[-1][2] / 1024 if rows else 0,
        "ok": ok,
        "errors": {k: dict(v) for k, v in stats.errors.items()},
        "late": lates,
        "rate_per_s": {k: ok[k] / wall for k in kinds},
        "latency_ms": {k: {"p50": pct(stats.lat[k], 50) * 1e3, "p99": pct(stats.lat[k], 99) * 1e3}
                       for k in kinds},
    }
    summary["flat"] = abs(summary["rss_slope_mib_per_hour"]) < args.flat_slope
    with open(os.path.join(out, "soak.json"), "w") as f:
        json.dump(summary, f, indent=1)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
        mins = [r[0] / 60 for r in rows]
        ax.plot(mins, [r[1] / 1024 for r in rows], label="server VmRSS")
        ax.plot(mins, [e[1] / 1024 for e in extra], label="server RssAnon (heap)", lw=0.8)
        ax.plot(mins, [r[4] / 1024 for r in rows], label="decode workers, VmRSS summed")
        ax.axvspan(0, args.warmup / 60, color="0.9", label="warm-up (left out)")
        ax.set_xlabel("minutes")
        ax.set_ylabel("MiB")
        ax.set_ylim(bottom=0)
        total = sum(ok.values())
        ax.set_title(f"safeguard serve, {args.hashes:,} PDQ hashes, mixed load "
                     f"({total:,} requests in {wall / 60:.0f} min); "
                     f"slope {summary['rss_slope_mib_per_hour']:+.1f} MiB/h", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "soak.png"))
    except ImportError:
        print("matplotlib missing: no plot (scripts/soak.sh installs it)", flush=True)

    print("result: " + json.dumps(summary), flush=True)
    print(f"requests ok: {ok}; errors: {summary['errors']}", flush=True)
    print(f"server RSS after {args.warmup:.0f} s warm-up: min {summary['rss_mib_after_warmup']['min']:.1f} "
          f"MiB, max {summary['rss_mib_after_warmup']['max']:.1f} MiB, slope "
          f"{summary['rss_slope_mib_per_hour']:+.2f} MiB/hour "
          f"({'flat' if summary['flat'] else 'NOT flat'})", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    total_err = sum(sum(v.values()) for v in stats.errors.values())
    good = alive and all(ok[k] > 0 for k in kinds) and total_err <= 0.01 * max(1, sum(ok.values()))
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
