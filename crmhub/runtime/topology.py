"""The RabbitMQ topology of the mesh: names, arguments and ``crmhub declare``.

Where a lost message would be a lost client event (every pooled handler queue, the retry
delay queues, the dead-letter queues) the queues are quorum queues when ``QUEUE_TYPE`` is
``quorum`` (replicated over a RabbitMQ cluster; the production setting), classic otherwise.
Handler queues dead-letter into their service's dead-letter queue: a message that was
delivered ``DELIVERY_LIMIT`` times without being settled (the process died while handling
it, again and again) is parked there instead of looping forever. RPC queues stay classic:
an RPC lost with a node is a caller's timeout, not lost data.

Whoever declares a queue (this module before the services start, nameko when a consumer
starts, the ``crmhub dlq`` commands) uses the arguments built here: RabbitMQ refuses a
redeclaration with different arguments.
"""
from __future__ import annotations

import threading

import amqp
import structlog
from nameko.events import BROADCAST, EventHandler, get_event_exchange

from crmhub.runtime.messaging import connection_params

log = structlog.get_logger(__name__)

QUEUE_TYPES = ("quorum", "classic")
DEFAULT_DELIVERY_LIMIT = 20


class TopologyError(Exception):
    """The broker holds a queue that cannot be brought to the declared shape."""


def retry_exchange_name(delay_ms: int) -> str:
    return f"crmhub.retry.{int(delay_ms)}ms"


def dead_letter_queue_name(service: str) -> str:
    return f"crmhub.dlq.{service}"


def handler_queue_name(source_service: str, event_type: str, service: str, method: str) -> str:
    """The queue nameko itself declares for a SERVICE_POOL handler."""
    return f"evt-{source_service}-{event_type}--{service}.{method}"


def queue_type(config: dict) -> str:
    kind = str(config.get("QUEUE_TYPE") or "classic").strip().lower()
    if kind not in QUEUE_TYPES:
        raise ValueError(f"QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {kind!r}")
    return kind


def _durable(config: dict) -> dict:
    return {"x-queue-type": "quorum"} if queue_type(config) == "quorum" else {}


