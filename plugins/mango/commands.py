"""Commands to Mango's API (``commands/callback``), and what their answers mean.

Mango answers a command it accepted with HTTP 200 and ``{"result": 1000}`` (any 1000-class
code); one it refuses with HTTP 420 and ``{"code": N}``, or with a result of another class
(PROTOCOLS.md §1.1). Every refusal becomes a PbxError whose message an operator can act on.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

from crmhub.plugins.api import PbxError
from crmhub.plugins.mango import codes

MANGO_REFUSAL = 420


def digits(number: str) -> str:
    """A number as Mango wants it: digits only, no ``+``."""
    return re.sub(r"\D", "", number or "")


def send(api: requests.Session, url: str, form: dict[str, str], timeout: float) -> requests.Response:
    try:
        return api.post(url, data=form, timeout=timeout, allow_redirects=False)
    except requests.Timeout as exc:
        raise PbxError(f"Mango Office is not reachable: no answer within {timeout:g} s",
                       unavailable=True, details=str(exc)) from None
    except requests.ConnectionError as exc:
        raise PbxError(f"Mango Office is not reachable: cannot connect to {urlsplit(url).netloc}",
                       unavailable=True, details=str(exc)) from None
    except requests.RequestException as exc:
        raise PbxError(f"Mango Office request failed: {exc}", details=str(exc)) from None


def read_answer(response: requests.Response, refusal: str) -> dict:
    """The decoded answer of an accepted command; PbxError (``refusal: <code meaning>``)
    otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status == MANGO_REFUSAL:
        code = body.get("code") if isinstance(body, dict) else None
        raise PbxError(f"{refusal}: {codes.describe_result(code) or 'no reason given'}", details=body)
    if status >= 500:
        raise PbxError(f"Mango Office is not available: HTTP {status}", unavailable=True,
                       details=response.text[:500])
    if status != 200:
        raise PbxError(f"{refusal}: HTTP {status}", details=response.text[:500])
    if not isinstance(body, dict):
        raise PbxError(f"{refusal}: its answer is not a JSON object", details=response.text[:500])
    result = str(body.get("result", "")).strip()
    if result and not (result.isdigit() and codes.is_success(int(result))):
        raise PbxError(f"{refusal}: {codes.describe_result(result)}", details=body)
    return body

