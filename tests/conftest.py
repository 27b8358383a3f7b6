"""Shared fixtures: an isolated RabbitMQ vhost and PostgreSQL database per test or run, and
hub subprocesses. RabbitMQ and PostgreSQL are the real servers on this machine (`make test`
starts them and enables the RabbitMQ management API, which creates the vhosts)."""
import eventlet

eventlet.monkey_patch()  # noqa: E402 - must precede every other import that touches sockets

import uuid

import pytest
import sqlalchemy as sa

from crmhub.runtime.db import sqlalchemy_url
from crmhub.testing import HubProcess
from support import (
    ADMIN_KEY,
    AMQP_BASE,
    PG_ADMIN_URL,
    drop_vhost,
    fresh_schema,
    hub_config,
    make_vhost,
)


@pytest.fixture
def amqp_uri():
    """A fresh vhost for one test: queues and exchanges of other tests are invisible."""
    vhost = make_vhost()
    yield f"{AMQP_BASE}/{vhost}"
    from crmhub.runtime.messaging import close_publishers
    from crmhub.runtime.rpc import close_unconfirmed_channels

    close_publishers()
    close_unconfirmed_channels()
    drop_vhost(vhost)


@pytest.fixture(scope="session")
def pg_url():
    """An empty PostgreSQL database for this test run, dropped at the end."""
    name = f"crmhub_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_database(request, tmp_path):
    """``migrated_database(service)``: config selecting each database backend in turn, with
    the service's tables created afresh."""
    from crmhub.runtime.migrate import upgrade

    def migrate(service: str) -> dict:
        if request.param == "postgres":
            url = request.getfixturevalue("pg_url")
            fresh_schema(url, service)
            config = {"DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
        else:
            config = {"DATABASE_URL": "", "DATA_DIR": str(tmp_path)}
        upgrade(config, service)
        return config

    return migrate


@pytest.fixture
def database_config(migrated_database):
    """Config selecting each database backend in turn, with the contacts tables migrated."""
    return migrated_database("contacts")


# -- hub processes -------------------------------------------------------------------------------

@pytest.fixture
def start_hub(tmp_path, amqp_uri):
    """Start `crmhub run` with a config of this test's own; stopped at the end."""
    hubs = []

    def start(database_url="", services=(), name="hub", **extra):
        config = hub_config(tmp_path, amqp_uri, database_url, **extra)
        hub = HubProcess(tmp_path, name, config, services, migrate=True, api_key=ADMIN_KEY)
        hubs.append(hub)
        return hub.wait_healthy()

    yield start
    for hub in hubs:
        hub.stop()



# -- a PBX vendor's cloud ----------------------------------------------------------------------

@pytest.fixture
def mango():
    """Mango Office's API, spoken by a local server (crmhub.plugins.mango.fake_api)."""
    from crmhub.plugins.mango.fake_api import FakeMangoApi

    with FakeMangoApi() as fake:
        yield fake
