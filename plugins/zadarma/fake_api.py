"""A stand-in for Zadarma's REST API, for tests, benchmarks and demos: a small threaded HTTP
server on 127.0.0.1 (a free port) that checks the ``Authorization`` signature like Zadarma and
speaks the two methods the connector uses:

* ``/v1/request/callback/`` (click-to-call): recorded with its arrival ``time.monotonic()``,
  so a benchmark can measure how long a click takes to reach the PBX;
* ``/v1/pbx/record/request/``: a link to ``/files/<id>.mp3`` on the server itself, which
  serves a few KB as ``audio/mpeg``.

It can be told to refuse every call (``refuse``) or to be down (``down = True``: connections
are dropped without an answer, which clients see as a connection error).

    with FakeZadarmaApi() as fake:
        connector = ZadarmaConnector(fake.settings())
        connector.place_call(requests.Session(), CallRequest("c1", "101", "+79161234567"))
        assert fake.callbacks[0].params["to"] == "79161234567"
"""
from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from crmhub.plugins.zadarma.signing import authorization, php_query
from crmhub.testing import LocalHttpServer, VendorApiHandler

CALLBACK = "/v1/request/callback/"
RECORD_REQUEST = "/v1/pbx/record/request/"
FILES = "/files/"
# An ID3 tag, then silent MPEG frames: enough for a player or a content sniffer.
_FRAME = b"\xff\xfb\x90\x64" + bytes(413)
RECORDING = b"ID3\x03\x00\x00\x00\x00\x00\x00" + _FRAME * 10


@dataclass(frozen=True)
class ApiCall:
    """One request to the API, as it arrived."""

    path: str
    params: dict[str, str]
    authorized: bool
    at: float  # time.monotonic() on arrival


class FakeZadarmaApi:
    def __init__(self, api_key: str = "fake-key", api_secret: str = "fake-secret"):
        self.api_key, self.api_secret = api_key, api_secret
        self.calls: list[ApiCall] = []
        self.refusal: tuple[int, str] | None = None
        self.down = False
        self._server: LocalHttpServer | None = None

    # Life cycle ---------------------------------------------------------------------------
    def start(self) -> FakeZadarmaApi:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = LocalHttpServer(handler).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeZadarmaApi:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # What tests use -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings(self, **extra) -> dict:
        """A ``CONNECTORS.zadarma`` block pointing the connector at this server."""
        return {"api_key": self.api_key, "api_secret": self.api_secret, "api_url": self.url,
                "recording_hosts": ["127.0.0.1"], **extra}

    @property
    def callbacks(self) -> list[ApiCall]:
        """Authorized click-to-call requests, in order of arrival."""
        return [call for call in self.calls if call.path == CALLBACK and call.authorized]

    def refuse(self, message: str, http_status: int = 200) -> None:
        """Answer every API call ``{"status": "error", "message": message}`` from now on
        (Zadarma answers some refusals with HTTP 200, others with a 4xx)."""
        self.refusal = (http_status, message)

    def accept(self) -> None:
        self.refusal = None

    # Answers ------------------------------------------------------------------------------
    def answer(self, path: str, params: dict[str, str], auth: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        if path.startswith(FILES) and path.endswith(".mp3"):
            return 200, "audio/mpeg", RECORDING
        expected = authorization(self.api_key, self.api_secret, path, php_query(params))
        authorized = hmac.compare_digest(auth.encode(), expected.encode())
        self.calls.append(ApiCall(path, params, authorized, time.monotonic()))
        if not authorized:
            return _error(401, "Not authorized")
        if self.refusal:
            return _error(*self.refusal)
        if path == CALLBACK:
            if not (params.get("from") and params.get("to")):
                return _error(400, "from and to are required")
            return _json(200, {"status": "success", "from": params["from"], "to": params["to"],
                               "time": int(time.time())})
        if path == RECORD_REQUEST:
            ref = params.get("call_id") or params.get("pbx_call_id")
            if not ref:
                return _error(400, "call_id or pbx_call_id required")
            return _json(200, {"status": "success", "link": f"{self.url}{FILES}{ref}.mp3",
                               "lifetime_till": time.strftime("%Y-%m-%d %H:%M:%S")})
        return _error(404, f"Method {path} not found")


class _Handler(VendorApiHandler):
    fake: FakeZadarmaApi

    def do_GET(self):  # noqa: N802 - the name http.server calls
        arrived = urlsplit(self.path)
        if self.fake.down:
            self.close_connection = True
            return
        params = {key: values[0] for key, values in
                  parse_qs(arrived.query, keep_blank_values=True).items()}
        status, content_type, body = self.fake.answer(
            arrived.path, params, self.headers.get("Authorization") or "")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet: tests read ``fake.calls`` instead."""


def _json(status: int, answer: dict) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(answer).encode()


def _error(status: int, message: str) -> tuple[int, str, bytes]:
    return _json(status, {"status": "error", "message": message})
