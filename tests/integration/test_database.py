"""The database dependency on a real PostgreSQL: a connection that died while it sat in the
pool is replaced before a worker gets it."""
import subprocess

import pytest
import sqlalchemy as sa

from crmhub.runtime.db import ServiceDatabase, make_engine, sqlalchemy_url
from crmhub.services.contacts.models import metadata
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


def test_processes_migrating_at_once_take_turns(pg_url, tmp_path):
    """Replicas started with --migrate (or a migration Job run twice) at the same moment: every
    one succeeds and the tables exist once."""
    from support import REPO, fresh_schema

    services = ["contacts", "deals", "reporting"]
    for service in services:
        fresh_schema(pg_url, service)
    config = tmp_path / "migrate.yaml"
    config.write_text(f"DATABASE_URL: {pg_url}\nLOG_LEVEL: WARNING\n")
    command = [str(REPO / ".venv/bin/crmhub"), "migrate", "--config", str(config)]
    for service in services:
        command += ["--service", service]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
    outcomes = [(run.wait(timeout=180), run.stderr.read()) for run in runs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    try:
        with engine.connect() as conn:
            for service in services:
                versions = conn.execute(sa.text(
                    f'SELECT count(*) FROM "{service}".alembic_version')).scalar()
                assert versions == 1, service
    finally:
        engine.dispose()


def test_json_columns_read_back_what_only_the_standard_parser_reads(pg_url):
    """JSON columns are parsed by orjson, which refuses integers beyond 64 bits: those still
    come back as they were stored."""
    engine = make_engine({"DATABASE_URL": pg_url}, "contacts")
    table = sa.Table("json_values", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("doc", sa.JSON), sa.Column("docb", sa.dialects.postgresql.JSONB))
    values = {1: {"name": "Анна", "n": [1, 2.5, None, True]}, 2: {"vendor_id": 2 ** 70}}
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS contacts"))
            table.create(conn)
            conn.execute(table.insert(), [{"id": k, "doc": v, "docb": v} for k, v in values.items()])
        with engine.connect() as conn:
            stored = {r.id: (r.doc, r.docb) for r in conn.execute(sa.select(table))}
        assert stored[1] == (values[1], values[1])
        assert stored[2] == (values[2], values[2]) and isinstance(stored[2][0]["vendor_id"], int)
    finally:
        engine.dispose()


def test_a_service_reading_between_rpc_calls_holds_no_transaction_open(pg_url):
    """A worker reads, then waits on another service: its connection must not sit "idle in
    transaction" (an open snapshot holds back VACUUM, and the BEGIN and ROLLBACK are two round
    trips on every read)."""
    db = ServiceDatabase(make_engine({"DATABASE_URL": pg_url}, "contacts"), metadata, "contacts")
    admin = sa.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    state = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
    try:
        with db.connect() as conn:
            pid = backend_pid(conn)
            with admin.connect() as watcher:
                assert watcher.execute(state, {"pid": pid}).scalar_one() == "idle"
        with db.transaction() as tx:  # writes still commit or roll back as one
            pid = backend_pid(tx.conn)
            with admin.connect() as watcher:
                assert watcher.execute(state, {"pid": pid}).scalar_one() == "idle in transaction"
    finally:
        db.engine.dispose()
        admin.dispose()



def test_a_read_sends_its_statements_and_nothing_more_and_transactions_keep_their_level(pg_url):
    """A read switches its pooled connection to autocommit and the pool switches it back: that
    sends nothing (it once cost a SET round trip per read). Transactions run at the server's
    default level, or at the one they ask for, and the next is back at the default."""
    engine = make_engine({"DATABASE_URL": pg_url, "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0},
                         "contacts")
    db = ServiceDatabase(engine, metadata, "contacts")
    admin = sa.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    last_statement = sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
    level = sa.text("SHOW transaction_isolation")
    try:
        for _ in range(2):
            with db.transaction() as tx:
                assert tx.conn.execute(level).scalar() == "read committed"
            with db.connect() as conn:
                pid = backend_pid(conn)
                conn.execute(sa.text("SELECT 41 + 1"))
            with admin.connect() as watcher:
                assert watcher.execute(last_statement, {"pid": pid}).scalar_one() == \
                    "SELECT 41 + 1"
            with engine.connect().execution_options(isolation_level="SERIALIZABLE") as conn:
                assert conn.execute(level).scalar() == "serializable"
    finally:
        engine.dispose()
        admin.dispose()


def test_an_autocommitted_write_is_one_statement_committed_on_its_own(pg_url):
    """``db.autocommit()``: a one-statement write (a click-to-call's dialing record) is
    committed without a transaction around it, so the server sees the statement and no BEGIN
    or COMMIT; the pooled connection's next transaction is a transaction again."""
    from crmhub.runtime.migrate import upgrade
    from support import fresh_schema

    fresh_schema(pg_url, "contacts")
    upgrade({"DATABASE_URL": pg_url}, "contacts")
    engine = make_engine({"DATABASE_URL": pg_url, "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0},
                         "contacts")
    db = ServiceDatabase(engine, metadata, "contacts")
    admin = sa.create_engine(sqlalchemy_url(pg_url), isolation_level="AUTOCOMMIT")
    inbox = metadata.tables["inbox"]
    try:
        with db.autocommit() as conn:
            pid = backend_pid(conn)
            conn.execute(inbox.insert().values(key="k-1", handled_at=sa.func.now()))
            with admin.connect() as watcher:  # committed before the connection is returned
                assert watcher.execute(sa.text(
                    "SELECT query, state FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid}).one() == (
                    "INSERT INTO inbox (key, handled_at) VALUES ('k-1', now())", "idle")
                assert watcher.execute(sa.text(
                    "SELECT count(*) FROM contacts.inbox WHERE key = 'k-1'")).scalar() == 1
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.conn.execute(inbox.insert().values(key="k-2", handled_at=sa.func.now()))
            raise RuntimeError("rolled back")
        with db.connect() as conn:
            assert conn.execute(sa.select(inbox.c.key)).scalars().all() == ["k-1"]
    finally:
        engine.dispose()
        admin.dispose()


def prepared_names(conn) -> set[str]:
    return set(conn.execute(sa.text("SELECT name FROM pg_prepared_statements")).scalars())


@pytest.mark.parametrize("prepare", [True, False])
def test_the_lookup_by_number_is_planned_once_per_connection_unless_turned_off(pg_url, prepare):
    """Prepared on a connection's first lookup and reused after; a connection that died is
    replaced and prepares again; ``DB_PREPARED_STATEMENTS: false`` (for a pooler in
    transaction mode) sends the plain query. Either way the card reads the same."""
    from crmhub.runtime.migrate import upgrade
    from crmhub.services.contacts import logic
    from support import fresh_schema

    fresh_schema(pg_url, "contacts")
    upgrade({"DATABASE_URL": pg_url}, "contacts")
    engine = make_engine({"DATABASE_URL": pg_url, "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0,
                          "DB_PING_AFTER_IDLE_S": 0,
                          "DB_PREPARED_STATEMENTS": "true" if prepare else "false"}, "contacts")
    admin = sa.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    db = ServiceDatabase(engine, metadata, "contacts")
    try:
        with db.transaction() as tx:
            created = logic.create_contact(tx, {"name": "Ольга", "phones": ["8 916 555-44-33"],
                                                "emails": ["olga@example.com"]})
        expected = {"items": [created], "total": 1, "limit": 5, "offset": 0}
        for attempt in range(2):
            with db.connect() as conn:
                for _ in range(3):
                    assert logic.search(conn, phone="+7 916 555 44 33", limit=5) == expected
                assert logic.search(conn, phone="+7 916 000 00 00", limit=5)["items"] == []
                names = prepared_names(conn)
                pid = backend_pid(conn)
            assert names == ({"crmhub_cards_by_phone"} if prepare else set())
            if attempt == 0:  # a server restart, as the pool sees it
                with admin.connect() as conn:
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()
        admin.dispose()


def test_a_prepared_reads_constants_stay_in_its_text_so_a_partial_index_serves_it(pg_url):
    """The popup's open deals come from a partial index (status = 'open'). Prepared with the
    status as a parameter, the plan PostgreSQL caches after five calls could not use it."""
    from crmhub.runtime.migrate import upgrade
    from crmhub.services.contacts import card_deals
    from support import fresh_schema

    fresh_schema(pg_url, "contacts")
    upgrade({"DATABASE_URL": pg_url}, "contacts")
    engine = make_engine({"DATABASE_URL": pg_url}, "contacts")
    try:
        with engine.connect() as conn:
            assert card_deals.open_deals(conn, "c1", 5) == []  # prepares it
            conn.execute(sa.text("SET plan_cache_mode = force_generic_plan"))
            conn.execute(sa.text("SET enable_seqscan = off"))
            plan = "\n".join(conn.execute(sa.text(
                "EXPLAIN EXECUTE crmhub_open_deals_of_card('c1', 5)")).scalars())
        assert "ix_card_deals_open" in plan, plan
    finally:
        engine.dispose()
