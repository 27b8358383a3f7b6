"""Outbound HTTP of the messenger connectors: one JSON POST to a vendor API, its failures
sorted into "try again later" and "refused for good" (MessengerError.unavailable)."""
from __future__ import annotations

from urllib.parse import urlsplit

import requests

from crmhub.plugins.api import MessengerError


def post_json(api: requests.Session, url: str, body: dict, timeout: float, vendor: str,
              headers: dict | None = None) -> tuple[int, dict | None, str]:
    """(status, decoded JSON body or None, raw text). A network failure is an unavailable
    MessengerError; the caller judges the answer."""
    try:
        response = api.post(url, json=body, headers=headers or {}, timeout=timeout,
                            allow_redirects=False)
    except requests.Timeout as exc:
        raise MessengerError(f"{vendor} is not reachable: no answer within {timeout:g} s",
                             unavailable=True, details=str(exc)) from None
    except requests.ConnectionError as exc:
        raise MessengerError(f"{vendor} is not reachable: cannot connect to "
                             f"{urlsplit(url).netloc}", unavailable=True, details=str(exc)) from None
    except requests.RequestException as exc:
        raise MessengerError(f"{vendor} request failed: {exc}", unavailable=True,
                             details=str(exc)) from None
    try:
        decoded = response.json()
    except ValueError:
        decoded = None
    return response.status_code, decoded if isinstance(decoded, dict) else None, response.text[:500]


def retry_later(status: int) -> bool:
    """Statuses that say "not now" rather than "never": rate limits and server trouble."""
    return status == 429 or status >= 500
