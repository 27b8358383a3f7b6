"""The incoming-call popup: call events pushed to the browsers of this gateway instance as
Server-Sent Events.

Every gateway instance has its own broadcast queue for the telephony events (see
``GatewayService.on_call_event``), so each reaches its own browsers; a browser connects to one
instance and hears what concerns it there. A stream holds no nameko worker: the request's
worker returns a streaming response at once and eventlet's WSGI server writes it out, one
green thread per open tab (the server allows about a thousand connections per instance).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from crmhub.contracts import events as ev
from crmhub.runtime.metrics import POPUP_STREAMS, POPUPS_DELIVERED

HEARTBEAT_SECONDS = 15.0
QUEUE_LIMIT = 200  # a tab that stopped reading loses popups, it does not hold memory
RETRY_MS = 2000
# Calls a stream remembers having shown, to also pass on how they went (answered, ended).
SHOWN_LIMIT = 500


@dataclass(eq=False)
class PopupStream:
    """One open tab: whose popups it shows."""

    manager: str
    lines: frozenset[str] = frozenset()
    every_line: bool = False
    queue: LightQueue = field(default_factory=lambda: LightQueue(QUEUE_LIMIT))
    shown: dict[str, None] = field(default_factory=dict)  # call ids, oldest first

    def wants_ringing(self, event: dict) -> bool:
        return (self.manager in event["managers"] or self.every_line
                or (event["call"].get("line") or "") in self.lines)

    def remember(self, call_id: str) -> None:
        self.shown[call_id] = None
        if len(self.shown) > SHOWN_LIMIT:
            del self.shown[next(iter(self.shown))]


def sse_frame(event_type: str, payload: dict) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event_type}\nid: {payload.get('event_id', '')}\ndata: {data}\n\n".encode()


class PopupHub:
    """The open popup streams of this gateway instance."""

    def __init__(self, service: str = "gateway"):
        self.streams: set[PopupStream] = set()
        self.service = service

    def publish(self, event_type: str, event: dict) -> int:
        """Queue ``event`` for every stream it concerns; returns how many."""
        call_id = event["call"]["id"]
        frame = None
        delivered = 0
        for stream in list(self.streams):
            if event_type == ev.CALL_RINGING:
                if not stream.wants_ringing(event):
                    continue
                stream.remember(call_id)
            elif call_id not in stream.shown:
                continue
            frame = frame or sse_frame(event_type, event)
            try:
                stream.queue.put_nowait(frame)
                delivered += 1
            except Exception:  # noqa: BLE001 - queue full: that tab stopped reading
                pass
        if event_type == ev.CALL_RINGING and delivered:
            POPUPS_DELIVERED.labels(self.service).inc(delivered)
        return delivered

    def response(self, request, stream: PopupStream) -> Response:
        """The SSE response of ``stream``: a ``ready`` event first (the subscription is live),
        then events as they come, and a comment line every HEARTBEAT_SECONDS that keeps
        proxies from closing an idle stream and tells a closed tab from an open one."""
        # eventlet's WSGI server buffers 4 KiB before writing unless told otherwise.
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        self.streams.add(stream)
        POPUP_STREAMS.labels(self.service).set(len(self.streams))
        body = self._frames(stream)
        return Response(body, content_type="text/event-stream; charset=utf-8", headers={
            "Cache-Control": "no-store", "X-Accel-Buffering": "no"}, direct_passthrough=True)

    def _frames(self, stream: PopupStream) -> Iterator[bytes]:
        try:
            ready = {"manager": stream.manager, "lines": sorted(stream.lines),
                     "every_line": stream.every_line}
            yield f"retry: {RETRY_MS}\nevent: ready\ndata: {json.dumps(ready)}\n\n".encode()
            while True:
                try:
                    yield stream.queue.get(timeout=HEARTBEAT_SECONDS)
                except Empty:
                    yield b": keep-alive\n\n"
        finally:  # the tab closed: the server stopped iterating
            self.streams.discard(stream)
            POPUP_STREAMS.labels(self.service).set(len(self.streams))


class Popups(DependencyProvider):
    def setup(self):
        self.hub = PopupHub(self.container.service_name)

    def get_dependency(self, worker_ctx):
        return self.hub
