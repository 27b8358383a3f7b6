"""IO of the messenger service behind a small facade: the messenger connectors and the one
vendor API session they share."""
from __future__ import annotations

import time

import requests
import structlog
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram

from crmhub.plugins.api import MessengerConnector, MessengerError, OutgoingMessage
from crmhub.plugins.host import ConnectorHost

log = structlog.get_logger(__name__)

SEND_SECONDS = Histogram(
    "crmhub_messenger_send_seconds", "Duration of a message sent through a messenger API",
    ["provider", "outcome"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
MESSAGES = Counter("crmhub_messenger_messages_total", "Messages stored, by provider and direction",
                   ["provider", "direction"])
UNMATCHED_STATUSES = Counter("crmhub_messenger_unmatched_statuses_total",
                             "Delivery statuses about no message the hub has sent (yet)",
                             ["provider"])


class MessengerLines:
    """The loaded messenger connectors by name."""

    def __init__(self, host: ConnectorHost, session: requests.Session):
        self.connectors = {name: loaded.instance for name, loaded in host.connectors.items()
                           if isinstance(loaded.instance, MessengerConnector)}
        self.session = session

    def send(self, provider: str, message: OutgoingMessage) -> str:
        """The messenger's id of the sent message. Raises MessengerError; a connector bug
        counts as an outage (retried, then parked) rather than a refusal."""
        connector = self.connectors.get(provider)
        if connector is None:
            raise MessengerError(f"the {provider} connector is not enabled", unavailable=True)
        started, outcome = time.perf_counter(), "error"
        try:
            provider_id = connector.send_message(self.session, message)
            outcome = "ok"
            return provider_id
        except MessengerError as exc:
            outcome = "unavailable" if exc.unavailable else "refused"
            raise
        except Exception as exc:  # noqa: BLE001 - a connector fault must not lose the message
            log.exception("messenger connector failed to send", provider=provider)
            raise MessengerError(f"{connector.title or provider} failed: {exc}",
                                 unavailable=True) from exc
        finally:
            SEND_SECONDS.labels(provider, outcome).observe(time.perf_counter() - started)


class Messengers(DependencyProvider):
    def setup(self):
        self.lines = MessengerLines(ConnectorHost(self.container.config), requests.Session())

    def stop(self):
        self.lines.session.close()

    def get_dependency(self, worker_ctx):
        return self.lines
