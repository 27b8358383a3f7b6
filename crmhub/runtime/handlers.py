"""Event handlers that never lose a message.

nameko acks a message whose handler raised (unless ``requeue_on_error``, which requeues at
once in a hot loop). ``reliable_handler`` instead republishes a failed message to a delay
queue (one per delay tier: TTL, then dead-lettered back to the handler's own queue) and, after
the last tier, parks it in the service's dead-letter queue ``crmhub.dlq.<service>`` where
``crmhub dlq list|replay`` finds it. Only then is the original acked.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import traceback
from collections import OrderedDict
from functools import partial
from typing import NamedTuple

import eventlet
import structlog
from amqp.exceptions import ConnectionError as AmqpConnectionError
from marshmallow import ValidationError
from nameko.events import SERVICE_POOL, EventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import QueueConsumer

from crmhub.contracts.errors import PermanentError
from crmhub.runtime.messaging import OutgoingMessage, get_publisher
from crmhub.runtime.metrics import DEAD_LETTERS, HANDLER_RETRIES
from crmhub.runtime.topology import (
    dead_letter_queue_name,
    handler_queue_arguments,
    retry_exchange_name,
)

log = structlog.get_logger(__name__)

ATTEMPT_HEADER = "x-crmhub-attempt"
QUEUE_HEADER = "x-crmhub-queue"
ERROR_HEADER = "x-crmhub-error"
FAILED_AT_HEADER = "x-crmhub-failed-at"
SERVICE_HEADER = "x-crmhub-service"
ORIGIN_HEADER = "x-crmhub-origin"

# Errors that no retry can fix: the message goes straight to the dead-letter queue.
PERMANENT_ERRORS = (ValidationError, PermanentError)


class ReliableEventHandler(EventHandler):

    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("expected_exceptions", PERMANENT_ERRORS)
        super().__init__(source_service, event_type, reliable_delivery=True,
                         requeue_on_error=False, **kwargs)

    def setup(self):
        super().setup()
        if self.handler_type == SERVICE_POOL:  # the queue `crmhub declare` made: same arguments
            self.queue.queue_arguments = handler_queue_arguments(self.container.config,
                                                                 self.container.service_name)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is not None:
            try:
                self._retry_or_park(message, exc_info)
            except Exception as exc:  # noqa: BLE001 - could not park it: keep it in the queue
                log.error("could not park failed message, requeueing", error=repr(exc),
                          queue=self.queue.name)
                self.queue_consumer.requeue_message(message)
                return
        self.queue_consumer.ack_message(message)

    def _retry_or_park(self, message, exc_info):
        config = self.container.config
        delays = [int(d) for d in config.get("RETRY_DELAYS_MS") or []]
        headers = dict(message.headers or {})
        attempt = int(headers.get(ATTEMPT_HEADER, 0)) + 1
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        headers.update({ATTEMPT_HEADER: attempt, ERROR_HEADER: error[:2000]})
        permanent = isinstance(exc_info[1], PERMANENT_ERRORS)
        if not permanent and attempt <= len(delays):
            target = OutgoingMessage(retry_exchange_name(delays[attempt - 1]), self.queue.name,
                                     message.body, headers)
            HANDLER_RETRIES.labels(self.container.service_name, self.queue.name).inc()
            log.warning("handler failed, retrying", attempt=attempt, error=error,
                        delay_ms=delays[attempt - 1], queue=self.queue.name)
        else:
            headers.update({
                QUEUE_HEADER: self.queue.name,
                SERVICE_HEADER: self.container.service_name,
                FAILED_AT_HEADER: dt.datetime.now(dt.timezone.utc).isoformat(),
                ORIGIN_HEADER: f"{self.source_service}/{self.event_type}",
            })
            target = OutgoingMessage("", dead_letter_queue_name(self.container.service_name),
                                     message.body, headers)
            DEAD_LETTERS.labels(self.container.service_name, self.queue.name).inc()
            log.error("handler failed, parked in dead-letter queue", attempts=attempt,
                      error=error, queue=self.queue.name, permanent=permanent)
        get_publisher(config["AMQP_URI"]).publish_many([target])


reliable_handler = ReliableEventHandler.decorator


class SettledOnDelivery:
    """Mixed into a nameko extension with a ``queue`` (an event handler, the RPC reply
    listener): its queue is consumed without acks, so the broker settles each message as it
    delivers it and nameko's ack is a no-op (kombu acks nothing consumed that way). For
    messages worth nothing to anyone once their consumer is gone: an ack is a socket write
    per message, and socket writes were about 14% of the hub's CPU in a card lookup (py-spy)."""

    def setup(self):
        super().setup()
        self.queue.no_ack = True


# -- batches -----------------------------------------------------------------------------------

class Delivery(NamedTuple):
    """One message of a batch: its payload and the request id it arrived with."""

    payload: dict
    request_id: str | None


