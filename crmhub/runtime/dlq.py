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
    dead_letter_queue_name,
)
from crmhub.runtime.messaging import connection_params


def _connect(amqp_uri):
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    return conn


def _describe(service: str, message) -> dict:
    headers = message.properties.get("application_headers") or {}
    body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else message.body
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body
    return {
        "service": service,
        "message_id": message.properties.get("message_id"),
        "queue": headers.get(QUEUE_HEADER),
        "origin": headers.get(ORIGIN_HEADER),
        "attempts": headers.get(ATTEMPT_HEADER),
        "failed_at": headers.get(FAILED_AT_HEADER),
        "error": headers.get(ERROR_HEADER),
        "request_id": headers.get("nameko.request_id"),
        "body": parsed,
    }


def list_dead_letters(amqp_uri: str, services, limit: int = 1000) -> list[dict]:
    """Every parked message of ``services``; they stay in their queues."""
    out = []
    conn = _connect(amqp_uri)
    try:
        for service in services:
            channel = conn.channel()
            channel.queue_declare(dead_letter_queue_name(service), durable=True, auto_delete=False)
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
        channel = conn.channel()
        channel.confirm_select()
        queue = dead_letter_queue_name(service)
        channel.queue_declare(queue, durable=True, auto_delete=False)
        pending = []
        while True:
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                break
            pending.append(message)
        for message in pending:
            headers = dict(message.properties.get("application_headers") or {})
            if (wanted is not None and message.properties.get("message_id") not in wanted) \
                    or not headers.get(QUEUE_HEADER):
                continue
            target = headers[QUEUE_HEADER]
            for key in (ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, QUEUE_HEADER):
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
