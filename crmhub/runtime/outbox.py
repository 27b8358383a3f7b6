"""The outbox relay (publishes what transactions wrote to a service's outbox, with broker
confirms) and ``Database``, the nameko provider that injects a service's database."""
from __future__ import annotations

import json
import threading

import sqlalchemy as sa
import structlog
from nameko.extensions import DependencyProvider

from crmhub.runtime.db import ServiceDatabase, is_postgres, make_engine
from crmhub.runtime.messaging import ConfirmingPublisher, event_exchange_name, get_publisher
from crmhub.runtime.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = structlog.get_logger(__name__)


class OutboxRelay:
    """Publishes outbox rows in id order with broker confirms, then deletes them.

    Several instances of a service may run: on PostgreSQL each relay locks its batch with
    SKIP LOCKED. A crash between publish and delete republishes the batch; consumers dedupe
    by event id, so that is harmless.
    """

    BATCH = 500

    def __init__(self, engine, outbox: sa.Table, publisher: ConfirmingPublisher, service: str):
        self.engine = engine
        self.outbox = outbox
        self.publisher = publisher
        self.service = service
        self.exchange = event_exchange_name(service)
        self._wake = threading.Event()
        self._running = False

    def wake(self):
        self._wake.set()

    def stop(self):
        self._running = False
        self._wake.set()

    def run(self, idle_seconds: float = 1.0):
        import eventlet

        self._running = True
        backoff = 0.2
        while self._running:
            try:
                published = self.relay_once()
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 - the rows stay in the outbox for later
                log.warning("outbox relay failed, will retry", error=repr(exc),
                            service=self.service)
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if published < self.BATCH:
                self._wake.wait(idle_seconds)
                self._wake.clear()

    def relay_once(self) -> int:
        """Publish one batch: rows are deleted in the same transaction that publishes them,
        so a failed publish rolls the delete back and the rows stay for the next try."""
        batch = sa.select(self.outbox.c.id).order_by(self.outbox.c.id).limit(self.BATCH)
        if is_postgres(self.engine):
            batch = batch.with_for_update(skip_locked=True)
        claim = (self.outbox.delete().where(self.outbox.c.id.in_(batch.scalar_subquery()))
                 .returning(self.outbox.c.id, self.outbox.c.event_type, self.outbox.c.payload,
                            self.outbox.c.headers))
        with self.engine.begin() as conn:
            rows = sorted(conn.execute(claim).all(), key=lambda row: row.id)
            if not rows:
                OUTBOX_BACKLOG.labels(self.service).set(0)
                return 0
            self.publisher.publish_many([
                self.publisher.message(self.exchange, row.event_type, row.payload.encode(),
                                       json.loads(row.headers or "{}"), mandatory=False)
                for row in rows], timeout=30)
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)


class Database(DependencyProvider):
    """Injects a ``ServiceDatabase`` for the service's own metadata; runs its outbox relay."""

    def __init__(self, metadata: sa.MetaData, relay: bool = True):
        self.metadata = metadata
        self.with_relay = relay

    def setup(self):
        config = self.container.config
        service = self.container.service_name
        self.engine = make_engine(config, service)
        self.relay = None
        if self.with_relay:
            self.relay = OutboxRelay(self.engine, self.metadata.tables["outbox"],
                                     get_publisher(config["AMQP_URI"]), service)

    def start(self):
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run)

    def stop(self):
        if self.relay is not None:
            self.relay.stop()
        self.engine.dispose()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        context = {"request_id": worker_ctx.data.get("request_id")}
        return ServiceDatabase(self.engine, self.metadata, self.container.service_name,
                               self.relay, {k: v for k, v in context.items() if v})
