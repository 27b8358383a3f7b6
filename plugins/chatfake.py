"""The plumbing the fake messenger APIs share: a local HTTP server whose requests a fake
answers, and a "down" switch that drops connections unanswered, as an outage does."""
from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

from crmhub.testing import LocalHttpServer


class FakeServer(LocalHttpServer):
    def __init__(self, fake):
        super().__init__(FakeHandler)
        self.fake = fake


class FakeHandler(BaseHTTPRequestHandler):
    """Hands ``(method, path, headers, body bytes)`` to ``fake.answer``, which returns
    ``(status, JSON body)``; nothing is answered while ``fake.down`` is set."""

    server: FakeServer
    timeout = 10

    def log_message(self, format, *args) -> None:
        pass

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if fake.delay:
            time.sleep(fake.delay)
        if fake.down:
            fake.dropped += 1
            self.close_connection = True
            return
        status, answer = fake.answer(self.command, self.path, self.headers, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve


class FakeApi:
    """Base of the fakes: ``start()``/``stop()`` or a ``with`` block; ``down``, ``delay``."""

    def __init__(self):
        self.sent: list = []  # what the fake's API accepted, in order
        self.down = False
        self.delay = 0.0
        self.dropped = 0  # requests that met an outage
        self._server: FakeServer | None = None

    def start(self):
        self._server = FakeServer(self).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_for_sent(self, count: int, timeout: float = 10) -> list:
        """What was accepted once there are ``count`` of them (or the timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.sent)

    def answer(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict]:
        raise NotImplementedError
