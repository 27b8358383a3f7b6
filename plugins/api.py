"""The connector API, version 1.

A connector is a pure translator: it checks that a webhook really comes from its provider
and turns it into contract events. It does no database or broker IO; the gateway publishes
what it returns, and the services turn the events into card updates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from io import BytesIO
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from werkzeug.datastructures import Headers
from werkzeug.formparser import parse_form_data

if TYPE_CHECKING:
    import threading

    import requests

# 1.1 added PBX connectors (PbxConnector): click-to-call, recordings, long-lived listeners.
# 1.2 added messenger connectors (MessengerConnector): replies to a client's chat.
# 1.3 added Connector.accepted_secrets: a secret's previous value accepted while it rotates.
API_VERSION = "1.3"


@dataclass(frozen=True)
class Route:
    """A webhook route of a connector, below ``/hooks/<connector>``.

    ``path`` is a werkzeug rule ("" for the connector root, "/<form>" for a slug);
    ``handler`` names the connector method that receives ``(request, **path_args)``.
    """

    path: str
    handler: str
    methods: tuple[str, ...] = ("POST",)
    description: str = ""


@dataclass
class WebhookRequest:
    """An incoming webhook exactly as received: raw body bytes, for signatures."""

    method: str
    path: str
    headers: Headers
    query: dict[str, list[str]]
    body: bytes
    remote_addr: str | None = None
    # The full URL, for signature schemes that sign it; a callable is resolved on first use
    # (building the URL costs more than most webhooks need).
    url_source: str | Callable[[], str] = ""
    _form: dict | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        if callable(self.url_source):
            self.url_source = self.url_source()
        return self.url_source

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def form(self) -> dict[str, list[str]]:
        """Fields of an urlencoded or multipart body, each with all its values (files are
        reported by name only)."""
        if self._form is None:
            environ = {
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(self.body)),
                "wsgi.input": BytesIO(self.body),
            }
            try:
                _, form, files = parse_form_data(environ, silent=False)
            except ValueError as exc:
                raise BadPayload(f"malformed {self.content_type} body: {exc}") from None
            parsed = {key: form.getlist(key) for key in form.keys()}
            for key in files.keys():
                parsed.setdefault(key, [f.filename or "" for f in files.getlist(key)])
            self._form = parsed
        return self._form

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadPayload(f"body is not valid JSON: {exc}") from None

    def first(self, source: dict[str, list[str]], key: str) -> str | None:
        values = source.get(key) or []
        return values[0] if values else None


@dataclass
class WebhookResult:
    """What a connector makes of a webhook: events to publish and the answer to give."""

    events: list[tuple[str, dict]] = field(default_factory=list)
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    content_type: str | None = None  # None: JSON for dict/list bodies, text/plain otherwise
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Location for a 303


class WebhookError(Exception):
    """A webhook refused; the gateway answers ``status`` with a JSON error body."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class BadPayload(WebhookError):
    status, code = 400, "bad_payload"


class Unauthorized(WebhookError):
    status, code = 401, "unauthorized"


class Forbidden(WebhookError):
    status, code = 403, "forbidden"


class UnknownTarget(WebhookError):
    status, code = 404, "not_found"


