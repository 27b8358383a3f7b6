"""Mango's request signature, the same in both directions (PROTOCOLS.md §1.1).

Every request is a form post of three fields: ``vpbx_api_key``, ``json`` (a JSON *string*) and
``sign = sha256_hex(vpbx_api_key + json + vpbx_api_salt)``. The signature covers the ``json``
text exactly as sent, so a receiver must check it before parsing, and a sender must sign the
very string it sends.
"""
from __future__ import annotations

import hashlib
import hmac
import json


def compact_json(payload: dict) -> str:
    """The JSON text Mango expects: no spaces, Cyrillic kept as it is."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def sign(api_key: str, json_text: str, api_salt: str) -> str:
    return hashlib.sha256(f"{api_key}{json_text}{api_salt}".encode()).hexdigest()


def signed_form(api_key: str, api_salt: str, payload: dict | str) -> dict[str, str]:
    """The three form fields of a request carrying ``payload`` (a dict, or JSON text to send
    as it is)."""
    json_text = payload if isinstance(payload, str) else compact_json(payload)
    return {"vpbx_api_key": api_key, "sign": sign(api_key, json_text, api_salt), "json": json_text}


def sign_matches(api_key: str, json_text: str, api_salt: str, presented: str) -> bool:
    expected = sign(api_key, json_text, api_salt)
    return hmac.compare_digest(presented.strip().lower().encode(), expected.encode())
