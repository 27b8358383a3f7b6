"""RPC without publisher confirms, and with a deadline.

An RPC request or reply is transient: if the broker loses it, the caller times out and
decides what to do. A confirm per message costs a broker round trip on every call, which is
most of an RPC's latency here, so crmhub's RPC proxies and replies go unconfirmed. Events,
which must not be lost, keep confirms (see messaging.ConfirmingPublisher).

Without a confirm there is nothing to wait for, so requests and replies are written straight
on one channel per process (``UnconfirmedChannel``) instead of through nameko's publisher,
which builds a kombu connection and takes a producer from a pool for every message: by
py-spy, a fifth of the gateway's CPU on a card lookup by phone.

A call whose answer does not come within ``RPC_TIMEOUT_SECONDS`` (the service is stopped,
or stuck) raises ``Unavailable``: the gateway answers 503, an event handler is retried later,
and neither holds a worker forever.
"""
import threading
import warnings

import amqp
import eventlet
import kombu
import kombu.serialization
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher

from crmhub.contracts.errors import Unavailable
from crmhub.runtime.handlers import SettledOnDelivery
from crmhub.runtime.messaging import PerBroker, connection_params, release_connection

DEFAULT_TIMEOUT_SECONDS = 30
# How the connection shows in RabbitMQ's management UI (and how a test finds it).
CONNECTION_NAME = "crmhub-rpc-publisher"


class UnconfirmedChannel:
    """One AMQP connection and channel of a process for unconfirmed publishes to one broker.

    py-amqp reads what the broker sent before each publish (it may have blocked the
    connection): a close from the broker (a restart, an operator closing the connection, an
    exchange gone) raises there, and the message is written once more on a new connection."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._lock = threading.Lock()  # green once eventlet has patched threading
        self._conn = None
        self._channel = None
        self._declared: set[str] = set()

    def publish(self, message: amqp.Message, exchange, routing_key: str) -> None:
        """``exchange``: a kombu Exchange, declared once per connection (nameko's RPC
        exchange; its consumers declare it too)."""
        with self._lock:
            try:
                self._publish(message, exchange, routing_key)
            except (OSError, amqp.exceptions.AMQPError):
                self.close()
                self._publish(message, exchange, routing_key)

    def _publish(self, message, exchange, routing_key):
        channel = self._open_channel()
        if exchange.name and exchange.name not in self._declared:
            channel.exchange_declare(exchange.name, exchange.type, durable=exchange.durable,
                                     auto_delete=exchange.auto_delete,
                                     arguments=exchange.arguments)
            self._declared.add(exchange.name)
        channel.basic_publish(message, exchange=exchange.name, routing_key=routing_key)

    def _open_channel(self):
        if self._conn is not None and not self._conn.connected:
            self.close()
        if self._conn is None:
            conn = amqp.Connection(**connection_params(self.amqp_uri),
                                   client_properties={"connection_name": CONNECTION_NAME})
            conn.connect()
            self._conn, self._channel = conn, conn.channel()
        return self._channel

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self._declared.clear()
        release_connection(conn)


_channels = PerBroker(UnconfirmedChannel)
unconfirmed_channel = _channels.get
close_unconfirmed_channels = _channels.close_all


class UnconfirmedPublisher(Publisher):
    """nameko's publisher, writing unconfirmed messages on the process's
    ``UnconfirmedChannel``. What the direct path does not cover (confirms, declares,
    compression, an expiration) goes through nameko's own."""

    use_confirms = False

    def publish(self, payload, **kwargs):
        if (kwargs.get("use_confirms", self.use_confirms) or self.declare
                or not isinstance(kwargs.get("exchange"), kombu.Exchange)
                or kwargs.get("declare") or kwargs.get("mandatory", self.mandatory)
                or self.compression or kwargs.get("compression")
                or kwargs.get("expiration", self.expiration) is not None):
            return super().publish(payload, **kwargs)
        options = {**self.publish_kwargs, **kwargs}
        headers = {**options.pop("headers", {}), **options.pop("extra_headers", {})}
        content_type, content_encoding, body = kombu.serialization.dumps(
            payload, serializer=options.pop("serializer", self.serializer))
        properties = {"delivery_mode": options.pop("delivery_mode", self.delivery_mode),
                      "priority": options.pop("priority", self.priority)}
        for key in ("reply_to", "correlation_id"):
            if options.get(key) is not None:
                properties[key] = options[key]
        message = amqp.Message(body, content_type=content_type,
                               content_encoding=content_encoding,
                               application_headers=headers, **properties)
        unconfirmed_channel(self.amqp_uri).publish(message, options["exchange"],
                                                   options["routing_key"])


