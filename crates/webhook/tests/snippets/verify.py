import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300  # 5 minutes, either way


def verify_signature(secret: str, header: str, body: bytes,
                     tolerance: int = TOLERANCE_SECONDS) -> bool:
    """True if `header` (the Safeguard-Signature value) signs `body`, the raw
    request bytes exactly as received, under `secret` (the whole whsec_... string)."""
    t = None
    signatures = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if t is not None:
                return False
            try:
                t = int(value)
            except ValueError:
                return False
        elif key == "v1":
            signatures.append(value)
    if t is None or not signatures:
        return False
    if abs(time.time() - t) > tolerance:
        return False  # stale or from the future: a replay or a skewed clock
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body,
                        hashlib.sha256).hexdigest()
    # Any v1 may match: during a secret rotation there is one per secret.
    return any(hmac.compare_digest(expected, s) for s in signatures)
