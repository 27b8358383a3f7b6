"""API keys (``Authorization: Bearer <key>``) and role checks."""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from crmhub.contracts.auth import allowed
from crmhub.contracts.errors import PermissionDenied, Unauthenticated

SESSION_COOKIE = "crmhub_key"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def presented_key(request, allow_cookie: bool = False) -> str | None:
    header = request.headers.get("Authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_cookie:
        return request.cookies.get(SESSION_COOKIE)
    return None


def authenticate(keys: dict[str, dict], key: str | None) -> Principal:
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
    for known, entry in keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            return Principal(entry["name"], entry["role"])
    raise Unauthenticated("unknown API key")


def require(principal: Principal, permission: str) -> None:
    if not allowed(principal.role, permission):
        raise PermissionDenied(f"role {principal.role} may not {permission}")