class RequestPublisher(UnconfirmedPublisher):
    """Publishes RPC requests. Unconfirmed ones are not mandatory: without a confirm to wait
    for, the broker's return of a request nobody listens to arrives after the call has moved
    on, and the pooled channel would raise it in the next, unrelated call (a call to a running
    service failing as "unknown"). A request to a service that is not running now simply
    goes unanswered, and the caller's timeout says so."""

    use_confirms = Publisher.use_confirms

    def publish(self, payload, **kwargs):
        if not kwargs.get("use_confirms", self.use_confirms):
            kwargs["mandatory"] = False
        return super().publish(payload, **kwargs)


class TimedReply:
    """An RPC's pending answer; ``result()`` waits for it until the deadline."""

    def __init__(self, reply: nameko_rpc.RpcReply, proxy: "TimedMethodProxy"):
        self.reply, self.proxy = reply, proxy

    def result(self):
        seconds = float(self.proxy.container.config.get("RPC_TIMEOUT_SECONDS")
                        or DEFAULT_TIMEOUT_SECONDS)
        with eventlet.Timeout(seconds, False):
            return self.reply.result()
        # No answer: forget the call, so a late reply finds nobody waiting and nothing leaks.
        pending = self.proxy.reply_listener._reply_events
        for correlation_id, event in list(pending.items()):
            if event is self.reply.reply_event:
                del pending[correlation_id]
        raise Unavailable(f"the {self.proxy.service_name} service did not answer "
                          f"{self.proxy.method_name} within {seconds:g} s")


class TimedMethodProxy(nameko_rpc.MethodProxy):
    publisher_cls = RequestPublisher

    def _call(self, *args, **kwargs):
        # A worker may run while its container is still starting (an eager timer): the
        # answer's queue is consumed only once the container's queue consumer is ready, and
        # an answer sent before that is dropped (the call would wait out its timeout).
        self.reply_listener.queue_consumer._consumers_ready.wait()
        return TimedReply(super()._call(*args, **kwargs), self)


class TimedServiceProxy(nameko_rpc.ServiceProxy):
    def __getattr__(self, name):
        return TimedMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener,
                                **self.options)


class AutoAckReplyListener(SettledOnDelivery, nameko_rpc.ReplyListener):
    """The process's answers, without an ack each: the queue is the caller's own, and an
    answer delivered to a caller that then dies is of no use to anyone else."""


class TimedRpcProxy(nameko_rpc.RpcProxy):
    rpc_reply_listener = AutoAckReplyListener()

    def get_dependency(self, worker_ctx):
        return TimedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener,
                                 **self.options)


def RpcProxy(target_service: str, **options):  # noqa: N802 - reads like nameko's class
    options.setdefault("use_confirms", False)
    return TimedRpcProxy(target_service, **options)


def unconfirmed_rpc_replies() -> None:
    """Make every RPC reply of this process unconfirmed (called once by the runner)."""
    nameko_rpc.Responder.publisher_cls = UnconfirmedPublisher
    # nameko publishes RPC requests as mandatory and warns that, without confirms, an
    # unroutable one goes unnoticed: by design here (the caller's timeout covers it).
    warnings.filterwarnings("ignore", message="Mandatory delivery was requested",
                            category=UserWarning)
