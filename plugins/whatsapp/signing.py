"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw
body)>`` (PROTOCOLS.md §5.2). It covers the body bytes exactly as posted."""
from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: str, body: bytes, presented: str) -> bool:
    return hmac.compare_digest(presented.strip().lower().encode(),
                               signature(app_secret, body).encode())
