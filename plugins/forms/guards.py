"""Checks a website form post must pass before it is read: rate, signature, origin."""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from crmhub.plugins.api import Forbidden, TooManyRequests, Unauthorized, WebhookRequest

SIGNATURE_HEADER = "X-Crmhub-Signature"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Crmhub-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(request: WebhookRequest, secret: str | None) -> None:
    """Unauthorized unless the raw body carries ``secret``'s signature (when one is set)."""
    if not secret:
        return
    given = request.headers.get(SIGNATURE_HEADER)
    if not given:
        raise Unauthorized(f"this form requires a {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(given.strip().encode(), sign(secret, request.body).encode()):
        raise Unauthorized(f"{SIGNATURE_HEADER} does not match the body")


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased; None for anything else."""
    parts = urlsplit((url or "").strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def allowed_origins(urls: str | list[str]) -> frozenset[str]:
    """The origins of configured URLs; ValueError for one that is not an http(s) URL, so a
    typo cannot silently open a form to every site."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    origins = frozenset(origin_of(url) for url in urls)
    if None in origins or any(not o.startswith(("http://", "https://")) for o in origins):
        raise ValueError(f"allowed_origins must be http(s) URLs, got {list(urls)}")
    return origins


def check_origin(request: WebhookRequest, allowed: frozenset[str]) -> None:
    """Forbidden unless the page posting the form (Origin, else Referer) is ``allowed``;
    a form without allowed origins accepts any."""
    if not allowed:
        return
    origin = origin_of(request.headers.get("Origin")) or origin_of(request.headers.get("Referer"))
    if origin not in allowed:
        raise Forbidden(f"{origin or 'a page of unknown origin'} may not post this form")


class RateLimiter:
    """At most ``per_minute`` accepted requests per client address in any 60 seconds.

    In memory and per process: it stops a bot hammering one form, not a distributed flood.
    """

    WINDOW = 60.0
    MAX_CLIENTS = 10_000  # above this, idle clients are forgotten

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Count one request of ``client``; TooManyRequests when over the limit."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self.WINDOW:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry_after = int(hits[0] + self.WINDOW - now) + 1
                raise TooManyRequests(
                    f"more than {self.per_minute} submissions a minute from {client}; "
                    f"retry in {retry_after} s", {"retry_after": retry_after})
            hits.append(now)
            if len(self._hits) > self.MAX_CLIENTS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, hits in self._hits.items() if hits[-1] <= now - self.WINDOW]:
            del self._hits[client]
