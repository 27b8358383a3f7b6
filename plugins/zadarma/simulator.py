"""Zadarma as seen from crmhub: complete, correctly signed notifications for whole calls, in the
order Zadarma sends them. Used by ``crmhub simulate pbx --provider zadarma``, the benchmarks,
the tests and integrators checking their setup; ``FakeZadarmaApi`` (re-exported here) stands
in for the REST API.

Each scenario returns a list of ``Notification`` tuples ``(method, path, body, headers)``;
``post_all`` sends them to a running gateway and ``Notification.request`` turns one into a
``WebhookRequest`` for a ConnectorHost. Names follow the Mango simulator (``build``,
``post_all``, ``SCENARIOS``), so one command drives both.

Field names, signed strings and their order follow the official SDK (see ``connector``); how
Zadarma reports a transfer (one NOTIFY_INTERNAL and NOTIFY_ANSWER per extension, then one
NOTIFY_END naming the last) is an assumption.
"""
from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from typing import Callable, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import requests

from crmhub.plugins.api import WebhookRequest, make_request
from crmhub.plugins.zadarma.fake_api import FakeZadarmaApi
from crmhub.plugins.zadarma.signing import SIGNED_FIELDS, sign, signed_string

__all__ = ["FakeZadarmaApi", "Notification", "SCENARIOS", "answered_incoming", "build",
           "echo_check", "missed_incoming", "notification", "outgoing", "post_all", "recording",
           "transfer"]

HOOK_PATH = "/hooks/zadarma"
ZADARMA_ADDRESS = "185.45.152.42"  # the notifying address Zadarma's documentation allow-lists
URLENCODED = "application/x-www-form-urlencoded"
CLIENT = "79161234567"
LINE = "74951234567"
_record_counter = itertools.count(1)
# The Q.931 cause the simulator reports with each disposition (1: unallocated number).
Q931_CODES = {"answered": 16, "busy": 17, "no answer": 19, "cancel": 19}


class Notification(NamedTuple):
    """One HTTP request as Zadarma makes it."""

    method: str
    path: str      # with the query, for the URL check
    body: bytes
    headers: dict[str, str]

    def request(self, remote_addr: str = ZADARMA_ADDRESS) -> WebhookRequest:
        url = urlsplit(self.path)
        return make_request(method=self.method, path=url.path, body=self.body,
                            headers=self.headers, query=parse_qs(url.query, keep_blank_values=True),
                            remote_addr=remote_addr)


def notification(event: str, fields: dict[str, str], *, secret: str | None,
                 path: str = HOOK_PATH) -> Notification:
    """A POST of ``event`` with ``fields``, signed with ``secret`` (no Signature header when
    ``secret`` is None). An event without a known signed string signs the empty string: only
    the header's presence can be checked for it."""
    all_fields = {"event": event, **{k: str(v) for k, v in fields.items() if v is not None}}
    headers = {"Content-Type": URLENCODED}
    if secret is not None:
        signed = signed_string(event, all_fields) if event in SIGNED_FIELDS else ""
        headers["Signature"] = sign(secret, signed)
    return Notification("POST", path, urlencode(all_fields).encode(), headers)


def echo_check(token: str = "zd-echo-check", path: str = HOOK_PATH) -> Notification:
    """Zadarma's URL check: ``GET ?zd_echo=<token>``, answered with the bare token."""
    return Notification("GET", f"{path}?{urlencode({'zd_echo': token})}", b"", {})


def call_start(start: dt.datetime | None = None, timezone: str = "Europe/Moscow") -> str:
    """``call_start`` as Zadarma writes it: the account's local time, without an offset. A
    naive ``start`` is taken as already local; the default is now."""
    start = start or dt.datetime.now(dt.timezone.utc)
    if start.tzinfo is not None:
        start = start.astimezone(ZoneInfo(timezone))
    return start.strftime("%Y-%m-%d %H:%M:%S")


def new_call_id(direction: str = "in") -> str:
    """A fresh ``pbx_call_id`` in Zadarma's style (``in_<hex>`` / ``out_<hex>``)."""
    return f"{direction}_{uuid.uuid4().hex}"


def new_recording_id() -> str:
    """A fresh ``call_id_with_rec`` (Zadarma's look like ``<unix time>.<counter>``)."""
    return f"{int(time.time())}.{next(_record_counter)}"


def answered_incoming(*, secret: str, client: str = CLIENT, line: str = LINE,
                      extensions: tuple[str, ...] = ("101",), pbx_call_id: str | None = None,
                      start: dt.datetime | None = None, timezone: str = "Europe/Moscow",
                      duration: int = 42, recorded: bool = True,
                      call_id_with_rec: str | None = None, path: str = HOOK_PATH,
                      ) -> list[Notification]:
    """START → INTERNAL per extension → ANSWER by the last → END answered (→ RECORD)."""
    return _incoming(secret=secret, client=client, line=line, extensions=extensions,
                     pbx_call_id=pbx_call_id, start=start, timezone=timezone, path=path,
                     answered_by=extensions[-1:], duration=duration, disposition="answered",
                     recorded=recorded, call_id_with_rec=call_id_with_rec)