def _dead_lettering(config: dict, routing_key: str | None) -> dict:
    """Dead-letter through the default exchange: to ``routing_key``, or (None) to the queue
    the message's own routing key names."""
    args = {**_durable(config), "x-dead-letter-exchange": ""}
    if routing_key:
        args["x-dead-letter-routing-key"] = routing_key
    if args.get("x-queue-type") == "quorum":
        # at-least-once: the broker keeps a message until its dead-letter target confirms it.
        args.update({"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
    return args


def handler_queue_arguments(config: dict, service: str) -> dict:
    args = _dead_lettering(config, dead_letter_queue_name(service))
    if args.get("x-queue-type") == "quorum":
        args["x-delivery-limit"] = int(config.get("DELIVERY_LIMIT") or DEFAULT_DELIVERY_LIMIT)
    return args


def retry_queue_arguments(config: dict, delay_ms: int) -> dict:
    """A delay tier: messages wait ``delay_ms``, then go back to the handler queue named by
    their routing key."""
    return {**_dead_lettering(config, None), "x-message-ttl": int(delay_ms)}


def dead_letter_queue_arguments(config: dict) -> dict:
    return _durable(config)


def service_handlers(service_cls):
    """(source_service, event_type, method_name) of every pooled handler of a service class
    (a broadcast handler's queue belongs to one running instance: nameko declares it)."""
    for name in dir(service_cls):
        method = getattr(service_cls, name, None)
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, EventHandler) and entrypoint.handler_type != BROADCAST:
                yield entrypoint.source_service, entrypoint.event_type, name


def service_queues(service_cls) -> list[str]:
    """The durable queues a service consumes from: its handler queues."""
    return [handler_queue_name(source, event_type, service_cls.name, method)
            for source, event_type, method in service_handlers(service_cls)]


class QueueDepths:
    """Reads how many messages wait in the handler queues of the services of this process
    (their lag) into the ``crmhub_queue_messages`` gauge; called when /metrics is scraped."""

    def __init__(self, amqp_uri: str, service_classes):
        self.amqp_uri = amqp_uri
        self.queues = [(cls.name, queue) for cls in service_classes
                       for queue in service_queues(cls)]
        self._conn: amqp.Connection | None = None
        self._lock = threading.Lock()  # one scrape at a time on the shared connection

    def refresh(self) -> None:
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        from crmhub.runtime.metrics import QUEUE_MESSAGES

        try:
            if self._conn is None:
                self._conn = amqp.Connection(**connection_params(self.amqp_uri))
                self._conn.connect()
            channel = self._conn.channel()
            try:
                for service, queue in self.queues:
                    _, messages, _ = channel.queue_declare(queue, passive=True)
                    QUEUE_MESSAGES.labels(service, queue).set(messages)
            finally:
                channel.close()
        except Exception as exc:  # noqa: BLE001 - metrics must not fail the scrape
            log.warning("could not read queue depths", error=repr(exc))
            self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass


class _Declarer:
    """Declares queues on one connection; a queue that exists with other arguments is
    redeclared when it is empty and unused (an upgrade, e.g. classic to quorum), refused
    with a clear message otherwise."""

    def __init__(self, conn: amqp.Connection):
        self.conn = conn
        self.channel = conn.channel()

    def exchange(self, name: str, kind: str, auto_delete: bool = False) -> None:
        self.channel.exchange_declare(name, kind, durable=True, auto_delete=auto_delete)

    def queue(self, name: str, arguments: dict, bind: tuple[str, str] | None = None) -> None:
        try:
            self.channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
        except amqp.exceptions.PreconditionFailed as exc:
            self.channel = self.conn.channel()  # the failed declaration closed the channel
            self._replace(name, arguments, exc)
        if bind:
            self.channel.queue_bind(name, exchange=bind[0], routing_key=bind[1])

    def _replace(self, name: str, arguments: dict, refusal: Exception) -> None:
        _, messages, consumers = self.channel.queue_declare(name, passive=True)
        if messages or consumers:
            raise TopologyError(
                f"queue {name} exists with other arguments ({refusal.reply_text}) and holds "
                f"{messages} message(s) and {consumers} consumer(s). Stop its consumers and let "
                f"them drain it (or move its messages), then run `crmhub declare` again; or set "
                f"QUEUE_TYPE to the type it already has.") from refusal
        log.warning("redeclaring an empty queue with new arguments", queue=name,
                    arguments=arguments, was=refusal.reply_text)
        self.channel.queue_delete(name)  # empty and unused, checked above (quorum queues
        # refuse the if_unused flag)
        self.channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)


def declare_topology(config: dict, service_classes) -> list[str]:
    """Declare exchanges, every handler queue, the delay tiers and the dead-letter queues.

    Run before any service starts (``crmhub declare``, and ``crmhub run`` itself), so an event
    published before its consumer first ran is queued rather than dropped. Returns the names
    of the queues declared.
    """
    declared = []
    conn = amqp.Connection(**connection_params(config["AMQP_URI"]))
    conn.connect()
    try:
        declare = _Declarer(conn)
        for delay in config.get("RETRY_DELAYS_MS") or []:
            name = retry_exchange_name(delay)
            declare.exchange(name, "fanout")
            declare.queue(name, retry_queue_arguments(config, delay), bind=(name, ""))
            declared.append(name)
        for cls in service_classes:
            own = get_event_exchange(cls.name, config)
            declare.exchange(own.name, own.type, own.auto_delete)
            declare.queue(dead_letter_queue_name(cls.name), dead_letter_queue_arguments(config))
            declared.append(dead_letter_queue_name(cls.name))
            for source, event_type, method in service_handlers(cls):
                exchange = get_event_exchange(source, config)
                declare.exchange(exchange.name, exchange.type, exchange.auto_delete)
                name = handler_queue_name(source, event_type, cls.name, method)
                declare.queue(name, handler_queue_arguments(config, cls.name),
                              bind=(exchange.name, event_type))
                declared.append(name)
    finally:
        conn.close()
    return declared
