"""The call-events load generator's engine: lanes of pre-encoded HTTP/1.1 requests posted at
their due times over keep-alive connections, one selector loop for all (stdlib only, so a
load process starts fast and a test can load it on its own)."""
from __future__ import annotations

import selectors
import socket
import time


def raw_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A whole HTTP/1.1 POST request, encoded once before the load starts."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{name}: {value}" for name, value in headers.items()),
             f"Content-Length: {len(body)}", "", ""]
    head = "\r\n".join(lines)
    return head.encode("ascii") + body


class LaneLoop:
    """Lanes of pre-encoded HTTP/1.1 requests, each lane one keep-alive connection with at
    most one request in flight; a request whose connection fails, or whose answer is not in
    within ``timeout`` seconds, is sent again once on a new connection (status 0 if that
    fails too)."""

    def __init__(self, host: str, port: int, start_at: float,
                 lanes: list[list[tuple[float, bytes, object]]], timeout: float = 30.0):
        self.address = (host, port)
        self.timeout = timeout  # an answer not complete by then counts as a broken connection
        self.start_at = start_at
        self.lanes = [list(reversed(items)) for items in lanes]  # popped from the end
        self.socks: list[socket.socket | None] = [None] * len(lanes)
        self.inflight: dict[int, list] = {}  # lane -> [due, request, tag, sent, buffer, tries]
        self.selector = selectors.DefaultSelector()
        self.results: list = []
        self.retries = 0

    def run(self) -> list:
        while any(self.lanes) or self.inflight:
            now = time.monotonic() - self.start_at  # on the items' clock
            waits = [items[-1][0] - now for lane, items in enumerate(self.lanes)
                     if items and lane not in self.inflight]
            for lane in [lane for lane, items in enumerate(self.lanes)
                         if items and lane not in self.inflight and items[-1][0] <= now]:
                self._send(lane, *self.lanes[lane].pop(), tries=0)
            timeout = max(0.0, min([w for w in waits if w > 0], default=0.05))
            for key, _ in self.selector.select(timeout if not self.inflight else
                                               min(timeout, 0.05)):
                self._read(key.data)
            overdue = time.monotonic() - self.timeout
            for lane in [lane for lane, state in self.inflight.items() if state[3] < overdue]:
                self._failed(lane, self.inflight.pop(lane))
        for sock in self.socks:
            if sock is not None:
                sock.close()
        return self.results

    def _connect(self, lane: int) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, lane)
        self.socks[lane] = sock
        return sock

    def _drop(self, lane: int) -> None:
        sock, self.socks[lane] = self.socks[lane], None
        if sock is not None:
            self.selector.unregister(sock)
            sock.close()

    def _send(self, lane: int, due: float, request: bytes, tag, tries: int) -> None:
        sent = time.monotonic()
        try:
            (self.socks[lane] or self._connect(lane)).sendall(request)
        except OSError:
            self._failed(lane, [due, request, tag, sent, b"", tries])
            return
        self.inflight[lane] = [due, request, tag, sent, b"", tries]

    def _read(self, lane: int) -> None:
        state = self.inflight.get(lane)
        try:
            chunk = self.socks[lane].recv(65536)
        except OSError:
            chunk = b""
        if state is None:  # the server closed an idle connection
            self._drop(lane)
            return
        if not chunk:
            self.inflight.pop(lane)
            self._failed(lane, state)
            return
        state[4] += chunk
        head, sep, body = state[4].partition(b"\r\n\r\n")
        if not sep:
            return
        lines = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines[1:])}
        if len(body) < int(fields.get("content-length", 0)):
            return
        del self.inflight[lane]
        self.results.append((state[2], state[0], state[3], time.monotonic(),
                             int(lines[0].split()[1])))
        if fields.get("connection", "").lower() == "close":
            self._drop(lane)

    def _failed(self, lane: int, state: list) -> None:
        self._drop(lane)
        due, request, tag, sent, _, tries = state
        if tries == 0:
            self.retries += 1
            self._send(lane, due, request, tag, tries=1)
        else:
            self.results.append((tag, due, sent, time.monotonic(), 0))
