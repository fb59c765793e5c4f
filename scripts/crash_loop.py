#!/usr/bin/env python3
"""Durability under repeated crashes: SIGKILL `safeguard serve` again and again during mixed
writes over HTTP, and after every restart prove that no acknowledged write was lost and that
the in-memory index agrees with the store.

Run through `scripts/crash-loop.sh [CYCLES]` (it builds the binary); by hand:

    python3 scripts/crash_loop.py --bin target/debug/safeguard --cycles 100

Writers, all over HTTP against the server that is killed:
  * adds:    POST   /v1/banks/ADDS/contents (a random PDQ hash each);
  * removes: DELETE /v1/banks/ADDS/contents/{id} (keeps about MAX_LIVE_ADDS alive);
  * imports: POST   /v1/banks/IMPORTS/import?format=plain&type=md5&complete=true&source=...
             (each list is the previous one with some values dropped and some added, so an
             acknowledged import both adds and withdraws);
  * exchange pages: a second `safeguard serve` (the peer, never killed) holds bank SHARED;
             the killed server follows it as exchange PARTNER (kind `safeguard`, small pages)
             and is told to run it with POST /v1/exchanges/PARTNER/run?wait=true after each
             change at the peer.

  * submissions: POST /v1/content with precomputed PDQ signals, half matching bank SUBMIT
             (kind csam: blocked, grouped into one case per account), with a webhook
             endpoint registered for every event type and a local receiver
             (`safeguard bench receiver`, never killed, verifying every signature).

A write is acknowledged when its 2xx answer was read in full before the kill. After each
restart (and `/status` answering 200, the index loaded):
  * store: every acknowledged add is listed (GET /v1/banks/ADDS/contents) with its hash and
    every acknowledged remove is gone; the IMPORTS bank (GET .../export) holds exactly the
    last acknowledged list, or, when the last import was cut by the kill, exactly the previous
    list or exactly the new one (all or nothing); the PARTNER bank holds exactly the peer's set
    as of the last acknowledged run (when one came after the last change at the peer);
  * index: every value the store holds matches through POST /v1/lookup (the add's own
    content id for PDQ), and every value withdrawn or removed does not.
  * submissions: every acknowledged submission (the most recent ones and a sample of older
    ones each cycle) answers GET /v1/content/{id} with the verdict it was acknowledged with.
An unacknowledged write (cut by the kill) may have landed or not: either is accepted and
the observed outcome becomes the expectation.

After the last cycle the server runs until its webhook backlog is empty and is stopped; then,
from its database: every acknowledged submission is recorded with its verdict, every event
in the outbox was delivered (and the receiver saw its id), and the receiver saw no event id
the outbox does not have. The counts are printed.

Exit status 0 when every cycle passed; the summary is printed as one `result:` line.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

KEY = "crash-loop-admin-key-0123456789abcdef0123456789"
PEER_KEY = "crash-loop-peer-key-0123456789abcdef01234567890"
# Live contents the add/remove writer keeps in ADDS: bounds the per-cycle lookups.
MAX_LIVE_ADDS = 300
# Values in each imported list (33 bytes a line).
IMPORT_LIST_LEN = 3000
# Values the peer bank holds; with PAGE_SIZE 25, a run is about 12 pages.
PEER_ITEMS = 300
PAGE_SIZE = 25
# PDQ hashes in bank SUBMIT; half of the submissions use one of them.
SUBMIT_BANK_ITEMS = 50
# Accounts the submissions cycle over (matching ones group into one case per account).
SUBMIT_ACCOUNTS = 20
# Acknowledged submissions read back per cycle (the most recent half, a sample of the rest).
SUBMISSION_CHECKS = 300
# Removed or withdrawn values looked up per cycle to prove they no longer match (the most
# recent ones plus a random sample of older ones).
WITHDRAWN_CHECKS = 400


class Cut(Exception):
    """The request did not get a complete answer (the server was killed)."""


class Refused(Exception):
    """The connection was refused: the request was never sent (the server is already dead)."""


def request(port, method, path, body=None, key=KEY, timeout=60, content_type="application/json"):
    """One request on a fresh connection; returns (status, body bytes) or raises Cut."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": "Bearer " + key}
        if body is not None:
            if not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data
    except ConnectionRefusedError as e:
        raise Refused(str(e)) from e
    except (OSError, http.client.HTTPException) as e:
        raise Cut(str(e)) from e
    finally:
        conn.close()


