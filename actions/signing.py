"""Signing the JSON the assistant sends to the clinic's webhooks.

Every POST carries:
    X-Assistant-Timestamp: <unix seconds>
    X-Assistant-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">
    Idempotency-Key:       <the request's id; the same on every retry>

The receiver recomputes the HMAC with the shared secret over the raw body it
got and compares in constant time; the timestamp inside the signed text stops an
old request being replayed later. scripts/webhook_receiver.py uses `verify`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Dict, Mapping, Optional

SIGNATURE_HEADER = "X-Assistant-Signature"
TIMESTAMP_HEADER = "X-Assistant-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# A request older (or newer) than this is refused even with a good signature.
MAX_AGE_SECONDS = 300


def body_of(payload: Dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def signed_headers(secret: str, body: bytes, key: str, now: Optional[float] = None) -> Dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        IDEMPOTENCY_HEADER: key,
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: Optional[float] = None) -> Optional[str]:
    """None when the request is authentic and fresh, else why it is not."""
    # Header names are case-insensitive; normalise whatever mapping we were given.
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or not given:
        return "missing signature or timestamp header"
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        return "timestamp too old or in the future"
    if not hmac.compare_digest(given, signature(secret, timestamp, body)):
        return "signature does not match"
    return None
