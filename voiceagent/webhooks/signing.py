"""Signing status webhooks: ``Voiceagent-Signature: t=<unix seconds>,v1=<hex>``.

The signature is HMAC-SHA256 with WEBHOOK_SECRET over ``f"{t}.{body}"`` (the scheme Stripe and
Retell use): the timestamp is signed with the body, so a captured delivery cannot be replayed
later with a fresh time, and a receiver refuses a signature older than its tolerance.  A
receiver in any language needs only HMAC-SHA256 and a constant-time compare; :func:`verify` is
the reference (docs/webhooks.md has a stand-alone copy).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Dict, List, Optional, Union

HEADER = "Voiceagent-Signature"
DELIVERY_HEADER = "Voiceagent-Delivery"
TOLERANCE_SECONDS = 300


def _mac(secret: Union[str, bytes], timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: Union[str, bytes], body: bytes, timestamp: Optional[int] = None) -> str:
    """The header value for ``body`` sent at ``timestamp`` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(secret: Union[str, bytes], body: bytes, header: str, *, tolerance: float = TOLERANCE_SECONDS,
           now: Optional[float] = None) -> bool:
    """True when ``header`` signs ``body`` (the raw bytes received) with ``secret`` within ``tolerance`` s."""
    fields: Dict[str, List[str]] = {}
    for item in header.split(","):
        k, _, v = item.strip().partition("=")
        fields.setdefault(k, []).append(v)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _mac(secret, t, body)
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))
