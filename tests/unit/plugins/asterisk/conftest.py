"""A listener under test: ``AsteriskConnector.listen`` in its own (green) thread, collecting
what it emits, always stopped at the end of the test."""
from __future__ import annotations

import threading
import time

import pytest

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.asterisk import AsteriskConnector
from crmhub.plugins.asterisk.simulator import AmiServer


class Listener:
    def __init__(self, connector: AsteriskConnector):
        self.connector = connector
        self.emitted: list[tuple[str, dict]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=connector.listen, args=(self.emit, self.stopping),
                                       daemon=True)

    def emit(self, event_type: str, event: dict) -> None:
        CallSignalSchema().load(event)  # every event the listener hands over keeps the contract
        self.emitted.append((event_type, event))

    @property
    def signals(self) -> list[dict]:
        return [event for _, event in self.emitted]

    def start(self) -> Listener:
        self.thread.start()
        return self

    def wait_for(self, condition, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 3.0) -> float:
        """Stop the listener; returns how long it took."""
        started = time.monotonic()
        self.stopping.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "listen() did not return after stopping was set"
        return time.monotonic() - started


@pytest.fixture
def pbx():
    """``pbx(script, **options)``: a started AMI server, stopped at the end."""
    servers = []

    def start(script=None, **options) -> AmiServer:
        server = AmiServer(script, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def listener():
    """``listener(settings or connector)``: a started listener of an AsteriskConnector, stopped
    at the end."""
    listeners = []

    def start(settings: dict | AsteriskConnector) -> Listener:
        connector = settings if isinstance(settings, AsteriskConnector) else AsteriskConnector(
            {"cdr_settle_seconds": 0.1, **settings})
        running = Listener(connector).start()
        listeners.append(running)
        return running

    yield start
    for running in listeners:
        if running.thread.is_alive():
            running.stop()