class PayloadTooLarge(WebhookError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(WebhookError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(WebhookError):
    status, code = 429, "too_many_requests"


@dataclass
class Sample:
    """A recorded request for the conformance kit.

    ``expect`` lists the event types the request must produce (empty for a handshake such
    as Tilda's ``test=test``); ``signed`` says whether tampering with it must be refused.
    """

    name: str
    request: WebhookRequest
    expect: list[str]
    signed: bool = True
    route_args: dict = field(default_factory=dict)
    handler: str | None = None


class Connector:
    """Base class of connectors. Subclasses set the class attributes and route handlers.

    ``settings`` is the connector's block of the ``CONNECTORS`` config (secrets included).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    version: ClassVar[str] = "0.0"
    api_version: ClassVar[str] = API_VERSION
    routes: ClassVar[tuple[Route, ...]] = ()

    def __init__(self, settings: dict | None = None):
        self.settings = dict(settings or {})

    def accepted_secrets(self, name: str) -> list[str]:
        """The values of the secret setting ``name`` a webhook may be signed with: the current
        one and, while a rotation is under way, ``previous_<name>`` (so webhooks signed on
        either side of the switch at the provider are accepted). What the hub signs itself
        uses the current one only."""
        values = (self.settings.get(name), self.settings.get(f"previous_{name}"))
        return [str(value) for value in values if value]

    # Conformance kit support -------------------------------------------------------------
    # A module with ``valid(connector)``, ``forged(connector, sample)`` and ``bad(connector)``:
    # the samples below, kept out of the connector's own code (crmhub's connectors do this).
    sample_module: ClassVar[Any] = None

    def conformance_samples(self) -> list[Sample]:
        """Valid, correctly signed requests, as the provider sends them."""
        return self.sample_module.valid(self) if self.sample_module else []

    def forge(self, sample: Sample) -> Sample | None:
        """The same request with a wrong or missing signature (None if unsigned)."""
        return self.sample_module.forged(self, sample) if self.sample_module else None

    def bad_samples(self) -> list[Sample]:
        """Requests that must be refused with a 4xx WebhookError."""
        return self.sample_module.bad(self) if self.sample_module else []


def make_request(method="POST", path="/", body: bytes | str = b"", headers=None, query=None,
                 remote_addr="127.0.0.1", url: str | Callable[[], str] = "") -> WebhookRequest:
    """Build a WebhookRequest (tests, conformance samples, simulators)."""
    if isinstance(body, str):
        body = body.encode()
    return WebhookRequest(method=method, path=path, headers=Headers(headers or {}),
                          query={k: (v if isinstance(v, list) else [v])
                                 for k, v in (query or {}).items()},
                          body=body, remote_addr=remote_addr, url_source=url)


# -- PBX connectors (API 1.1) ------------------------------------------------------------------

class PbxError(Exception):
    """The PBX refused or could not run a command. ``message`` is shown to the operator as it
    is, so it says what went wrong in their words ("extension 101 is not registered");
    ``unavailable`` is True when the PBX could not be reached at all."""

    def __init__(self, message: str, unavailable: bool = False, details=None):
        super().__init__(message)
        self.message = message
        self.unavailable = unavailable
        self.details = details


@dataclass(frozen=True)
class CallRequest:
    """A click-to-call command: ring ``extension``, then connect it to ``number``."""

    command_id: str  # ours; PBXs that echo it (Mango) link their events to the request
    extension: str
    number: str      # the client, E.164 ("+79161234567")
    line: str | None = None  # our number the client should see, if the PBX lets us choose


@dataclass(frozen=True)
class RecordingLocation:
    """How to download a recording. The telephony service makes the request itself, through a
    guard that allows only the connector's recording hosts, refuses private addresses after
    resolution, re-checks every redirect and caps size and time."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None  # a form body, for vendors that want a POST


class PbxConnector(Connector):
    """A connector for a telephone exchange. Besides its webhooks (or instead of them) it may:

    * place calls (``place_call``): click-to-call from a client's card;
    * say where a recording is (``recording_location``);
    * keep a connection to the PBX open (``listen``), for PBXs that push events over a socket
      instead of webhooks (Asterisk AMI). The gateway runs it in its own green thread.

    Settings PBX connectors share: ``api_url`` (the vendor API base URL of a cloud PBX: tests
    and simulators point it at a local server), ``timeout`` (seconds, default 5), and
    ``recording_hosts`` (host names recordings may come from; ``*.`` prefixes allowed) and
    ``allow_private_recording_hosts`` (true: recordings may come from private addresses, for a
    PBX on the office network or a local simulator).
    """

    # Hosts recordings come from when the settings do not say otherwise.
    recording_hosts: ClassVar[tuple[str, ...]] = ()
    # Whether the PBX offers recordings at all (Asterisk keeps them on its own disk).
    supports_recordings: ClassVar[bool] = False
    supports_calls: ClassVar[bool] = False

    @property
    def timeout(self) -> float:
        return float(self.settings.get("timeout") or 5)

    def allowed_recording_hosts(self) -> tuple[str, ...]:
        configured = self.settings.get("recording_hosts")
        return tuple(configured) if configured is not None else type(self).recording_hosts

    def place_call(self, api: requests.Session, request: CallRequest) -> dict:
        """Ask the PBX to connect ``request.extension`` with ``request.number``; returns what
        the PBX answered (kept with the call). Raises PbxError when the PBX refuses or is down.
        ``api`` is a requests session for the vendor API (pass ``timeout=self.timeout``)."""
        raise PbxError(f"{self.title or self.name} cannot place calls")

    def recording_location(self, api: requests.Session, ref: str) -> RecordingLocation:
        """Where the recording ``ref`` (a signal's ``recording_ref``) can be downloaded. May call
        the vendor API first (for a one-time link). Raises PbxError if there is none."""
        raise PbxError(f"{self.title or self.name} offers no recordings")

    def listen(self, emit: Callable[[str, dict], None], stopping: threading.Event) -> None:
        """Run until ``stopping`` is set: hold the connection to the PBX, reconnect with backoff,
        and ``emit(event_type, event)`` every contract event (``emit`` returns once the broker
        has the event). Connectors with webhooks only do not override it."""
        return None

    @classmethod
    def listens(cls) -> bool:
        return cls.listen is not PbxConnector.listen


# -- messenger connectors (API 1.2) ------------------------------------------------------------

class MessengerError(Exception):
    """The messenger did not take an outgoing message. ``unavailable``: it could not be
    reached or answered 5xx/429 (worth retrying); otherwise it refused the message for good
    (a blocked bot, an unknown chat) and ``message`` says why, for the manager."""

    def __init__(self, message: str, unavailable: bool = False, details=None):
        super().__init__(message)
        self.message = message
        self.unavailable = unavailable
        self.details = details


@dataclass(frozen=True)
class OutgoingMessage:
    """A manager's reply: ``text`` to ``chat_id`` through ``account`` (a Telegram bot's name in
    the settings, a WhatsApp phone_number_id)."""

    message_id: str  # ours, for logs and the vendor's idempotency where it has one
    account: str
    chat_id: str
    text: str


class MessengerConnector(Connector):
    """A connector for a messenger: its webhooks give ``message_incoming`` and
    ``message_status`` events; ``send_message`` delivers a reply.

    Settings messenger connectors share: ``api_url`` (the vendor API's base URL: tests and
    simulators point it at a local server), ``timeout`` (seconds, default 10) and
    ``max_attachment_bytes`` (bigger attachments are flagged ``too_large``, default 20 MB).
    """

    DEFAULT_MAX_ATTACHMENT_BYTES: ClassVar[int] = 20 * 2**20

    @property
    def timeout(self) -> float:
        return float(self.settings.get("timeout") or 10)

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.settings.get("max_attachment_bytes") or self.DEFAULT_MAX_ATTACHMENT_BYTES)

    def accounts(self) -> list[str]:
        """The accounts (bots, business numbers) replies can go through."""
        return []

    def send_message(self, api: requests.Session, message: OutgoingMessage) -> str:
        """Deliver ``message``; returns the messenger's id of the sent message. Raises
        MessengerError. ``api`` is a requests session (pass ``timeout=self.timeout``)."""
        raise MessengerError(f"{self.title or self.name} cannot send messages")
