"""Mango Office as seen by a hub: complete, correctly signed webhooks for typical calls, in the
order Mango sends them. For ``crmhub simulate pbx --provider mango``, benchmarks, tests, and
integrators who want to try a hub without a Mango account.

Each scenario returns a list of :class:`Webhook` (a ``(path, fields)`` pair below
``/hooks/mango``, with ``body``, ``headers``, ``url(hub)`` and ``request()`` ready to send)::

    for hook in simulator.answered_incoming(client="79161234567", extension="101"):
        requests.post(hook.url("http://localhost:8000"), data=hook.body, headers=hook.headers)

The payloads follow PROTOCOLS.md §1.1 and the shapes of Mango's documentation and of a real
post (``to.number`` of an employee is a SIP URI, ids are base64 text, ``seq`` counts per leg).
"""
from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from typing import NamedTuple
from urllib.parse import urlencode

from crmhub.plugins.api import WebhookRequest, make_request
from crmhub.plugins.host import HOOK_PREFIX
from crmhub.plugins.mango.signing import signed_form

SIM_API_KEY = "sim-vpbx-api-key"
SIM_API_SALT = "sim-vpbx-api-salt"
CLIENT = "79161234567"
LINE = "74951234567"
HOOK_PATH = f"{HOOK_PREFIX}/mango"
FORM = "application/x-www-form-urlencoded"
SENDER_ADDR = "192.0.2.10"  # a documentation address: simulated posts come from nowhere real


class Webhook(NamedTuple):
    """One post of Mango to the hub: ``path`` below ``/hooks/mango`` and its form fields."""

    path: str
    fields: dict[str, str]

    @property
    def body(self) -> bytes:
        return urlencode(self.fields).encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": FORM}

    @property
    def payload_text(self) -> str:
        return self.fields.get("json", "")

    def url(self, hub_url: str) -> str:
        return hub_url.rstrip("/") + HOOK_PATH + self.path

    def request(self) -> WebhookRequest:
        """As the gateway hands it to a ConnectorHost."""
        return make_request(path=HOOK_PATH + self.path, body=self.body, headers=self.headers,
                            remote_addr=SENDER_ADDR)


def webhook(path: str, payload: dict | str, api_key: str = SIM_API_KEY,
            api_salt: str = SIM_API_SALT) -> Webhook:
    """A signed post of ``payload`` (a dict, or JSON text sent as it is) to ``path``."""
    return Webhook(path, signed_form(api_key, api_salt, payload))


def new_entry_id() -> str:
    """A fresh call id in Mango's style (base64 text)."""
    return base64.b64encode(secrets.token_bytes(18)).decode()


def employee(extension: str, line: str | None = None) -> dict:
    """An employee's side of a leg: the extension and its SIP address."""
    side = {"extension": extension, "number": f"sip:{extension}@sim.mangosip.ru"}
    return {**side, "line_number": line} if line else side


def colleague_of(extension: str) -> str:
    """Another extension for a transfer: the next number, or 102."""
    return str(int(extension) + 1) if extension.isdigit() else "102"


def _some(extensions: tuple[str, ...]) -> tuple[str, ...]:
    if not extensions:
        raise ValueError("name at least one extension")
    return tuple(extensions)


def epoch(start: dt.datetime | float | None) -> int:
    if start is None:
        return int(time.time())
    return int(start.timestamp() if isinstance(start, dt.datetime) else start)


