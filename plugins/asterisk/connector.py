"""Asterisk over AMI (PROTOCOLS.md §1.8): a listener instead of webhooks, and click-to-call.

Asterisk pushes nothing over HTTP: the connector holds a manager session open (``listen``),
folds the events into ``call_signal`` events (see :mod:`.tracker`), and places calls with a
short session of its own (``Action: Originate``). Recordings stay on the PBX's disk
(MixMonitor), so there are none to offer. Its only route, ``GET /hooks/asterisk/status``, tells
whether the listener is connected.

manager.conf needs a user with ``read = call,dialplan,cdr`` (dialplan: VarSet, which links a
click-to-call to its command) and ``write = originate``; ``timestampevents = yes`` gives events
the PBX's own time. Cdr events come from cdr_manager.conf ``enabled = yes``.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
import time
import zoneinfo
from typing import TYPE_CHECKING, Callable

import structlog

from crmhub.plugins.api import (
    CallRequest,
    PbxConnector,
    PbxError,
    Route,
    Sample,
    WebhookRequest,
    WebhookResult,
    make_request,
)
from crmhub.plugins.asterisk.ami import AmiProtocolError, format_action
from crmhub.plugins.asterisk.client import AmiConnection, AmiError, AmiLoginFailed, Backoff
from crmhub.plugins.asterisk.tracker import COMMAND_VARIABLE, CallTracker
from crmhub.plugins.host import HOOK_PREFIX

if TYPE_CHECKING:
    import requests

log = structlog.get_logger(__name__)

DEFAULT_INBOUND_CONTEXTS = ("from-trunk", "from-pstn", "from-external")
FIRST_RETRY_SECONDS = 0.5
# How often a listener waiting for events looks at ``stopping`` and due Cdr summaries.
POLL_SECONDS = 0.25
# A silent session is probed with a Ping after this long, and dropped if that goes unanswered.
KEEPALIVE_SECONDS = 30.0
# What may go into the channel template: no "/", "&" or "," that would dial something else.
EXTENSION_CHARS = re.compile(r"[A-Za-z0-9_.+*#-]{1,64}")


def _contexts(value) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_INBOUND_CONTEXTS
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(context).strip() for context in value if str(context).strip())


class AsteriskConnector(PbxConnector):
    name = "asterisk"
    title = "Asterisk (AMI)"
    version = "1.0"
    supports_calls = True
    supports_recordings = False
    routes = (Route("/status", "status", methods=("GET",),
                    description="Whether the AMI listener is connected (no webhooks: events "
                                "arrive over the manager connection)"),)

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        s = self.settings
        # Without a host nothing is dialled: an installation without Asterisk keeps the
        # connector loaded (its status page says so) but holds no connection.
        self.configured = bool(s.get("host"))
        self.host: str = s.get("host") or "127.0.0.1"
        self.port: int = int(s.get("port") or 5038)
        self.username: str = str(s.get("username") or "")
        self.secret: str = str(s.get("secret") or "")
        self.timezone: str = s.get("timezone") or "Europe/Moscow"
        self.inbound_contexts = _contexts(s.get("inbound_contexts"))
        self.internal_context: str = s.get("internal_context") or "from-internal"
        self.channel_template: str = s.get("channel_template") or "PJSIP/{extension}"
        self.dial_with_plus: bool = bool(s.get("dial_with_plus", False))
        self.reconnect_max_seconds = float(s.get("reconnect_max_seconds") or 30)
        settle = s.get("cdr_settle_seconds")
        self.cdr_settle_seconds = 1.0 if settle is None else float(settle)
        self._check_config()
        self.connected = False
        self.last_event_at: dt.datetime | None = None

    def _check_config(self) -> None:
        """Mistakes that would otherwise surface only at the first call fail at start-up."""
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"asterisk: unknown timezone {self.timezone!r}") from None
        try:
            self.channel_template.format(extension="101")
        except (KeyError, IndexError, ValueError):
            raise ValueError("asterisk: channel_template may only use {extension}: "
                             f"{self.channel_template!r}") from None

    # -- the status route -------------------------------------------------------------------
    def status(self, request: WebhookRequest) -> WebhookResult:
        last = self.last_event_at.isoformat() if self.last_event_at else None
        return WebhookResult(body={"connected": self.connected, "last_event_at": last})

    # -- listening --------------------------------------------------------------------------
    def listen(self, emit: Callable[[str, dict], None], stopping: threading.Event) -> None:
        """Hold a manager session until ``stopping`` is set, reconnecting with backoff after
        any failure; network, protocol and login errors are logged, never raised."""
        if not self.configured:
            log.info("asterisk: no host in CONNECTORS.asterisk, not listening")
            return
        tracker = CallTracker(self.name, inbound_contexts=self.inbound_contexts,
                              timezone=self.timezone, cdr_settle_seconds=self.cdr_settle_seconds)
        backoff = Backoff(FIRST_RETRY_SECONDS, self.reconnect_max_seconds)
        while not stopping.is_set():
            try:
                self._session(tracker, emit, stopping, backoff)
            except AmiLoginFailed as exc:
                log.warning("asterisk login failed", host=self.host, port=self.port,
                            error=str(exc))
            except (OSError, AmiError, AmiProtocolError) as exc:
                log.warning("asterisk connection lost", host=self.host, port=self.port,
                            error=str(exc) or type(exc).__name__)
            except Exception:  # noqa: BLE001 - a bug must not end the listener for good
                log.exception("asterisk listener failed", host=self.host, port=self.port)
            finally:
                self.connected = False
            if not stopping.is_set():
                stopping.wait(backoff.next())
        self._emit_all(emit, tracker.flush(force=True))

    def _session(self, tracker: CallTracker, emit, stopping: threading.Event,
                 backoff: Backoff) -> None:
        with AmiConnection.open(self.host, self.port, self.timeout) as ami:
            ami.login(self.username, self.secret, events=True)
            backoff.reset()
            self.connected = True
            log.info("asterisk connected", host=self.host, port=self.port)
            heard_at, ping_sent_at = time.monotonic(), None
            while not stopping.is_set():
                message = ami.next_message(POLL_SECONDS)
                now = time.monotonic()
                if message is None:
                    if ping_sent_at is not None and now - ping_sent_at > self.timeout:
                        raise AmiError("no answer to Ping: the connection is dead")
                    if ping_sent_at is None and now - heard_at > KEEPALIVE_SECONDS:
                        ami.send("Ping")
                        ping_sent_at = now
                    self._emit_all(emit, tracker.flush())
                    continue
                heard_at, ping_sent_at = now, None
                if message.event is not None:
                    self.last_event_at = dt.datetime.now(dt.timezone.utc)
                    self._emit_all(emit, tracker.feed(message))

    @staticmethod
    def _emit_all(emit, signals) -> None:
        """Hand the signals to the gateway. A failed emit is logged and the stream goes on:
        AMI has no replay, and stopping to read would lose every later event as well."""
        for event_type, event in signals:
            try:
                emit(event_type, event)
            except Exception as exc:  # noqa: BLE001
                log.error("asterisk signal not emitted", error=str(exc),
                          idempotency_key=event.get("idempotency_key"))

    # -- click-to-call ----------------------------------------------------------------------
    def place_call(self, api: requests.Session | None, request: CallRequest) -> dict:
        """Originate: Asterisk rings ``request.extension``, then dials the number in
        ``internal_context`` as if the extension had dialed it. ``api`` is not used: AMI is
        not HTTP."""
        if not self.configured:
            raise PbxError("Asterisk is not set up: CONNECTORS.asterisk needs its host",
                           unavailable=True)
        fields = self.originate_fields(request)
        try:
            with AmiConnection.open(self.host, self.port, self.timeout) as ami:
                ami.login(self.username, self.secret, events=False)
                reply = ami.request("Originate", fields, action_id=request.command_id)
        except AmiLoginFailed as exc:
            raise PbxError(f"Asterisk is not reachable: {exc}", unavailable=True) from None
        except (OSError, AmiError, AmiProtocolError) as exc:
            reason = str(exc) or type(exc).__name__
            raise PbxError(f"Asterisk is not reachable: {reason}", unavailable=True) from None
        message = reply.get("Message") or ""
        if (reply.response or "").lower() != "success":
            raise PbxError(f"Asterisk refused the call: {message or reply.response}",
                           details={"response": reply.response, "message": message})
        return {"message": message, "action_id": request.command_id}

    def originate_fields(self, request: CallRequest) -> list[tuple[str, str]]:
        extension = (request.extension or "").strip()
        if not EXTENSION_CHARS.fullmatch(extension):
            raise PbxError(f"{request.extension!r} is not an Asterisk extension")
        digits = re.sub(r"\D", "", request.number or "")
        if not digits:
            raise PbxError(f"{request.number!r} is not a phone number")
        plus = "+" if self.dial_with_plus and request.number.strip().startswith("+") else ""
        variables = [f"{COMMAND_VARIABLE}={request.command_id}"]
        line = re.sub(r"[^\d+]", "", request.line or "")
        if line:
            variables.append(f"CRM_LINE={line}")  # for a dialplan that picks the caller id
        fields = [("Channel", self.channel_template.format(extension=extension)),
                  ("Context", self.internal_context), ("Exten", plus + digits),
                  ("Priority", "1"), ("CallerID", f'"CRM" <{extension}>'),
                  ("Timeout", "30000"), ("Async", "true"),
                  *(("Variable", variable) for variable in variables)]
        try:
            format_action("Originate", [*fields, ("ActionID", request.command_id)])
        except ValueError:
            raise PbxError(f"command id {request.command_id!r} cannot be sent to Asterisk") from None
        return fields

    # -- conformance kit --------------------------------------------------------------------
    def conformance_samples(self) -> list[Sample]:
        """The only request Asterisk's connector answers: the status page, which publishes
        nothing and carries no signature (its events come over AMI, see the unit tests)."""
        request = make_request(method="GET", path=f"{HOOK_PREFIX}/{self.name}/status")
        return [Sample("status", request, expect=[], signed=False)]
