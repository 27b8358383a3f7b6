"""The database dependency on a real PostgreSQL: a connection that died while it sat in the
pool is replaced before a worker gets it."""
import pytest
import sqlalchemy as sa

from crmhub.runtime.db import make_engine, sqlalchemy_url
from support import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


def backend_pid(conn) -> int:
    return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


@pytest.mark.parametrize("idle_s, replaced", [(0, True), (3600, False)])
def test_a_connection_killed_while_idle_is_replaced_after_the_idle_time(pg_url, idle_s, replaced):
    engine = make_engine({"DATABASE_URL": pg_url, "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0,
                          "DB_PING_AFTER_IDLE_S": idle_s}, "contacts")
    admin = sa.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            first = backend_pid(conn)
        with admin.connect() as conn:  # what a server restart does to pooled connections
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        if replaced:
            with engine.connect() as conn:
                assert backend_pid(conn) != first
        else:  # used moments ago: not pinged, so the dead connection surfaces once
            with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
                backend_pid(conn)
            with engine.connect() as conn:
                assert backend_pid(conn) != first
    finally:
        engine.dispose()
        admin.dispose()