class CallScript:
    """The webhooks of one call (one ``entry_id``), written in order: a clock that moves on,
    Mango's ``seq`` counted per leg, everything signed."""

    def __init__(self, entry_id: str | None = None, start: dt.datetime | float | None = None,
                 api_key: str = SIM_API_KEY, api_salt: str = SIM_API_SALT,
                 command_id: str | None = None):
        self.entry_id = entry_id or new_entry_id()
        self.started = self.now = epoch(start)
        self.api_key, self.api_salt = api_key, api_salt
        self.command_id = command_id
        self.webhooks: list[Webhook] = []
        self._legs: dict[str, int] = {}
        self._recordings: dict[str, int] = {}

    def post(self, path: str, payload: dict) -> None:
        if self.command_id:
            payload = {**payload, "command_id": self.command_id}
        self.webhooks.append(webhook(path, payload, self.api_key, self.api_salt))

    def wait(self, seconds: int) -> int:
        self.now += seconds
        return self.now

    def new_leg(self, call_id: str | None = None) -> str:
        leg = call_id or f"{self.entry_id}:{len(self._legs) + 1}"
        self._legs.setdefault(leg, 0)
        return leg

    def call(self, leg: str, state: str, caller: dict, callee: dict, *,
             location: str = "abonent", reason: int | None = None) -> None:
        self._legs[leg] += 1
        payload = {"entry_id": self.entry_id, "call_id": leg, "timestamp": self.now,
                   "seq": self._legs[leg], "call_state": state, "location": location,
                   "from": caller, "to": callee}
        if reason is not None:
            payload["disconnect_reason"] = reason
        self.post("/events/call", payload)

    def summary(self, direction: int, caller: dict, callee: dict, line: str | None, *,
                answered_at: int = 0, reason: int = 1100) -> None:
        callee = {k: v for k, v in callee.items() if k != "line_number"}
        self.post("/events/summary", {
            "entry_id": self.entry_id, "call_direction": direction, "from": caller,
            "to": callee, "line_number": line, "create_time": self.started,
            "forward_time": self.started + 1 if answered_at else 0, "talk_time": answered_at,
            "end_time": self.now, "entry_result": 1 if answered_at else 0,
            "disconnect_reason": reason})

    def recording(self, leg: str, extension: str, state: str, *, recording_id: str,
                  completion_code: int = 1000) -> None:
        # A recording's seq counts its own events, apart from its leg's.
        self._recordings[recording_id] = self._recordings.get(recording_id, 0) + 1
        payload = {"recording_id": recording_id, "recording_state": state,
                   "seq": self._recordings[recording_id], "entry_id": self.entry_id, "call_id": leg,
                   "extension": extension, "timestamp": self.now}
        if state == "Completed":
            payload.update(completion_code=completion_code, recipient="Cloud")
        self.post("/events/recording", payload)

    def result(self, kind: str, result: int) -> None:
        self.webhooks.append(webhook(f"/result/{kind}", {
            "command_id": self.command_id, "result": result}, self.api_key, self.api_salt))


def answered_incoming(*, client: str = CLIENT, line: str = LINE, extension: str = "101",
                      entry_id: str | None = None, start: dt.datetime | float | None = None,
                      api_key: str = SIM_API_KEY, api_salt: str = SIM_API_SALT,
                      recorded: bool = True) -> list[Webhook]:
    """A client calls our line, passes the IVR, ``extension`` answers, the client hangs up.
    Signals: ringing (IVR), ringing, answered, leg_ended ×2, finished, recording."""
    script = CallScript(entry_id, start, api_key, api_salt)
    caller, at_line = {"number": client}, {"number": line, "line_number": line}
    ivr, talk = script.new_leg(), script.new_leg()
    script.call(ivr, "Appeared", caller, at_line, location="ivr")
    script.wait(6)
    transferred = {**caller, "taken_from_call_id": ivr}
    script.call(talk, "Appeared", transferred, employee(extension, line))
    answered_at = script.wait(5)
    script.call(talk, "Connected", transferred, employee(extension, line))
    recording_id = f"rec:{script.entry_id}"
    if recorded:
        script.recording(talk, extension, "Started", recording_id=recording_id)
    script.call(ivr, "Disconnected", caller, at_line, location="ivr", reason=1100)
    script.wait(42)
    script.call(talk, "Disconnected", transferred, employee(extension, line), reason=1110)
    script.summary(1, caller, employee(extension), line, answered_at=answered_at, reason=1110)
    if recorded:
        script.recording(talk, extension, "Completed", recording_id=recording_id)
    return script.webhooks


def missed_incoming(*, client: str = CLIENT, line: str = LINE,
                    extensions: tuple[str, ...] = ("101", "102"), entry_id: str | None = None,
                    start: dt.datetime | float | None = None, api_key: str = SIM_API_KEY,
                    api_salt: str = SIM_API_SALT) -> list[Webhook]:
    """``extensions`` ring at once, nobody answers, the client gives up.
    Signals: ringing per extension, leg_ended per extension, finished (missed)."""
    script = CallScript(entry_id, start, api_key, api_salt)
    caller = {"number": client}
    legs = [(script.new_leg(), extension) for extension in _some(extensions)]
    for leg, extension in legs:
        script.call(leg, "Appeared", caller, employee(extension, line))
    script.wait(20)
    for leg, extension in legs:
        script.call(leg, "Disconnected", caller, employee(extension, line), reason=1110)
    script.summary(1, caller, employee(extensions[0]), line, reason=1110)
    return script.webhooks


