"""IO of the gateway behind small facades: connectors, event publishing, API keys."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from crmhub.contracts.base import instance
from crmhub.contracts.events import spec
from crmhub.plugins.api import BadPayload
from crmhub.plugins.host import ConnectorHost
from crmhub.runtime.config import parse_api_keys
from crmhub.runtime.messaging import event_exchange_name, get_publisher


class Connectors(DependencyProvider):
    """The loaded connector plugins (built once per service container)."""

    def setup(self):
        self.host = ConnectorHost(self.container.config)

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


class ApiKeys(DependencyProvider):
    """``{key: {"role", "name"}}`` from the ``API_KEYS`` config."""

    def setup(self):
        self.keys = parse_api_keys(self.container.config.get("API_KEYS"))

    def get_dependency(self, worker_ctx):
        return self.keys
