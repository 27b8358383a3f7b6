"""Zadarma's two signatures, shared by the connector, the simulator and the fake API server.

Both are ``base64(hex(HMAC-SHA1(api_secret, string)))``: PHP's ``hash_hmac`` returns hex text,
and Zadarma base64-encodes that text, not the raw digest (PROTOCOLS.md §1.2; the official PHP
SDK zadarma/user-api-v1, lib/Client.php and lib/Webhook/*.php).

* A webhook signs a few of its fields, concatenated in an order that depends on the event.
* A REST call signs ``method_path + query + md5_hex(query)``, where ``query`` is the request's
  parameters sorted by name and encoded like PHP's ``http_build_query`` (RFC 1738).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

# The fields each webhook event signs, in order. NOTIFY_IVR is a NOTIFY_START with extras.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_IVR": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}


def sign(secret: str, text: str) -> str:
    """``base64(hex(HMAC-SHA1(secret, text)))``, the form both signatures take."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def signed_string(event: str, fields: dict[str, str | None]) -> str:
    """What a webhook of ``event`` signs. A missing field counts as empty, as in PHP, so a
    request lacking a field is still authenticated before it is refused as incomplete."""
    return "".join(fields.get(name) or "" for name in SIGNED_FIELDS[event])


def webhook_signature(secret: str, event: str, fields: dict[str, str | None]) -> str:
    """The ``Signature`` header Zadarma sends with a webhook of ``event``."""
    return sign(secret, signed_string(event, fields))


def php_query(params: dict[str, str]) -> str:
    """``http_build_query(ksort($params))`` with RFC 1738 encoding: sorted by name, spaces as
    ``+``, everything but letters, digits and ``-_.`` percent-encoded (Python keeps ``~``)."""
    def encode(value) -> str:
        return quote_plus(str(value), safe="").replace("~", "%7E")

    return "&".join(f"{encode(key)}={encode(params[key])}" for key in sorted(params))


def rest_signature(secret: str, method_path: str, query: str) -> str:
    """The signature part of a REST call's ``Authorization: <api_key>:<signature>``;
    ``method_path`` is the path from the API version on (``/v1/request/callback/``)."""
    return sign(secret, method_path + query + hashlib.md5(query.encode()).hexdigest())


def authorization(api_key: str, secret: str, method_path: str, query: str) -> str:
    return f"{api_key}:{rest_signature(secret, method_path, query)}"
