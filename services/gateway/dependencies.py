"""IO of the gateway behind small facades: connectors, event publishing, API keys."""
from __future__ import annotations

import functools
import threading

import structlog
from nameko.extensions import DependencyProvider

from crmhub.contracts.base import instance
from crmhub.contracts.events import spec
from crmhub.plugins.api import BadPayload, PbxConnector
from crmhub.plugins.host import ConnectorHost
from crmhub.runtime.config import config_flag, parse_api_keys
from crmhub.runtime.dlq import list_dead_letters, replay_dead_letters
from crmhub.runtime.messaging import PublishError, event_exchange_name, get_publisher

log = structlog.get_logger(__name__)


def listeners_enabled(config: dict) -> bool:
    """Whether this gateway instance runs the connectors' PBX listeners (Asterisk AMI). With
    several instances, ops may leave them on in one only (``CONNECTOR_LISTENERS: false`` in
    the others); two listeners are harmless, their events dedupe, but each holds a PBX login."""
    return config_flag(config, "CONNECTOR_LISTENERS", True)


class Connectors(DependencyProvider):
    """The loaded connector plugins (built once per service container), and the long-lived
    listeners of those that keep a connection to their PBX."""

    def setup(self):
        self.host = ConnectorHost(self.container.config)
        self.stopping = threading.Event()

    def start(self):
        if not listeners_enabled(self.container.config):
            return
        publisher = get_publisher(self.container.config["AMQP_URI"])
        for name, loaded in self.host.connectors.items():
            connector = loaded.instance
            if isinstance(connector, PbxConnector) and connector.listens():
                emit = functools.partial(self._emit, publisher, name)
                self.container.spawn_managed_thread(
                    functools.partial(connector.listen, emit, self.stopping),
                    identifier=f"listener:{name}")

    def _emit(self, publisher, connector: str, event_type: str, event: dict) -> None:
        """Publish a listener's event, retrying while the broker is away: a PBX socket cannot
        replay what it sent (the listener waits, the PBX buffers or drops the session)."""
        event = self.host.prepare(connector, event_type, event)
        events = EventPublisher(publisher, self.container.service_name, {})
        delay = 0.2
        while True:
            try:
                return events.publish([(event_type, event)])
            except PublishError:
                if self.stopping.is_set():
                    raise
                log.warning("broker did not take a listener event, retrying",
                            connector=connector, event_type=event_type, delay_s=delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)

    def stop(self):
        self.stopping.set()

    def kill(self):
        self.stopping.set()

    def get_dependency(self, worker_ctx):
        return self.host


class EventPublisher:
    """Publishes contract events on ``<service>.events`` and waits for the broker's confirm."""

    def __init__(self, publisher, service: str, context: dict):
        self._publisher = publisher
        self._exchange = event_exchange_name(service)
        self._context = context

    def publish(self, events: list[tuple[str, dict]]) -> None:
        """Validate every event against its contract, then publish them all; raises
        BadPayload for an event that breaks its contract and PublishError when the broker
        did not take them."""
        messages = []
        for event_type, payload in events:
            try:
                schema = instance(spec(event_type).schema)
            except KeyError as exc:
                raise BadPayload(str(exc)) from None
            # Connectors hand over dumped events (new_event); loading proves the wire form
            # honours the contract without dumping it a second time.
            errors = schema.validate(payload)
            if errors:
                raise BadPayload(f"{event_type}: the submission is incomplete", errors)
            messages.append(self._publisher.message(self._exchange, event_type, payload,
                                                    self._context))
        self._publisher.publish_many(messages)


class Events(DependencyProvider):
    def setup(self):
        self.publisher = get_publisher(self.container.config["AMQP_URI"])

    def get_dependency(self, worker_ctx):
        context = {"request_id": worker_ctx.data.get("request_id")}
        return EventPublisher(self.publisher, self.container.service_name, context)


class DeadLetters(DependencyProvider):
    """The services' dead-letter queues (crmhub.runtime.dlq): ``list(services)`` and
    ``replay(service, message_ids or None)``."""

    class Facade:
        def __init__(self, amqp_uri: str):
            self.amqp_uri = amqp_uri

        def list(self, services) -> list[dict]:
            return list_dead_letters(self.amqp_uri, services)

        def replay(self, service: str, message_ids=None) -> int:
            return replay_dead_letters(self.amqp_uri, service, message_ids)

    def get_dependency(self, worker_ctx):
        return self.Facade(self.container.config["AMQP_URI"])


class ApiKeys(DependencyProvider):
    """``{key: {"role", "name"}}`` from the ``API_KEYS`` config."""

    def setup(self):
        self.keys = parse_api_keys(self.container.config.get("API_KEYS"))

    def get_dependency(self, worker_ctx):
        return self.keys