class Pool:
    """Keep-alive connections for the read-only checks (many small lookups)."""

    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def get(self, method, path, body=None):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.local.conn = conn
            try:
                headers = {"Authorization": "Bearer " + KEY}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def wait_ready(port, proc, log, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}; see {log}")
        try:
            status, _ = request(port, "GET", "/status", timeout=5)
            if status == 200:
                return time.monotonic() - t0
        except (Cut, Refused):
            pass
        time.sleep(0.02)
    sys.exit(f"server not ready after {timeout} s; see {log}")


def start(binary, data, port, env_extra, config=None):
    env = dict(os.environ)
    env.update(env_extra)
    env.setdefault("SAFEGUARD_LOG", "warn")
    log = os.path.join(data + ".log")
    args = [binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    if config:
        args += ["--config", config]
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    return proc, log


def rand_hex(rng, digits):
    return "".join(rng.choice("0123456789abcdef") for _ in range(digits))


class Model:
    """What the client knows was acknowledged, and what is still in doubt."""

    def __init__(self):
        self.lock = threading.Lock()
        # ADDS: id -> pdq of acknowledged, not (acknowledged) removed contents.
        self.live = {}
        # id -> pdq of acknowledged removes (dicts keep insertion order: oldest first).
        self.removed = {}
        # PDQ values of adds cut by the kill (may or may not exist).
        self.pending_adds = set()
        # ids of removes cut by the kill (may or may not be gone).
        self.pending_removes = {}
        # IMPORTS: the last acknowledged list, and the candidates after a cut import.
        self.imported = set()
        self.import_candidates = None
        self.ever_imported = set()
        # PARTNER: the peer's set at the last acknowledged run, None when in doubt.
        self.partner = set()
        self.ever_shared = set()
        # SUBMIT: the bank's PDQ values; acknowledged submissions id -> verdict (in order),
        # and ids of submissions cut by the kill.
        self.submit_bank = []
        self.submitted = {}
        self.pending_submissions = set()
        self.submission_seq = 0
        self.counts = {k: 0 for k in (
            "adds", "removes", "imports", "exchange_runs", "peer_writes", "submissions",
            "cut_adds", "cut_removes", "cut_imports", "cut_runs", "cut_submissions")}


def adds_writer(port, model, rng, stop):
    while not stop.is_set():
        with model.lock:
            live_ids = list(model.live)
        if len(live_ids) > MAX_LIVE_ADDS or (live_ids and rng.random() < 0.3):
            cid = rng.choice(live_ids)
            with model.lock:
                pdq = model.live[cid]
            try:
                status, body = request(port, "DELETE", f"/v1/banks/ADDS/contents/{cid}")
            except Refused:
                return
            except Cut:
                with model.lock:
                    model.pending_removes[cid] = model.live.pop(cid)
                    model.counts["cut_removes"] += 1
                return
            assert status == 204, (status, body)
            with model.lock:
                del model.live[cid]
                model.removed[cid] = pdq
                model.counts["removes"] += 1
        else:
            pdq = rand_hex(rng, 64)
            try:
                status, body = request(
                    port, "POST", "/v1/banks/ADDS/contents", {"signals": {"pdq": pdq}})
            except Refused:
                return
            except Cut:
                with model.lock:
                    model.pending_adds.add(pdq)
                    model.counts["cut_adds"] += 1
                return
            assert status == 201, (status, body)
            cid = json.loads(body)["id"]
            with model.lock:
                model.live[cid] = pdq
                model.counts["adds"] += 1


def flip_bits(hex64, rng, n):
    bits = int(hex64, 16)
    for b in rng.sample(range(256), n):
        bits ^= 1 << b
    return f"{bits:064x}"


def submissions_writer(port, model, rng, stop):
    while not stop.is_set():
        with model.lock:
            model.submission_seq += 1
            sid = f"s{model.submission_seq}"
        if rng.random() < 0.5:
            pdq = flip_bits(rng.choice(model.submit_bank), rng, rng.randint(0, 8))
            expected = "block"
        else:
            pdq = rand_hex(rng, 64)
            expected = "allow"
        body = {"id": sid, "kind": "image", "account": f"acct-{rng.randrange(SUBMIT_ACCOUNTS)}",
                "signals": {"pdq": pdq}}
        try:
            status, answer = request(port, "POST", "/v1/content", body)
        except Refused:
            return
        except Cut:
            with model.lock:
                model.pending_submissions.add(sid)
                model.counts["cut_submissions"] += 1
            return
        assert status == 200, (status, answer)
        verdict = json.loads(answer)["verdict"]
        assert verdict == expected, (sid, verdict, expected)
        with model.lock:
            model.submitted[sid] = verdict
            model.counts["submissions"] += 1


def import_writer(port, model, rng, stop):
    while not stop.is_set():
        with model.lock:
            old = set(model.imported)
        new = set(old)
        drop = rng.sample(sorted(new), min(len(new), IMPORT_LIST_LEN // 10))
        new.difference_update(drop)
        while len(new) < IMPORT_LIST_LEN:
            new.add(rand_hex(rng, 32))
        body = ("\n".join(sorted(new)) + "\n").encode()
        with model.lock:
            model.ever_imported.update(new)
        try:
            status, answer = request(
                port, "POST",
                "/v1/banks/IMPORTS/import?format=plain&type=md5&complete=true&source=file:crash-loop",
                body, content_type="text/plain")
        except Refused:
            return
        except Cut:
            with model.lock:
                model.import_candidates = (old, new)
                model.counts["cut_imports"] += 1
            return
        assert 200 <= status < 300, (status, answer)
        with model.lock:
            model.imported = new
            model.counts["imports"] += 1
        # An import holds the store's writer lock while it runs: leave the adds room.
        time.sleep(rng.uniform(0, 0.3))


def exchange_writer(port, peer_port, model, peer, rng, stop):
    """Changes the peer's bank (never killed, so every change there is certain), then runs
    the exchange on the killed server."""
    while not stop.is_set():
        # The change at the peer: a few adds and removes.
        with model.lock:
            model.partner = None  # in doubt until a run is acknowledged
        for _ in range(rng.randint(1, 5)):
            md5 = rand_hex(rng, 32)
            status, body = request(peer_port, "POST", "/v1/banks/SHARED/contents",
                                   {"signals": {"md5": md5}}, key=PEER_KEY)
            assert status == 201, (status, body)
            peer[json.loads(body)["id"]] = md5
            model.counts["peer_writes"] += 1
        while len(peer) > PEER_ITEMS:
            cid = rng.choice(list(peer))
            status, body = request(peer_port, "DELETE", f"/v1/banks/SHARED/contents/{cid}",
                                   key=PEER_KEY)
            assert status == 204, (status, body)
            del peer[cid]
            model.counts["peer_writes"] += 1
        with model.lock:
            model.ever_shared.update(peer.values())
        try:
            status, body = request(port, "POST", "/v1/exchanges/PARTNER/run?wait=true")
        except Refused:
            return
        except Cut:
            with model.lock:
                model.counts["cut_runs"] += 1
            return
        if status == 409:  # a scheduled run holds the exchange: try again
            time.sleep(0.05)
            continue
        assert status == 200, (status, body)
        report = json.loads(body)["report"]
        assert report.get("error_code") is None and report.get("caught_up"), report
        with model.lock:
            model.partner = set(peer.values())
            model.counts["exchange_runs"] += 1


def store_contents(pool, bank):
    """id -> pdq of every content the store lists in bank."""
    out, after = {}, None
    while True:
        path = f"/v1/banks/{bank}/contents?limit=1000" + (f"&after={after}" if after else "")
        status, body = pool.get("GET", path)
        assert status == 200, (status, body)
        page = json.loads(body)
        for c in page["contents"]:
            out[c["id"]] = c["signals"].get("pdq")
        after = page["next_after"]
        if after is None:
            return out


def exported(pool, bank):
    status, body = pool.get("GET", f"/v1/banks/{bank}/export?format=plain&only=md5")
    assert status == 200, (status, body)
    return {line.strip() for line in body.decode().splitlines() if line.strip()}


def lookup(pool, signal_type, value, bank):
    status, body = pool.get("POST", "/v1/lookup",
                            {"signal_type": signal_type, "signal": value, "banks": [bank]})
    assert status == 200, (status, body)
    return json.loads(body)["matches"]


def parallel(fn, items, threads=4):
    """Runs fn over items on a few threads; returns the non-None results."""
    items = list(items)
    results, lock = [], threading.Lock()

    def work(chunk):
        for it in chunk:
            r = fn(it)
            if r is not None:
                with lock:
                    results.append(r)

    ts = [threading.Thread(target=work, args=(items[i::threads],)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def verify(port, model, rng):
    """Checks store and index against the model after a restart; resolves the writes in
    doubt by what the store shows. Returns (lost, mismatches) as lists of strings."""
    pool = Pool(port)
    lost, mismatch = [], []
    m = model

    # ---- ADDS: the store.
    stored = store_contents(pool, "ADDS")
    for cid, pdq in list(m.live.items()):
        if stored.get(cid) != pdq:
            lost.append(f"acknowledged add {cid} ({pdq}) missing: store has {stored.get(cid)}")
            del m.live[cid]  # reported once; the store is the truth from here on
    for cid in m.removed:
        if cid in stored:
            lost.append(f"acknowledged remove of {cid} undone: it is listed again")
    for cid, pdq in m.pending_removes.items():
        if cid in stored:
            m.live[cid] = pdq  # the cut remove did not land
        else:
            m.removed[cid] = pdq
    m.pending_removes.clear()
    known = set(m.live) | set(m.removed)
    for cid, pdq in stored.items():
        if cid in known:
            continue
        if pdq in m.pending_adds:
            m.live[cid] = pdq  # a cut add that landed
            m.pending_adds.discard(pdq)
        else:
            mismatch.append(f"store lists content {cid} ({pdq}) that nobody added")
    m.pending_adds.clear()

    # ---- ADDS: the index agrees (stored ones match with their id, removed ones do not).
    def live_ok(item):
        cid, pdq = item
        ids = [x["content_id"] for x in lookup(pool, "pdq", pdq, "ADDS")]
        return None if cid in ids else f"stored content {cid} does not match its own PDQ: {ids}"

    mismatch += parallel(live_ok, stored.items())
    removed = list(m.removed)
    recent, older = removed[-WITHDRAWN_CHECKS // 2:], removed[:-WITHDRAWN_CHECKS // 2]
    sample = recent + rng.sample(older, min(len(older), WITHDRAWN_CHECKS // 2))

    def removed_ok(cid):
        ids = [x["content_id"] for x in lookup(pool, "pdq", m.removed[cid], "ADDS")]
        return f"removed content {cid} still matches" if cid in ids else None

    mismatch += parallel(removed_ok, sample)

    # ---- IMPORTS: all or nothing, and the index.
    held = exported(pool, "IMPORTS")
    if m.import_candidates is not None:
        old, new = m.import_candidates
        if held not in (old, new):
            lost.append(f"cut import left neither the old list nor the new one: "
                        f"{len(held)} values, {len(held - old - new)} foreign, "
                        f"{len(old - held)} of old missing, {len(new - held)} of new missing")
        m.import_candidates = None
    elif held != m.imported:
        lost.append(f"IMPORTS holds {len(held)} values, the acknowledged list "
                    f"{len(m.imported)}: {len(m.imported - held)} missing, "
                    f"{len(held - m.imported)} extra")
    m.imported = held  # reported once; the store is the truth from here on
    withdrawn = sorted(m.ever_imported - held)

    def active_ok(md5):
        return None if lookup(pool, "md5", md5, "IMPORTS") else f"imported {md5} does not match"

    def withdrawn_ok(md5):
        return f"withdrawn {md5} still matches" if lookup(pool, "md5", md5, "IMPORTS") else None

    mismatch += parallel(active_ok, held)
    mismatch += parallel(withdrawn_ok, rng.sample(withdrawn, min(len(withdrawn), WITHDRAWN_CHECKS)))

    # ---- PARTNER (exchange pages).
    shared = exported(pool, "PARTNER")
    if m.partner is not None and shared != m.partner:
        lost.append(f"PARTNER holds {len(shared)} values, the acknowledged run "
                    f"{len(m.partner)}: {len(m.partner - shared)} missing, "
                    f"{len(shared - m.partner)} extra")
        m.partner = shared
    foreign = shared - m.ever_shared
    if foreign:
        mismatch.append(f"PARTNER holds {len(foreign)} values the peer never listed")
    gone = sorted(m.ever_shared - shared)

    def shared_ok(md5):
        return None if lookup(pool, "md5", md5, "PARTNER") else f"exchange value {md5} does not match"

    def gone_ok(md5):
        return f"dropped exchange value {md5} still matches" if lookup(
            pool, "md5", md5, "PARTNER") else None

    mismatch += parallel(shared_ok, shared)
    mismatch += parallel(gone_ok, rng.sample(gone, min(len(gone), WITHDRAWN_CHECKS)))
    # ---- SUBMISSIONS: acknowledged verdicts are recorded; cut ones resolved by the store.
    def submission_ok(sid):
        status, body = pool.get("GET", f"/v1/content/{sid}")
        if status != 200:
            return ("lost", f"acknowledged submission {sid} answers {status}")
        got = json.loads(body)["verdict"]
        if got != m.submitted[sid]:
            return ("lost", f"submission {sid} acknowledged {m.submitted[sid]}, stored {got}")
        return None

    subs = list(m.submitted)
    recent, older = subs[-SUBMISSION_CHECKS // 2:], subs[:-SUBMISSION_CHECKS // 2]
    sub_sample = recent + rng.sample(older, min(len(older), SUBMISSION_CHECKS // 2))
    lost += [msg for _, msg in parallel(submission_ok, sub_sample)]
    for sid in sorted(m.pending_submissions):
        status, body = pool.get("GET", f"/v1/content/{sid}")
        if status == 200:
            m.submitted[sid] = json.loads(body)["verdict"]  # a cut submission that landed
        elif status != 404:
            mismatch.append(f"cut submission {sid} answers {status}")
    m.pending_submissions.clear()

    checked = len(stored) + len(sample) + len(held) + len(shared) + len(sub_sample) + min(
        len(withdrawn), WITHDRAWN_CHECKS) + min(len(gone), WITHDRAWN_CHECKS)
    return lost, mismatch, checked


def inject_loss(port, model):
    """Loses one acknowledged add and one imported value on purpose (see --inject-loss)."""
    cid = next(iter(model.live))
    status, body = request(port, "DELETE", f"/v1/banks/ADDS/contents/{cid}")
    assert status == 204, (status, body)
    keep = sorted(model.imported)[1:]
    body = ("\n".join(keep) + "\n").encode()
    status, body = request(
        port, "POST",
        "/v1/banks/IMPORTS/import?format=plain&type=md5&complete=true&source=file:crash-loop",
        body, content_type="text/plain")
    assert status == 200, (status, body)
    print(f"  injected: removed content {cid}, withdrew one imported value", flush=True)


def ensure_bank(port, name, key=KEY):
    status, body = request(port, "GET", f"/v1/banks/{name}", key=key)
    if status == 404:
        status, body = request(port, "POST", "/v1/banks", {"name": name}, key=key)
        assert status == 201, (status, body)
    else:
        assert status == 200, (status, body)


def backlog(port):
    status, body = request(port, "GET", "/metrics")
    assert status == 200, (status, body)
    for line in body.decode().splitlines():
        if line.startswith("safeguard_webhook_backlog "):
            return int(float(line.split()[1]))
    raise AssertionError("no safeguard_webhook_backlog in /metrics")


def inject_outbox_faults(data):
    """Self-check of the outbox check (see --inject-outbox-faults): behind the checker's back,
    removes one delivered event from the stopped server's database (the receiver then holds an
    id the outbox does not have) and adds one event that was never sent."""
    db = sqlite3.connect(os.path.join(data, "safeguard.db"))
    try:
        seq, eid = db.execute("SELECT seq, id FROM events ORDER BY seq LIMIT 1").fetchone()
        db.execute("DELETE FROM deliveries WHERE event_seq = ?", (seq,))
        db.execute("DELETE FROM events WHERE seq = ?", (seq,))
        db.execute("INSERT INTO events (id, event_type, created_at, body) "
                   "VALUES ('evt_injected_never_sent', 'case.updated', 0, '{}')")
        db.commit()
    finally:
        db.close()
    print(f"  injected: removed event {eid}, added an event that was never sent", flush=True)


def check_outbox(data, model, receiver_port):
    """After the server stopped: the database against the model and the receiver. Returns
    (failures, counts)."""
    failures = []
    db = sqlite3.connect(f"file:{os.path.join(data, 'safeguard.db')}?mode=ro", uri=True)
    try:
        stored = dict(db.execute("SELECT platform_id, verdict FROM submissions"))
        events = {row[0] for row in db.execute("SELECT id FROM events")}
        states = dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
        undelivered_events = db.execute(
            "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM deliveries d "
            "WHERE d.event_seq = e.seq AND d.state = 'delivered')").fetchone()[0]
    finally:
        db.close()
    status, body = request(receiver_port, "GET", "/ids")
    assert status == 200, (status, body)
    received = {line for line in body.decode().splitlines() if line}
    status, body = request(receiver_port, "GET", "/stats")
    assert status == 200, (status, body)
    rstats = json.loads(body)
    missing = [sid for sid, v in model.submitted.items() if stored.get(sid) != v]
    if missing:
        failures.append(f"{len(missing)} acknowledged submissions not stored with their "
                        f"verdict, e.g. {missing[:5]}")
    never = events - received
    if never:
        failures.append(f"{len(never)} events in the outbox never reached the receiver, "
                        f"e.g. {sorted(never)[:5]}")
    if undelivered_events:
        failures.append(f"{undelivered_events} events have no delivered delivery")
    invented = received - events
    if invented:
        failures.append(f"the receiver saw {len(invented)} event ids the outbox does not "
                        f"have, e.g. {sorted(invented)[:5]}")
    if rstats["invalid"]:
        failures.append(f"{rstats['invalid']} deliveries failed signature verification")
    counts = {
        "submissions_stored": len(stored),
        "submissions_acknowledged": len(model.submitted),
        "events": len(events),
        "deliveries": states,
        "received_distinct": len(received),
        "received_total": rstats["valid"],
        "redelivered": rstats["duplicates"],
        "never_delivered": len(never),
        "invented": len(invented),
    }
    return failures, counts


# Failures inside writer threads (an unexpected status): any of them fails the run.
WRITER_ERRORS = []


def guarded(fn):
    def run(*args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - reported and fails the run
            WRITER_ERRORS.append(f"{fn.__name__}: {e!r}")
            print(f"  FAIL writer {fn.__name__}: {e!r}", flush=True)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the safeguard binary")
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--port", type=int, default=5491)
    ap.add_argument("--min-run", type=float, default=0.2, help="shortest write phase, s")
    ap.add_argument("--max-run", type=float, default=2.0, help="longest write phase, s")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument("--inject-loss", type=int, default=0, metavar="CYCLE",
                    help="self-check of the checker: before verifying CYCLE, delete one "
                         "acknowledged add and withdraw one imported value behind the model's "
                         "back; the run must then report 2 lost writes and exit 1")
    ap.add_argument("--inject-outbox-faults", action="store_true",
                    help="self-check of the outbox check: after the last cycle, remove one "
                         "delivered event from the database and add one never sent; the run "
                         "must then report both and exit 1")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="safeguard-crash-loop-")
    port, peer_port = args.port, args.port + 1
    print(f"crash loop: {args.cycles} cycles, seed {seed}, binary {args.bin}, work dir {work}",
          flush=True)

    peer_proc, peer_log = start(args.bin, os.path.join(work, "peer"), peer_port,
                                {"SAFEGUARD_ADMIN_KEY": PEER_KEY})
    wait_ready(peer_port, peer_proc, peer_log)
    ensure_bank(peer_port, "SHARED", key=PEER_KEY)
    config = os.path.join(work, "safeguard.toml")
    with open(config, "w") as f:
        f.write(f"""[[exchanges]]
name = "PARTNER"
kind = "safeguard"
base_url = "http://127.0.0.1:{peer_port}"
remote_bank = "SHARED"
page_size = {PAGE_SIZE}
# Run by hand only (the writer's POST .../run), so no scheduled run changes the bank while
# it is being checked.
enabled = false
""")
    env = {"SAFEGUARD_ADMIN_KEY": KEY, "SAFEGUARD_EXCHANGE_PARTNER_API_KEY": PEER_KEY,
           "SAFEGUARD_WEBHOOK_ALLOW_INTERNAL_HOSTS": "127.0.0.1"}
    receiver_port = args.port + 2
    receiver = None
    outbox_failures, outbox_counts = [], {}
    data = os.path.join(work, "server")
    model, peer = Model(), {}
    failures = []
    total_checked, ready_times = 0, []
    t_start = time.monotonic()
    proc = None
    try:
        proc, log = start(args.bin, data, port, env, config)
        wait_ready(port, proc, log)
        ensure_bank(port, "ADDS")
        ensure_bank(port, "IMPORTS")
        status, body = request(port, "POST", "/v1/banks", {"name": "SUBMIT", "kind": "csam"})
        assert status == 201, (status, body)
        for _ in range(SUBMIT_BANK_ITEMS):
            pdq = rand_hex(rng, 64)
            status, body = request(port, "POST", "/v1/banks/SUBMIT/contents",
                                   {"signals": {"pdq": pdq}})
            assert status == 201, (status, body)
            model.submit_bank.append(pdq)
        status, body = request(port, "POST", "/v1/webhooks", {
            "url": f"http://127.0.0.1:{receiver_port}/hook", "event_types": ["*"]})
        assert status == 201, (status, body)
        secret = json.loads(body)["secret"]
        rlog = open(os.path.join(work, "receiver.log"), "ab")
        receiver = subprocess.Popen(
            [args.bin, "bench", "receiver", "--listen", f"127.0.0.1:{receiver_port}"],
            env=dict(os.environ, SAFEGUARD_WEBHOOK_SECRET=secret), stdout=rlog, stderr=rlog)
        for _ in range(100):
            try:
                if request(receiver_port, "GET", "/stats", timeout=5)[0] == 200:
                    break
            except (Cut, Refused):
                time.sleep(0.05)
        for cycle in range(1, args.cycles + 1):
            stop = threading.Event()
            writers = [
                threading.Thread(target=guarded(adds_writer),
                                 args=(port, model, random.Random(rng.random()), stop)),
                threading.Thread(target=guarded(import_writer),
                                 args=(port, model, random.Random(rng.random()), stop)),
                threading.Thread(target=guarded(submissions_writer),
                                 args=(port, model, random.Random(rng.random()), stop)),
                threading.Thread(target=guarded(exchange_writer),
                                 args=(port, peer_port, model, peer,
                                       random.Random(rng.random()), stop)),
            ]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(args.min_run, args.max_run))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            stop.set()
            for w in writers:
                w.join()
            proc, log = start(args.bin, data, port, env, config)
            ready_times.append(wait_ready(port, proc, log))
            if cycle == args.inject_loss:
                inject_loss(port, model)
            lost, mismatch, checked = verify(port, model, rng)
            total_checked += checked
            c = model.counts
            print(f"cycle {cycle}: live adds {len(model.live)}, imported {len(model.imported)}, "
                  f"acknowledged adds {c['adds']} removes {c['removes']} imports {c['imports']} "
                  f"exchange runs {c['exchange_runs']} submissions {c['submissions']}; cut "
                  f"{c['cut_adds']}/{c['cut_removes']}/{c['cut_imports']}/{c['cut_runs']}/"
                  f"{c['cut_submissions']}; lost {len(lost)}, "
                  f"mismatches {len(mismatch)}", flush=True)
            for line in lost + mismatch:
                print("  FAIL " + line, flush=True)
            if lost or mismatch:
                failures.append((cycle, lost, mismatch))
            if WRITER_ERRORS:
                break
        # Drain the outbox, stop cleanly, and check it against the model and the receiver.
        t0 = time.monotonic()
        while backlog(port) and time.monotonic() - t0 < 300:
            time.sleep(0.2)
        drain_s = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        proc = None
        if args.inject_outbox_faults:
            inject_outbox_faults(data)
        outbox_failures, outbox_counts = check_outbox(data, model, receiver_port)
        outbox_counts["drain_s"] = round(drain_s, 1)
        for line in outbox_failures:
            print("  FAIL " + line, flush=True)
    finally:
        if receiver is not None:
            receiver.send_signal(signal.SIGINT)
            try:
                receiver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                receiver.kill()
        for p in (proc, peer_proc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
    wall = time.monotonic() - t_start
    c = model.counts
    acked = c["adds"] + c["removes"] + c["imports"] + c["exchange_runs"] + c["submissions"]
    lost_n = sum(len(f[1]) for f in failures)
    mism_n = sum(len(f[2]) for f in failures)
    print(f"result: cycles={args.cycles} seed={seed} acknowledged_writes={acked} "
          f"(adds={c['adds']} removes={c['removes']} imports={c['imports']} "
          f"exchange_runs={c['exchange_runs']} submissions={c['submissions']}, "
          f"peer_writes={c['peer_writes']}) "
          f"cut_by_kill={c['cut_adds'] + c['cut_removes'] + c['cut_imports'] + c['cut_runs'] + c['cut_submissions']} "
          f"(adds={c['cut_adds']} removes={c['cut_removes']} imports={c['cut_imports']} "
          f"exchange_runs={c['cut_runs']} submissions={c['cut_submissions']}) lost={lost_n} "
          f"mismatches={mism_n} writer_errors={len(WRITER_ERRORS)} "
          f"lookups_checked={total_checked} "
          f"restart_ready_s_max={max(ready_times, default=0):.2f} wall_s={wall:.0f}")
    print(f"outbox: {json.dumps(outbox_counts, sort_keys=True)} "
          f"failures={len(outbox_failures)}")
    ok = not failures and not WRITER_ERRORS and not outbox_failures and bool(outbox_counts)
    if not args.keep and ok:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
