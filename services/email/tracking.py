"""Tracking links of campaign emails: signed tokens, link rewriting, the open pixel and the
unsubscribe link with its RFC 8058 headers.

A token names what it proves (open, click, unsubscribe), the campaign, the client and, for a
click, the URL, and carries an HMAC of all that under the ``TRACKING_SECRET``: nobody can make
one for another client, campaign or URL, so the click redirect goes only where the email
pointed and the unsubscribe link withdraws only its own client's consent.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

OPEN, CLICK, UNSUBSCRIBE = "o", "c", "u"
KINDS = (OPEN, CLICK, UNSUBSCRIBE)
SEPARATOR = "\x1f"
SIGNATURE_BYTES = 16
DEV_SECRET = "dev-tracking-secret"
# A 1x1 transparent GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Tracked:
    kind: str
    campaign_id: str
    contact_id: str
    url: str | None = None


def tracking_secret(config: dict) -> bytes:
    secret = str(config.get("TRACKING_SECRET") or "")
    if not secret:
        log.warning("TRACKING_SECRET is not set: using the development secret")
        secret = DEV_SECRET
    return secret.encode()


def base_url(config: dict) -> str:
    """Where clients reach the gateway's /t/ routes (a public https URL in production)."""
    configured = str(config.get("TRACKING_BASE_URL") or "").rstrip("/")
    return configured or f"http://{config.get('WEB_SERVER_ADDRESS', '127.0.0.1:8000')}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def sign(secret: bytes, kind: str, campaign_id: str, contact_id: str, url: str | None = None) -> str:
    payload = SEPARATOR.join((kind, campaign_id, contact_id, url or "")).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, payload))}"


def verify(secret: bytes, token: str, kind: str) -> Tracked | None:
    """What a token proves, or None if it is malformed, forged or of another kind."""
    encoded, _, signature = (token or "").partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
        parts = payload.decode().split(SEPARATOR)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _signature(secret, payload)) or len(parts) != 4:
        return None
    token_kind, campaign_id, contact_id, url = parts
    if token_kind != kind or not campaign_id or not contact_id or (kind == CLICK) != bool(url):
        return None
    return Tracked(kind, campaign_id, contact_id, url or None)


# -- decorating an email ---------------------------------------------------------------------

# href="..." / href='...' of an http(s) link inside a tag.
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://.*?)\2""", re.I | re.S)
_BODY_END = re.compile(r"</body\s*>", re.I)


class Links:
    """The tracking URLs of one client's email of one campaign."""

    def __init__(self, secret: bytes, base: str, campaign_id: str, contact_id: str):
        self._secret, self._base = secret, base.rstrip("/")
        self.campaign_id, self.contact_id = campaign_id, contact_id

    def _token(self, kind: str, url: str | None = None) -> str:
        return sign(self._secret, kind, self.campaign_id, self.contact_id, url)

    def click(self, url: str) -> str:
        return f"{self._base}/t/c/{self._token(CLICK, url)}"

    def pixel(self) -> str:
        return f"{self._base}/t/o/{self._token(OPEN)}.gif"

    def unsubscribe(self) -> str:
        return f"{self._base}/t/u/{self._token(UNSUBSCRIBE)}"


def rewrite_links(body: str, links: Links) -> str:
    """Every http(s) link of an HTML body through the click redirect (its URL as the client
    would follow it: entities such as ``&amp;`` decoded)."""

    def replace(match):
        url = html.unescape(match.group(3)).strip()
        return f"{match.group(1)}{match.group(2)}{html.escape(links.click(url))}{match.group(2)}"

    return _HREF.sub(replace, body)


def track(subject: str, text: str, body_html: str | None, links: Links) -> dict:
    """The email as a campaign sends it: links tracked, the open pixel and the unsubscribe
    link added, and the List-Unsubscribe headers (one-click, RFC 8058)."""
    unsubscribe = links.unsubscribe()
    text = f"{text.rstrip()}\n\n--\nUnsubscribe: {unsubscribe}\n"
    if body_html is not None:
        footer = (f'<p style="font-size:12px;color:#777">'
                  f'<a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>'
                  f'<img src="{html.escape(links.pixel())}" width="1" height="1" alt="" '
                  f'style="display:block;border:0">')
        body_html = rewrite_links(body_html, links)
        if _BODY_END.search(body_html):
            body_html = _BODY_END.sub(lambda m: footer + m.group(0), body_html, count=1)
        else:
            body_html += footer
    headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": ONE_CLICK}
    return {"subject": subject, "text": text, "html": body_html, "headers": headers}
