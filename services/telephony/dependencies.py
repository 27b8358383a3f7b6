"""IO of the telephony service behind small facades: the PBX connectors and the recordings."""
from __future__ import annotations

import time

import requests
import structlog
from nameko.extensions import DependencyProvider

from crmhub.contracts.errors import InvalidInput
from crmhub.plugins.api import CallRequest, PbxConnector, PbxError
from crmhub.plugins.host import ConnectorHost
from crmhub.runtime.metrics import PBX_COMMAND_SECONDS
from crmhub.services.telephony import fetch, logic, recordings

log = structlog.get_logger(__name__)


class PbxLines:
    """The loaded PBX connectors, and the one vendor API session they share."""

    def __init__(self, host: ConnectorHost, session: requests.Session, default: str | None):
        self.connectors = {name: loaded.instance for name, loaded in host.connectors.items()
                           if isinstance(loaded.instance, PbxConnector)}
        self.session = session
        self.default = default

    def connector(self, name: str | None) -> PbxConnector:
        name = name or self.default or self._only_one()
        connector = self.connectors.get(name or "")
        if connector is None:
            known = ", ".join(sorted(self.connectors)) or "none is enabled"
            raise InvalidInput(f"provider: no PBX connector {name!r} (known: {known})",
                               {"provider": [f"no PBX connector {name!r}"]})
        return connector

    def _only_one(self) -> str | None:
        callers = [n for n, c in self.connectors.items() if c.supports_calls]
        return callers[0] if len(callers) == 1 else None

    def place_call(self, provider: str, request: CallRequest) -> dict:
        """Raises PbxError; a connector bug is reported as an unavailable PBX, not a 500."""
        connector = self.connector(provider)
        if not connector.supports_calls:
            raise PbxError(f"{connector.title or connector.name} cannot place calls")
        started = time.perf_counter()
        outcome = "error"
        try:
            answer = connector.place_call(self.session, request)
            outcome = "ok"
            return answer if isinstance(answer, dict) else {}
        except PbxError:
            outcome = "refused"
            raise
        except Exception as exc:  # noqa: BLE001 - a connector fault must reach the operator
            log.exception("PBX connector failed to place a call", provider=connector.name)
            raise PbxError(f"{connector.title or connector.name} failed: {exc}",
                           unavailable=True) from exc
        finally:
            PBX_COMMAND_SECONDS.labels(connector.name, "place_call", outcome).observe(
                time.perf_counter() - started)

    def fetch_recording(self, provider: str, ref: str, store: recordings.RecordingStore,
                        key: str, policy: dict):
        """Download a recording into the store; FetchRefused and PbxError are permanent."""
        connector = self.connector(provider)
        location = connector.recording_location(self.session, ref)
        return fetch.fetch_into_store(
            store, key, location, connector.allowed_recording_hosts(),
            allow_private=bool(connector.settings.get("allow_private_recording_hosts")),
            **policy)


class Pbx(DependencyProvider):
    def setup(self):
        config = self.container.config
        telephony = config.get("TELEPHONY") or {}
        self.lines = PbxLines(ConnectorHost(config), requests.Session(),
                              telephony.get("default_provider") or None)

    def stop(self):
        self.lines.session.close()

    def get_dependency(self, worker_ctx):
        return self.lines


class Recordings(DependencyProvider):
    """The recording store (a local directory by default, see RECORDINGS_DIR). The telephony
    service writes it; the gateway, which streams the files, reads the same store."""

    def setup(self):
        self.store = recordings.store_from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.store


class SeatingChart:
    """Who sits at which extension: the extensions table (a few rows per manager) as last
    read, read again when older than ``max_age`` seconds or changed by this process. A signal
    batch and a click-to-call so read no table; a change made through another telephony
    instance is seen here within ``max_age``."""

    def __init__(self, max_age: float):
        self.max_age = max_age
        self._seats: dict[str, dict] | None = None
        self._read_at = 0.0
        self._changes = 0

    def seats(self, db) -> dict[str, dict]:
        if self._seats is None or time.monotonic() - self._read_at > self.max_age:
            changes, read_at = self._changes, time.monotonic()
            with db.connect() as conn:
                seats = logic.seating(conn)
            if changes != self._changes:  # changed while being read: this read may miss it
                return seats
            self._seats, self._read_at = seats, read_at
        return self._seats

    def changed(self) -> None:
        self._changes += 1
        self._seats = None


class Seating(DependencyProvider):
    def setup(self):
        telephony = self.container.config.get("TELEPHONY") or {}
        self.chart = SeatingChart(float(telephony.get("seating_max_age_seconds", 1.0)))

    def get_dependency(self, worker_ctx):
        return self.chart
