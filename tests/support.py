"""Helpers for tests: RabbitMQ vhosts, hub subprocesses, polling. Fixtures live in conftest.py."""
import os
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import amqp
import requests
import sqlalchemy as sa

from crmhub.runtime.db import sqlalchemy_url
from crmhub.runtime.messaging import connection_params
from crmhub.testing import free_port  # noqa: F401 - tests import it from here

REPO = Path(__file__).resolve().parent.parent
RABBIT_API = os.environ.get("RABBIT_API", "http://127.0.0.1:15672/api")
RABBIT_AUTH = ("guest", "guest")
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_KEY = "test-admin-key"
OPERATOR_KEY = "test-operator-key"
INTEGRATOR_KEY = "test-integrator-key"
API_KEYS = f"{ADMIN_KEY}:admin:Admin,{OPERATOR_KEY}:operator:Olga,{INTEGRATOR_KEY}:integrator"


# -- RabbitMQ ------------------------------------------------------------------------------------

def make_vhost() -> str:
    name = f"crmhub-test-{uuid.uuid4().hex[:10]}"
    requests.put(f"{RABBIT_API}/vhosts/{name}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
    requests.put(f"{RABBIT_API}/permissions/{name}/guest", auth=RABBIT_AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    return name


def drop_vhost(name: str) -> None:
    requests.delete(f"{RABBIT_API}/vhosts/{name}", auth=RABBIT_AUTH, timeout=10)


def queue_depth(amqp_uri: str, queue: str) -> int:
    """Messages ready in a queue, asked of the broker itself (the management API's counts lag
    by its stats interval)."""
    return _queue_state(amqp_uri, queue).message_count


def queue_consumers(amqp_uri: str, queue: str) -> int:
    """Consumers the broker itself counts on a queue (no stats interval either)."""
    return _queue_state(amqp_uri, queue).consumer_count


def _queue_state(amqp_uri: str, queue: str):
    import amqp

    from crmhub.runtime.messaging import connection_params

    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    try:
        return conn.channel().queue_declare(queue, passive=True)
    finally:
        conn.close()


# -- PostgreSQL ----------------------------------------------------------------------------------

def fresh_schema(pg_url: str, service: str) -> None:
    """Drop a service's schema so a test starts from an empty database."""
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{service}" CASCADE'))
    engine.dispose()


def hub_config(tmp_path: Path, amqp_uri: str, database_url: str = "", **extra) -> dict:
    web, ops = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "var"),
        "WEB_SERVER_ADDRESS": web,
        "OPS_ADDRESS": ops,
        "API_KEYS": API_KEYS,
        "RETRY_DELAYS_MS": [200, 500],
        "LOG_LEVEL": "INFO",
        "CONNECTORS": {"forms": {"allow_unknown_forms": True, "rate_limit_per_minute": 100000}},
    }
    config.update(extra)
    return config


def wait_for(predicate, timeout=10.0, interval=0.05, message="condition not met"):
    """Poll until ``predicate()`` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout}s")
        time.sleep(interval)


def observed(amqp_uri, exchange, queue, routing_key):
    """A connection and channel with ``queue`` bound to ``exchange``: what is published there."""
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    channel = conn.channel()
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    channel.queue_declare(queue, durable=False, auto_delete=False)
    channel.queue_bind(queue, exchange, routing_key)
    return conn, channel


# -- the contacts service as telephony calls it ---------------------------------

class Cards:
    """The contacts service as telephony calls it: the first lookup of a number creates its
    card (known: false), a later one finds it."""

    def __init__(self):
        self.asked: list[dict] = []
        self.identify_caller = self  # self.contacts.identify_caller.call_async(...)

    def call_async(self, request):
        known = any(r["number"] == request["number"] for r in self.asked)
        self.asked.append(request)
        card = {"contact_id": "c1", "known": known, "name": None, "company": None,
                "manager": None, "number": request["number"]}
        return SimpleNamespace(result=lambda: card)