def missed_incoming(*, secret: str, client: str = CLIENT, line: str = LINE,
                    extensions: tuple[str, ...] = ("101", "102"), pbx_call_id: str | None = None,
                    start: dt.datetime | None = None, timezone: str = "Europe/Moscow",
                    disposition: str = "no answer", path: str = HOOK_PATH) -> list[Notification]:
    """START → INTERNAL per extension → END ``disposition`` ("no answer", or "cancel" when the
    caller gave up)."""
    return _incoming(secret=secret, client=client, line=line, extensions=extensions,
                     pbx_call_id=pbx_call_id, start=start, timezone=timezone, path=path,
                     answered_by=(), duration=0, disposition=disposition, recorded=False)


def transfer(*, secret: str, client: str = CLIENT, line: str = LINE,
             extensions: tuple[str, ...] = ("101", "102"), pbx_call_id: str | None = None,
             start: dt.datetime | None = None, timezone: str = "Europe/Moscow",
             duration: int = 95, recorded: bool = True, call_id_with_rec: str | None = None,
             path: str = HOOK_PATH) -> list[Notification]:
    """START → INTERNAL/ANSWER for each extension in turn (the first transfers to the next)
    → END answered by the last (→ RECORD); one ``pbx_call_id`` throughout."""
    return _incoming(secret=secret, client=client, line=line, extensions=extensions,
                     pbx_call_id=pbx_call_id, start=start, timezone=timezone, path=path,
                     answered_by=extensions, duration=duration, disposition="answered",
                     recorded=recorded, call_id_with_rec=call_id_with_rec)


def outgoing(*, secret: str, client: str = CLIENT, line: str = LINE, extension: str = "101",
             pbx_call_id: str | None = None, start: dt.datetime | None = None,
             timezone: str = "Europe/Moscow", duration: int = 65, disposition: str = "answered",
             recorded: bool = False, call_id_with_rec: str | None = None,
             path: str = HOOK_PATH) -> list[Notification]:
    """OUT_START → OUT_END ``disposition`` (→ RECORD); ``line`` is the caller_id Zadarma
    reports for the extension."""
    call_id = pbx_call_id or new_call_id("out")
    common = {"call_start": call_start(start, timezone), "pbx_call_id": call_id,
              "internal": extension, "destination": client}
    answered = disposition == "answered"
    rec = (call_id_with_rec or new_recording_id()) if recorded and answered else None
    sent = [notification("NOTIFY_OUT_START", common, secret=secret, path=path),
            notification("NOTIFY_OUT_END", {**common, "caller_id": line,
                                            "duration": duration if answered else 0,
                                            "disposition": disposition,
                                            "status_code": Q931_CODES.get(disposition, 1),
                                            "is_recorded": int(bool(rec)),
                                            "call_id_with_rec": rec or ""},
                         secret=secret, path=path)]
    return sent + (recording(secret=secret, pbx_call_id=call_id, call_id_with_rec=rec, path=path)
                   if rec else [])


def recording(*, secret: str, pbx_call_id: str | None = None, call_id_with_rec: str | None = None,
              path: str = HOOK_PATH) -> list[Notification]:
    """NOTIFY_RECORD alone: a recording of the call is ready."""
    return [notification("NOTIFY_RECORD", {"call_id_with_rec": call_id_with_rec or new_recording_id(),
                                           "pbx_call_id": pbx_call_id or new_call_id()},
                         secret=secret, path=path)]


SCENARIOS: dict[str, Callable[..., list[Notification]]] = {
    "answered": answered_incoming, "missed": missed_incoming, "outgoing": outgoing,
    "transfer": transfer, "recording": recording}


def build(scenario: str, **params) -> list[Notification]:
    """The notifications of a scenario by name (a key of ``SCENARIOS``)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown Zadarma scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario](**params)


def post_all(notifications: list[Notification], hub_url: str,
             session: requests.Session | None = None, timeout: float = 5) -> list[int]:
    """Send the notifications to a hub one after the other; returns the HTTP statuses."""
    http = session or requests.Session()
    return [http.request(n.method, hub_url.rstrip("/") + n.path, data=n.body or None,
                         headers=n.headers, timeout=timeout).status_code for n in notifications]


def _incoming(*, secret, client, line, extensions, pbx_call_id, start, timezone, path,
              answered_by, duration, disposition, recorded, call_id_with_rec=None):
    """An incoming call: every extension rings in turn; those in ``answered_by`` answer."""
    call_id = pbx_call_id or new_call_id("in")
    common = {"call_start": call_start(start, timezone), "pbx_call_id": call_id,
              "caller_id": client, "called_did": line}
    sent = [notification("NOTIFY_START", common, secret=secret, path=path)]
    for extension in extensions:
        sent.append(notification("NOTIFY_INTERNAL", {**common, "internal": extension},
                                 secret=secret, path=path))
        if extension in answered_by:
            sent.append(notification("NOTIFY_ANSWER", {
                "caller_id": client, "destination": extension, "call_start": common["call_start"],
                "pbx_call_id": call_id, "internal": extension}, secret=secret, path=path))
    rec = (call_id_with_rec or new_recording_id()) if recorded and answered_by else None
    sent.append(notification("NOTIFY_END", {
        **common, "internal": extensions[-1] if extensions else None,
        "duration": duration if answered_by else 0, "disposition": disposition,
        "status_code": Q931_CODES.get(disposition, 1), "is_recorded": int(bool(rec)),
        "call_id_with_rec": rec or ""}, secret=secret, path=path))
    if rec:
        sent += recording(secret=secret, pbx_call_id=call_id, call_id_with_rec=rec, path=path)
    return sent
