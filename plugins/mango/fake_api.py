"""A fake Mango Office API on 127.0.0.1, for tests, demos and benchmarks: point the connector's
``api_url`` at ``FakeMangoApi.url``.

It speaks the two requests crmhub makes (PROTOCOLS.md §1.1):

* ``commands/callback`` (and any other ``commands/...``): checks the signature, records the
  command with its arrival time, answers ``{"result": 1000}``, or HTTP 420 ``{"code": N}``
  after ``refuse(N)``. Given a ``hub_url``, it then posts the call Mango would report (the
  callback's result, then an answered outgoing call carrying the ``command_id``) to the hub.
* ``queries/recording/post``: answers 302 to ``/files/<recording_id>.mp3`` on itself, which
  serves a few KB of audio/mpeg, as files.mango-office.ru would.

``down = True`` makes it drop every connection unanswered; ``delay`` (seconds) makes it slow.
It runs in a thread (a green thread under eventlet's monkey patching)::

    with FakeMangoApi(hub_url="http://127.0.0.1:8000") as mango:
        connector = MangoConnector(mango.settings())
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote

from crmhub.plugins.mango import simulator
from crmhub.plugins.mango.signing import sign_matches
from crmhub.testing import LocalHttpServer, VendorApiHandler

API_PREFIX = "/vpbx/"
WRONG_PARAMETER = 3102  # a 31xx code: what the fake answers to a bad signature by default
# An ID3 tag and MPEG frame headers padded to ~4 KB: enough to look like an mp3 to a sniffer.
FAKE_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + (b"\xff\xfb\x90\x64" + bytes(412)) * 10


@dataclass
class ReceivedCommand:
    path: str        # below the API root: "commands/callback"
    payload: dict
    json_text: str   # the json field exactly as posted
    arrived: float   # time.monotonic()


class FakeMangoApi:
    def __init__(self, api_key: str = simulator.SIM_API_KEY, api_salt: str = simulator.SIM_API_SALT,
                 *, hub_url: str | None = None, recording: bytes = FAKE_MP3):
        self.api_key, self.api_salt = api_key, api_salt
        self.hub_url = hub_url
        self.recording = recording
        self.commands: list[ReceivedCommand] = []
        self.downloads: list[str] = []             # recording ids whose file was served
        self.posted: list[tuple[str, int]] = []     # webhooks sent to the hub: (path, status)
        self.refusal: int | None = None            # HTTP 420 {"code": refusal}
        self.result = 1000                         # else HTTP 200 {"result": result}
        self.down = False
        self.delay = 0.0
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # Life cycle ----------------------------------------------------------------------------
    def start(self) -> FakeMangoApi:
        self._server = _Server(self).start()
        return self

    def stop(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeMangoApi:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Mango API is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The ``api_url`` setting that points the connector here."""
        return self.origin + API_PREFIX

    def settings(self, **extra) -> dict:
        """A ``CONNECTORS.mango`` block for a connector talking to this fake."""
        return {"api_key": self.api_key, "api_salt": self.api_salt, "api_url": self.url,
                "timeout": 2, "recording_hosts": ["127.0.0.1"], **extra}

    # Behaviour -----------------------------------------------------------------------------
    def refuse(self, code: int = WRONG_PARAMETER) -> None:
        """Answer commands with HTTP 420 ``{"code": code}`` from now on."""
        self.refusal = code

    def accept(self) -> None:
        self.refusal = None

    def wait_for_posts(self, count: int, timeout: float = 5) -> list[tuple[str, int]]:
        """The webhooks posted to the hub once there are ``count`` of them (or the timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.posted) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.posted)

    def signed_by_account(self, fields: dict[str, str]) -> bool:
        return (fields.get("vpbx_api_key") == self.api_key and "json" in fields
                and sign_matches(self.api_key, fields["json"], self.api_salt, fields.get("sign", "")))

    def report_callback(self, command: dict) -> None:
        """Post to the hub what Mango reports after a click-to-call it accepted."""
        webhooks = simulator.outgoing(
            extension=str((command.get("from") or {}).get("extension") or "101"),
            client=str(command.get("to_number") or simulator.CLIENT),
            line=str(command.get("line_number") or simulator.LINE),
            command_id=command.get("command_id"), api_key=self.api_key, api_salt=self.api_salt)
        self._spawn(self._post_to_hub, webhooks)

    def _post_to_hub(self, webhooks: list[simulator.Webhook]) -> None:
        import requests

        with requests.Session() as session:
            for hook in webhooks:
                try:
                    status = session.post(hook.url(self.hub_url), data=hook.body,
                                          headers=hook.headers, timeout=5).status_code
                except requests.RequestException:
                    status = 0
                self.posted.append((hook.path, status))

    def _spawn(self, target, *args, **kwargs) -> None:
        thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        self._threads.append(thread)
        thread.start()


class _Server(LocalHttpServer):
    def __init__(self, fake: FakeMangoApi):
        super().__init__(_Handler)
        self.fake = fake


class _Handler(VendorApiHandler):
    server: _Server

    @property
    def fake(self) -> FakeMangoApi:
        return self.server.fake

    def log_message(self, format, *args) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status: int, body: dict) -> None:
        self.reply(status, json.dumps(body).encode())

    def answering(self) -> bool:
        """False when the fake plays dead: the connection closes with no answer."""
        if self.fake.delay:
            time.sleep(self.fake.delay)
        if self.fake.down:
            self.close_connection = True
            return False
        return True

    def do_POST(self) -> None:
        if not self.answering():
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        fields = {name: values[0] for name, values in form.items()}
        path = self.path.split("?", 1)[0].removeprefix(API_PREFIX)
        if not self.fake.signed_by_account(fields):
            return self.reply_json(420, {"code": WRONG_PARAMETER})
        try:
            payload = json.loads(fields["json"])
        except ValueError:
            return self.reply_json(420, {"code": WRONG_PARAMETER})
        self.fake.commands.append(ReceivedCommand(path, payload, fields["json"], time.monotonic()))
        if path == "queries/recording/post":
            location = f"{self.fake.origin}/files/{quote(str(payload.get('recording_id')), safe='')}.mp3"
            return self.reply(302, headers={"Location": location})
        if not path.startswith("commands/"):
            return self.reply_json(404, {"code": 3300})
        if self.fake.refusal is not None:
            return self.reply_json(420, {"code": self.fake.refusal})
        self.reply_json(200, {"result": self.fake.result})
        if path == "commands/callback" and self.fake.hub_url and self.fake.result == 1000:
            self.fake.report_callback(payload)

    def do_GET(self) -> None:
        if not self.answering():
            return
        name = self.path.split("?", 1)[0]
        if not (name.startswith("/files/") and name.endswith(".mp3")):
            return self.reply(404, b"not found", "text/plain")
        self.fake.downloads.append(unquote(name[len("/files/"):-len(".mp3")]))
        self.reply(200, self.fake.recording, "audio/mpeg")