def outgoing(*, extension: str = "101", client: str = CLIENT, line: str = LINE,
             entry_id: str | None = None, start: dt.datetime | float | None = None,
             command_id: str | None = None, answered: bool = True, api_key: str = SIM_API_KEY,
             api_salt: str = SIM_API_SALT) -> list[Webhook]:
    """``extension`` calls ``client`` by ``line``; with ``command_id``, as Mango runs our
    click-to-call (its result first, then events carrying the id). Unanswered, the client is
    busy. Signals: ringing, [answered,] leg_ended, finished."""
    script = CallScript(entry_id, start, api_key, api_salt, command_id=command_id)
    if command_id:
        script.result("callback", 1000)
    caller, callee = employee(extension), {"number": client, "line_number": line}
    leg = script.new_leg()
    script.call(leg, "Appeared", caller, callee)
    answered_at = 0
    if answered:
        answered_at = script.wait(8)
        script.call(leg, "Connected", caller, callee)
    script.wait(60 if answered else 5)
    reason = 1100 if answered else 1121
    script.call(leg, "Disconnected", caller, callee, reason=reason)
    script.summary(2, caller, {"number": client}, line, answered_at=answered_at, reason=reason)
    return script.webhooks


def transfer(*, client: str = CLIENT, line: str = LINE, extensions: tuple[str, ...] = ("101", "102"),
             entry_id: str | None = None, start: dt.datetime | float | None = None,
             api_key: str = SIM_API_KEY, api_salt: str = SIM_API_SALT) -> list[Webhook]:
    """The first extension answers and transfers the client to the second (given one
    extension, to a colleague next to it); one entry_id.
    Signals: ringing, answered, ringing, leg_ended, answered, leg_ended, finished."""
    first, second = (*_some(extensions), colleague_of(extensions[0]))[:2]
    script = CallScript(entry_id, start, api_key, api_salt)
    caller = {"number": client}
    one, two = script.new_leg(), script.new_leg()
    script.call(one, "Appeared", caller, employee(first, line))
    answered_at = script.wait(4)
    script.call(one, "Connected", caller, employee(first, line))
    script.wait(30)
    transferred = {**caller, "taken_from_call_id": one}
    script.call(two, "Appeared", transferred, employee(second, line))
    script.call(one, "Disconnected", caller, employee(first, line), reason=1100)
    script.wait(5)
    script.call(two, "Connected", transferred, employee(second, line))
    script.wait(50)
    script.call(two, "Disconnected", transferred, employee(second, line), reason=1110)
    script.summary(1, caller, employee(second), line, answered_at=answered_at, reason=1110)
    return script.webhooks


def recording(*, entry_id: str | None = None, call_id: str | None = None, extension: str = "101",
              recording_id: str | None = None, completion_code: int = 1000,
              start: dt.datetime | float | None = None, api_key: str = SIM_API_KEY,
              api_salt: str = SIM_API_SALT) -> list[Webhook]:
    """A recording starts and completes (``completion_code`` 1000: saved). Signals: recording
    (none when the code says it was not saved)."""
    script = CallScript(entry_id, start, api_key, api_salt)
    leg = script.new_leg(call_id)
    recording_id = recording_id or f"rec:{script.entry_id}"
    script.recording(leg, extension, "Started", recording_id=recording_id)
    script.wait(35)
    script.recording(leg, extension, "Completed", recording_id=recording_id,
                     completion_code=completion_code)
    return script.webhooks


SCENARIOS = {"answered": answered_incoming, "missed": missed_incoming, "outgoing": outgoing,
             "transfer": transfer, "recording": recording}


def build(scenario: str, **params) -> list[Webhook]:
    """The webhooks of a scenario by name (see ``SCENARIOS``)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"no Mango scenario {scenario!r}; try {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario](**params)


def post_all(webhooks: list[Webhook], hub_url: str, session=None, timeout: float = 5) -> list[int]:
    """Send the webhooks to a hub one after the other; returns the HTTP statuses."""
    import requests

    http = session or requests.Session()
    return [http.post(hook.url(hub_url), data=hook.body, headers=hook.headers,
                      timeout=timeout).status_code for hook in webhooks]