class BatchQueueConsumer(QueueConsumer):
    """A consumer connection of its own whose prefetch lets batches fill up (nameko's shared
    consumer prefetches only ``max_workers`` messages), and whose acks are coalesced: a
    finished message is acked, with ``multiple``, together with every earlier delivery of its
    channel once none of those is still at work. The broker then settles a batch in one step
    (a quorum queue spends about a fifth of the CPU on a message acked that way)."""

    def setup(self):
        super().setup()
        # channel -> delivery tag -> finished; tags arrive in increasing order per channel.
        self._unsettled: dict[object, OrderedDict[int, bool]] = {}

    @property
    def prefetch_count(self):
        return int(self.container.config.get("BATCH_PREFETCH", 1000))

    def handle_message(self, provider, body, message):
        if message.channel not in self._unsettled:  # a new channel: forget the closed ones
            self._unsettled = {channel: tags for channel, tags in self._unsettled.items()
                               if channel.connection is not None}
            self._unsettled[message.channel] = OrderedDict()
        self._unsettled[message.channel][message.delivery_tag] = False
        super().handle_message(provider, body, message)

    def ack_message(self, message):
        self.ack_messages([message])

    def ack_messages(self, messages):
        """Mark ``messages`` finished and ack what has become a finished run."""
        channels = set()
        for message in messages:
            tags = self._unsettled.get(message.channel)
            if tags is None or message.delivery_tag not in tags:
                super().ack_message(message)  # not tracked (delivered before a reconnect)
                continue
            tags[message.delivery_tag] = True
            channels.add(message.channel)
        for channel in channels:
            self._ack_finished_run(channel)

    def requeue_message(self, message):
        tags = self._unsettled.get(message.channel)
        if tags is not None:
            tags.pop(message.delivery_tag, None)
        super().requeue_message(message)
        self._ack_finished_run(message.channel)

    def _ack_finished_run(self, channel):
        tags = self._unsettled.get(channel)
        if tags is None:
            return
        last = None
        while tags and next(iter(tags.values())):  # the oldest delivery is finished
            last, _ = tags.popitem(last=False)
        if channel.connection is None:  # the broker has taken its deliveries back
            self._unsettled.pop(channel, None)
        elif last is not None:
            with contextlib.suppress(AmqpConnectionError, OSError):  # the broker takes them back
                channel.basic_ack(last, multiple=True)


class BatchEventHandler(ReliableEventHandler):
    """Hands the service method a list of ``Delivery``: one worker, so one transaction, per
    batch of messages instead of one per message.

    Group commit: while fewer than ``max_inflight`` batches run, what has arrived goes out at
    once (low latency when idle); otherwise messages gather until a batch finishes, the batch
    is full (``max_batch``) or ``max_wait`` seconds pass (large batches under load).

    When a batch fails, each of its messages is run again on its own, so only the message at
    fault goes to retry and the dead-letter queue; the method must therefore be idempotent
    per message (claim each message's key in the inbox).
    """

    queue_consumer = BatchQueueConsumer()

    def __init__(self, source_service, event_type, max_batch=200, max_wait=0.05,
                 max_inflight=1, **kwargs):
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_inflight = max_inflight
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        self._buffer: list = []
        self._timer = None
        self._inflight = 0

    def handle_message(self, body, message):
        self._buffer.append((body, message))
        if len(self._buffer) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            # spawn_after(0) still lets the consumer hand over every message already read.
            idle = self._inflight < self.max_inflight
            self._timer = eventlet.spawn_after(0 if idle else self.max_wait, self._flush)

    def _flush(self):
        # Take the batch before cancelling the timer: cancelling switches to other greenthreads
        # (eventlet's kill), which may add messages meanwhile (batches of 6 with max_batch 5).
        batch, self._buffer = self._buffer, []
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if batch:
            self._spawn(batch)

    def _spawn(self, batch):
        contexts = [self.unpack_message_headers(message) for _, message in batch]
        deliveries = [Delivery(body, ctx.get("request_id")) for (body, _), ctx in zip(batch, contexts)]
        # The worker's own context: the request id only when the whole batch shares it.
        shared = {d.request_id for d in deliveries}
        context = contexts[0] if len(shared) == 1 else {}
        self._inflight += 1
        try:
            self.container.spawn_worker(self, (deliveries,), {}, context_data=context,
                                        handle_result=partial(self._batch_done, batch))
        except ContainerBeingKilled:
            self._inflight -= 1
            for _, message in batch:
                self.queue_consumer.requeue_message(message)

    def _batch_done(self, batch, worker_ctx, result=None, exc_info=None):
        self._inflight -= 1
        if exc_info is None:
            self.queue_consumer.ack_messages([message for _, message in batch])
        elif len(batch) == 1:
            self.handle_message_processed(batch[0][1], result, exc_info)
        else:
            log.warning("batch failed, running its messages one by one", size=len(batch),
                        error=repr(exc_info[1]), queue=self.queue.name)
            for item in batch:
                self._spawn([item])
        if self._buffer and self._inflight < self.max_inflight:
            self._flush()  # what gathered while this batch ran goes now
        return result, exc_info


batch_handler = BatchEventHandler.decorator
