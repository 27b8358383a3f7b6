"""Operator access to the dead-letter queues: list what is parked, replay it."""
from __future__ import annotations

import json

import amqp

from crmhub.runtime.handlers import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    FAILED_AT_HEADER,
    ORIGIN_HEADER,
    QUEUE_HEADER,
)
from crmhub.runtime.messaging import connection_params
from crmhub.runtime.topology import dead_letter_queue_name

# Headers the broker sets when it dead-letters a message itself (delivery limit reached).
BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-delivery-count")


def _connect(amqp_uri):
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    return conn


def _failed_queue(headers: dict) -> str | None:
    """The queue a parked message failed in: ours, or the broker's latest record of where it
    died (the first record may be a retry tier's expiry)."""
    return headers.get(QUEUE_HEADER) or (headers.get("x-death") or [{}])[0].get("queue")


def _describe(service: str, message) -> dict:
    headers = message.properties.get("application_headers") or {}
    death = (headers.get("x-death") or [{}])[0]
    body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else message.body
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body
    return {
        "service": service,
        "message_id": message.properties.get("message_id"),
        "queue": _failed_queue(headers),
        "origin": headers.get(ORIGIN_HEADER) or _broker_origin(death),
        "attempts": headers.get(ATTEMPT_HEADER) or death.get("count"),
        "failed_at": headers.get(FAILED_AT_HEADER) or _timestamp(death.get("time")),
        "error": headers.get(ERROR_HEADER) or _broker_reason(headers),
        "request_id": headers.get("nameko.request_id"),
        "body": parsed,
    }


def _timestamp(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _broker_origin(death: dict) -> str | None:
    """"<service>/<event type>" from the broker's record, like our own origin header."""
    exchange, keys = death.get("exchange") or "", death.get("routing-keys") or []
    return f"{exchange.removesuffix('.events')}/{keys[0]}" if exchange and keys else None


def _broker_reason(headers: dict) -> str | None:
    reason = headers.get("x-first-death-reason")
    if reason == "delivery_limit":
        return "delivered too many times without being settled (its handler's process died?)"
    return reason and f"dead-lettered by the broker: {reason}"


def _open_queue(conn, queue: str):
    """A channel on an existing dead-letter queue, or None if it was never declared. Passive:
    the queue's arguments are `crmhub declare`'s business."""
    channel = conn.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except amqp.exceptions.NotFound:
        return None
    return channel


def list_dead_letters(amqp_uri: str, services, limit: int = 1000) -> list[dict]:
    """Every parked message of ``services``; they stay in their queues."""
    out = []
    conn = _connect(amqp_uri)
    try:
        for service in services:
            channel = _open_queue(conn, dead_letter_queue_name(service))
            if channel is None:
                continue
            seen = 0
            while seen < limit:
                message = channel.basic_get(dead_letter_queue_name(service), no_ack=False)
                if message is None:
                    break
                out.append(_describe(service, message))
                seen += 1
            channel.close()  # unacked messages go back to the queue, in order
    finally:
        conn.close()
    return out


def replay_dead_letters(amqp_uri: str, service: str, message_ids=None) -> int:
    """Send parked messages back to the queue they failed in, with a fresh attempt count.
    ``message_ids`` None replays all of the service's dead letters. Returns how many."""
    wanted = set(message_ids) if message_ids is not None else None
    replayed = 0
    conn = _connect(amqp_uri)
    try:
        queue = dead_letter_queue_name(service)
        channel = _open_queue(conn, queue)
        if channel is None:
            return 0
        channel.confirm_select()
        pending = []
        while True:
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                break
            pending.append(message)
        for message in pending:
            headers = dict(message.properties.get("application_headers") or {})
            if (wanted is not None and message.properties.get("message_id") not in wanted) \
                    or not _failed_queue(headers):
                continue
            target = _failed_queue(headers)
            for key in (ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, QUEUE_HEADER, *BROKER_HEADERS):
                headers.pop(key, None)
            props = {k: v for k, v in message.properties.items() if k != "application_headers"}
            channel.basic_publish(amqp.Message(message.body, application_headers=headers, **props),
                                  exchange="", routing_key=target)
            channel.basic_ack(message.delivery_tag)
            replayed += 1
        channel.close()  # what was not replayed is requeued
    finally:
        conn.close()
    return replayed
