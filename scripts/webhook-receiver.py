#!/usr/bin/env python3
"""A local webhook receiver for trying Safeguard out (the README's walkthrough).

    WHSEC=whsec_... python3 scripts/webhook-receiver.py [PORT]

Prints each event it receives and whether its Safeguard-Signature verifies under $WHSEC
(the check is the one in docs/webhooks.md). Answers 200, so deliveries count as done.
Standard library only.
"""
import hashlib
import hmac
import http.server
import json
import os
import sys
import time

TOLERANCE_SECONDS = 300


def verify_signature(secret, header, body, tolerance=TOLERANCE_SECONDS):
    t, signatures = None, []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                t = int(value)
            except ValueError:
                return False
        elif key == "v1":
            signatures.append(value)
    if t is None or not signatures or abs(time.time() - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        secret = os.environ.get("WHSEC", "")
        ok = bool(secret) and verify_signature(
            secret, self.headers.get("Safeguard-Signature", ""), body)
        event = json.loads(body)
        print(f"{event['type']} {event['id']} signature={'valid' if ok else 'INVALID'}")
        print(json.dumps(event["data"], indent=2))
        sys.stdout.flush()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"listening on http://127.0.0.1:{port}/hook", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
