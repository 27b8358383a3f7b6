"""Signed calls to Zadarma's REST API (``https://api.zadarma.com/v1/...``).

Every call is a GET whose query is exactly the string that was signed: the parameters sorted
by name, PHP-encoded, with the ``format=json`` the official SDK always adds (and signs).
Zadarma reports a refusal as ``{"status": "error", "message": ...}``, with HTTP 200 or a 4xx.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import requests

from crmhub.plugins.api import PbxError
from crmhub.plugins.zadarma.signing import authorization, php_query


@dataclass(frozen=True)
class ZadarmaApi:
    base_url: str
    api_key: str
    api_secret: str = field(repr=False)
    timeout: float

    def get(self, session: requests.Session, method_path: str, params: dict[str, str],
            refused: str) -> dict:
        """The JSON answer of a successful call. ``refused`` starts the PbxError message when
        Zadarma says no ("Zadarma refused the call"), so the operator reads what failed."""
        if not (self.api_key and self.api_secret):
            raise PbxError("Zadarma's api_key and api_secret are not configured")
        query = php_query({**params, "format": "json"})
        headers = {"Authorization": authorization(self.api_key, self.api_secret, method_path, query)}
        try:
            response = session.get(f"{self.base_url}{method_path}?{query}", headers=headers,
                                   timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise PbxError(f"Zadarma is not reachable: {exc}", unavailable=True) from None
        except requests.RequestException as exc:
            raise PbxError(f"the request to Zadarma failed: {exc}") from None
        answer = _json(response)
        if response.status_code >= 500:
            raise PbxError(f"Zadarma is not reachable: HTTP {response.status_code}",
                           unavailable=True, details=answer)
        if response.status_code >= 400 or answer.get("status") != "success":
            message = answer.get("message") or (
                f"HTTP {response.status_code}" if response.status_code >= 400
                else f"unexpected answer {response.text[:200]!r}")
            raise PbxError(f"{refused}: {message}", details=answer)
        return answer


def _json(response: requests.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
