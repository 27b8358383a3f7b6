"""AMQP plumbing shared by the services and the gateway.

* ``ConfirmingPublisher``: one connection per process and AMQP URI; callers in many
  greenthreads hand it messages, it publishes them in batches and releases each caller when
  the broker has confirmed its message. That keeps the "nothing accepted is lost" promise
  (a webhook is answered only after the broker holds the event) without paying one broker
  round trip per message.
* Messages are nameko-compatible: JSON body, ``nameko.<key>`` headers for the worker context
  (so ``request_id`` reaches the consuming worker), persistent delivery.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

import amqp
import eventlet
import orjson
import structlog
from eventlet.event import Event
from eventlet.queue import LightQueue

from crmhub.contracts.base import new_hex_id
from crmhub.runtime.jsontext import read_json, write_json

log = structlog.get_logger(__name__)

HEADER_PREFIX = "nameko"


def reuse_json_decoder() -> None:
    """Decode JSON messages with orjson where the result is the same: kombu's ``loads``
    builds a standard decoder for every message (a twentieth of a busy consumer's time), and
    orjson reads the text at a fraction of that decoder's cost. Kombu's typed values
    (``__type__``), numbers orjson would round and text it refuses (``NaN``) take the standard
    decoder with kombu's object hook."""
    from kombu.serialization import registry
    from kombu.utils import json as kombu_json

    decoder = json.JSONDecoder(object_hook=kombu_json.object_hook)

    def decode(data):
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        typed = (b'"__type__"' if isinstance(data, bytes) else '"__type__"') in data
        if not typed:
            try:
                return read_json(data)
            except orjson.JSONDecodeError:
                pass  # NaN, Infinity: the standard decoder reads them
        return decoder.decode(data.decode("utf-8") if isinstance(data, bytes) else data)

    registry.register("json", kombu_json.dumps, decode, content_type="application/json",
                      content_encoding="utf-8")


class PublishError(Exception):
    """The broker did not take the message (connection lost, nack, or no queue bound)."""


def event_exchange_name(service: str) -> str:
    return f"{service}.events"


def context_headers(context: dict | None) -> dict:
    """Worker-context data as nameko AMQP headers (what nameko's HeaderEncoder does)."""
    return {f"{HEADER_PREFIX}.{key}": value for key, value in (context or {}).items()
            if value is not None}


def connection_params(amqp_uri: str) -> dict:
    url = urlparse(amqp_uri)
    vhost = unquote(url.path[1:]) if url.path and url.path != "/" else "/"
    return {
        "host": f"{url.hostname or '127.0.0.1'}:{url.port or 5672}",
        "userid": unquote(url.username or "guest"),
        "password": unquote(url.password or "guest"),
        "virtual_host": vhost,
        "heartbeat": 0,
        "connect_timeout": 5,
    }


@dataclass
class OutgoingMessage:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict = field(default_factory=dict)
    mandatory: bool = True
    message_id: str = field(default_factory=new_hex_id)
    done: Event = field(default_factory=Event)


class ConfirmingPublisher:
    """Publishes batches of messages with publisher confirms on one channel."""

    BATCH = 500

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._queue: LightQueue = LightQueue()
        self._thread = None
        self._lock = threading.Lock()
        self._conn = None
        self._channel = None

    # -- caller side -----------------------------------------------------------------------
    def publish_json(self, exchange: str, routing_key: str, payload, context: dict | None = None,
                     mandatory: bool = True, timeout: float = 10.0) -> None:
        self.publish_many([self.message(exchange, routing_key, payload, context, mandatory)],
                          timeout=timeout)

    @staticmethod
    def message(exchange, routing_key, payload, context=None, mandatory=True) -> OutgoingMessage:
        body = payload if isinstance(payload, bytes) else write_json(payload)
        return OutgoingMessage(exchange, routing_key, body, context_headers(context),
                               mandatory=mandatory)

    def publish_many(self, messages: list[OutgoingMessage], timeout: float = 10.0) -> None:
        """Publish and wait for the broker's confirm of every message; raise PublishError
        if any of them was not taken."""
        if not messages:
            return
        self._ensure_running()
        for msg in messages:
            self._queue.put(msg)
        failures = []
        with eventlet.Timeout(timeout, PublishError(f"no broker confirm within {timeout}s")):
            for msg in messages:
                error = msg.done.wait()
                if error:
                    failures.append(error)
        if failures:
            raise PublishError(failures[0])

    # -- publisher greenthread ---------------------------------------------------------------
    def _ensure_running(self):
        with self._lock:
            if self._thread is None or self._thread.dead:
                self._thread = eventlet.spawn(self._run)

    def close(self):
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        self._drop_connection()

    def _run(self):
        backoff = 0.2
        while True:
            first = self._queue.get()
            batch = [first]
            try:
                conn, channel = self._conn_channel()
                while len(batch) < self.BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                self._publish_batch(conn, channel, batch)
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 - every failure goes back to its caller
                log.warning("publish failed", error=repr(exc), batch=len(batch))
                for msg in batch:
                    if not msg.done.ready():
                        msg.done.send(f"broker unavailable: {exc!r}")
                self._drop_connection()
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _conn_channel(self):
        """The open connection and its confirm-mode channel, (re)connecting if needed."""
        if self._conn is None or not self._conn.connected:
            self._drop_connection()
            conn = amqp.Connection(**connection_params(self.amqp_uri))
            conn.connect()
            channel = conn.channel()
            channel.confirm_select()
            self._conn, self._channel = conn, channel
        return self._conn, self._channel

    def _drop_connection(self):
        conn, self._conn = self._conn, None
        release_connection(conn)

    def _publish_batch(self, conn, channel, batch):
        # Delivery tags count per channel from 1; pending maps tag -> message.
        pending: dict[int, OutgoingMessage] = {}
        by_id = {msg.message_id: msg for msg in batch}
        returned: dict[str, str] = {}

        def on_ack(tag, multiple):
            for t in [t for t in pending if (t <= tag if multiple else t == tag)]:
                msg = pending.pop(t)
                msg.done.send(returned.pop(msg.message_id, None))

        def on_nack(tag, multiple):
            for t in [t for t in pending if (t <= tag if multiple else t == tag)]:
                pending.pop(t).done.send("broker refused the message (nack)")

        def on_return(exc, exchange, routing_key, message):
            mid = message.properties.get("message_id")
            if mid in by_id:
                returned[mid] = f"no queue bound for {exchange}/{routing_key}"

        channel.events["basic_ack"] = [on_ack]
        channel.events["basic_nack"] = [on_nack]
        channel.events["basic_return"] = [on_return]
        counter = getattr(channel, "_crmhub_tags", None) or itertools.count(1)
        channel._crmhub_tags = counter
        with _one_write(conn.transport):
            for msg in batch:
                tag = next(counter)
                pending[tag] = msg
                channel.basic_publish(
                    amqp.Message(msg.body, content_type="application/json",
                                 content_encoding="utf-8", delivery_mode=2,
                                 message_id=msg.message_id, application_headers=msg.headers),
                    exchange=msg.exchange, routing_key=msg.routing_key, mandatory=msg.mandatory)
        while pending:
            conn.drain_events(timeout=10)


def release_connection(conn) -> None:
    """Free a connection's socket without waiting on a broker that may be gone."""
    if conn is not None:
        try:
            conn.collect()
        except Exception:  # noqa: BLE001 - releasing a possibly broken socket
            pass


@contextmanager
def _one_write(transport):
    """The frames written inside go to the socket together when it ends: one system call for
    a batch of publishes rather than one per message (by py-spy, a gateway taking ~880 forms/s
    spent 7.6 % of its samples in per-publish sends). py-amqp has no public hook for this: its
    transport's ``_write`` is swapped, and the buffer py-amqp reuses is copied."""
    frames: list[bytes] = []
    send, transport._write = transport._write, lambda data: frames.append(bytes(data))
    try:
        yield
    finally:
        transport._write = send
    if frames:
        send(b"".join(frames))


class PerBroker:
    """One ``make(amqp_uri)`` object per AMQP URI in this process, made on first use (each
    holds a connection). A forked child starts with none: it must not write on its parent's
    socket."""

    def __init__(self, make):
        self._make = make
        self._objects: dict = {}
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._objects.clear)

    def get(self, amqp_uri: str):
        with self._lock:
            if amqp_uri not in self._objects:
                self._objects[amqp_uri] = self._make(amqp_uri)
            return self._objects[amqp_uri]

    def close_all(self) -> None:
        with self._lock:
            for obj in self._objects.values():
                obj.close()
            self._objects.clear()


_publishers = PerBroker(ConfirmingPublisher)


def get_publisher(amqp_uri: str) -> ConfirmingPublisher:
    """The process-wide publisher for an AMQP URI."""
    return _publishers.get(amqp_uri)


def close_publishers():
    _publishers.close_all()
