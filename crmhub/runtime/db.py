"""Per-service database access: SQLAlchemy 2 Core, a transactional outbox and an inbox.

Each service owns its data: on PostgreSQL a schema named after the service (search_path),
on the embedded default a SQLite file ``<DATA_DIR>/<service>.db``.

Inside ``db.transaction()`` a worker may ``claim`` a message key (inbox: a redelivered message
finds its key taken and has no second effect) and ``emit`` events (outbox: written in the same
transaction as the state change; the relay publishes them with broker confirms and deletes
them). Either everything commits, or nothing does and nothing is published.
"""
from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from crmhub.contracts.base import new_hex_id
from crmhub.runtime.config import config_flag, data_dir
from crmhub.runtime.jsontext import read_json, write_json_text
from crmhub.runtime.metrics import INBOX_DUPLICATES
from crmhub.runtime.prepared import PREPARE_OPTION

log = structlog.get_logger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as an aware datetime: SQLite hands them back naive, and every stored
    time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


new_id = new_hex_id  # a new row id: 32 hex characters


def reliability_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The outbox and inbox tables, added to a service's own metadata."""
    outbox = sa.Table(
        "outbox", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    inbox = sa.Table(
        "inbox", metadata,
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
    )
    return outbox, inbox


# -- engines -----------------------------------------------------------------------------------

_green_patched = False


def _patch_psycopg_for_eventlet():
    """psycopg2 is a C driver: without a wait callback it blocks the whole eventlet hub."""
    global _green_patched
    if _green_patched:
        return
    import eventlet.patcher

    if eventlet.patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _green_patched = True


def sqlalchemy_url(url: str) -> str:
    """A user's ``postgresql://`` URL with the driver crmhub uses (psycopg2, made green)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def database_url(config: dict, service: str) -> str:
    url = config.get("DATABASE_URL") or ""
    if not url:
        return f"sqlite:///{data_dir(config) / (service + '.db')}"
    return sqlalchemy_url(url)


def make_engine(config: dict, service: str) -> sa.Engine:
    url = database_url(config, service)
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer, and a greenthread waiting on the pool yields
        # to the others, whereas one waiting on SQLite's lock would block the hub.
        engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                                  connect_args={"check_same_thread": False, "timeout": 30},
                                  json_serializer=write_json_text, json_deserializer=read_json)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # SQLite's own lower() folds ASCII only: searches of Cyrillic text use this one.
            dbapi_conn.create_function("casefold", 1, lambda text: text if text is None else text.casefold(),
                                       deterministic=True)

        return engine
    _patch_psycopg_for_eventlet()
    engine = sa.create_engine(
        url,
        pool_size=int(config.get("DB_POOL_SIZE", 10)),
        max_overflow=int(config.get("DB_MAX_OVERFLOW", 10)),
        connect_args={"options": f"-csearch_path={service},public",
                      "application_name": f"crmhub-{service}"},
        json_serializer=write_json_text,
        json_deserializer=read_json,
        execution_options={PREPARE_OPTION: config_flag(config, "DB_PREPARED_STATEMENTS", True)},
        # A statement run for many rows (telephony writes back a batch's calls) goes in pages
        # of statements, one round trip each, instead of one per row. Its rowcount is then not
        # the total: count with RETURNING (insert_ignoring_conflicts).
        executemany_mode="values_plus_batch",
    )
    _ping_when_idle(engine, float(config.get("DB_PING_AFTER_IDLE_S", 5)))
    _switch_autocommit_only(engine.dialect)
    return engine


def _switch_autocommit_only(dialect) -> None:
    """Reads (``ServiceDatabase.connect``) switch a pooled connection to autocommit, and the
    pool switches it back as it returns. SQLAlchemy does that through psycopg2's
    ``set_isolation_level``, which pins READ COMMITTED on the connection: every switch back then
    costs a round trip (``SET default_transaction_isolation TO DEFAULT``) and every BEGIN names
    the level. Switching ``autocommit`` alone leaves the server's default level in force and
    sends nothing: timed by hand on this machine, a read took 310-325 us of CPU instead of
    410-420. A transaction asking for another level still gets it."""
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE as _IDLE

    set_level = dialect.set_isolation_level

    def set_isolation_level(dbapi_connection, level):
        if dbapi_connection.info.transaction_status != _IDLE:
            set_level(dbapi_connection, level)  # which ends the transaction first
        elif level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
        elif level == dialect.default_isolation_level:
            dbapi_connection.autocommit = False
            dbapi_connection.isolation_level = None  # the server's default, left unnamed
        else:
            set_level(dbapi_connection, level)

    dialect.set_isolation_level = set_isolation_level


def _ping_when_idle(engine: sa.Engine, idle_seconds: float) -> None:
    """Like ``pool_pre_ping``, but only for a connection that sat in the pool for a while: a
    ping per checkout is a round trip on every lookup, and a connection used moments ago is
    alive. A dead one is replaced before use (a server restart costs no failed request)."""

    @sa.event.listens_for(engine.pool, "checkin")
    def _note_return(_dbapi_conn, record):
        record.info["returned_at"] = time.monotonic()

    @sa.event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()  # the ping's own transaction, not the borrower's
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool retries the checkout with a fresh connection.
            raise sa.exc.DisconnectionError(f"stale connection: {exc}") from exc


def is_postgres(engine_or_conn) -> bool:
    return engine_or_conn.dialect.name == "postgresql"


def insert_new_rows(conn, table: sa.Table, rows: list[dict], index_elements, *returning):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING ``returning``: the rows actually inserted."""
    dialect = postgresql if is_postgres(conn) else sqlite
    stmt = (dialect.insert(table).on_conflict_do_nothing(index_elements=index_elements)
            .returning(*returning))
    return conn.execute(stmt, rows).all() if rows else []


def insert_ignoring_conflicts(conn, table: sa.Table, rows, index_elements=None, returning=None):
    """INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite. Returns the number of rows
    inserted, or with ``returning`` (a column) its value for a single inserted row (None if
    the row already existed)."""
    dialect = postgresql if is_postgres(conn) else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    if returning is not None:
        return conn.execute(stmt.returning(returning), rows).scalar()
    if isinstance(rows, list) and len(rows) > 1:
        # One multi-row INSERT whose RETURNING counts the rows: an executemany's rowcount is
        # not the total on PostgreSQL, where executemany runs in pages (make_engine).
        return len(conn.execute(stmt.returning(*table.primary_key.columns), rows).all())
    return conn.execute(stmt, rows).rowcount


# -- the injected facade -----------------------------------------------------------------------

class Transaction:
    """One database transaction of a worker: the connection, the inbox and the outbox."""

    def __init__(self, conn, db: "ServiceDatabase"):
        self.conn = conn
        self._db = db
        self._events: list[dict] = []
        self.emitted = 0
        self.request_id: str | None = None

    def execute(self, *args, **kwargs):
        return self.conn.execute(*args, **kwargs)

    def claim(self, key: str) -> bool:
        """Record that the message ``key`` is handled; False if it was already."""
        inserted = insert_ignoring_conflicts(
            self.conn, self._db.inbox, [{"key": key[:300], "handled_at": utcnow()}])
        if not inserted:
            INBOX_DUPLICATES.labels(self._db.service).inc()
        return bool(inserted)

    def claim_many(self, keys: list[str]) -> set[str]:
        """``claim`` for many keys in one statement; returns the keys not handled before."""
        # In one order for every transaction: two batches claiming the same keys in different
        # orders would deadlock on the inbox's unique index.
        keys = sorted({k[:300] for k in keys})
        if not keys:
            return set()
        now = utcnow()
        claimed = {row.key for row in insert_new_rows(
            self.conn, self._db.inbox, [{"key": k, "handled_at": now} for k in keys], ["key"],
            self._db.inbox.c.key)}
        if len(claimed) < len(keys):
            INBOX_DUPLICATES.labels(self._db.service).inc(len(keys) - len(claimed))
        return claimed

    def emit(self, event_type: str, payload: dict, request_id: str | None = None) -> None:
        """Queue an event (already dumped by its contract schema) for publication on commit.
        ``request_id`` (or ``self.request_id``) overrides the worker's: a batch worker serves
        the requests of many messages."""
        request_id = request_id or self.request_id
        context = {**self._db.context, "request_id": request_id} if request_id else self._db.context
        self._events.append({"event_type": event_type, "payload": write_json_text(payload),
                             "headers": write_json_text(context), "created_at": utcnow()})
        self.emitted += 1

    def flush_events(self) -> None:
        """Write the queued events to the outbox (one statement), inside this transaction."""
        if self._events:
            self.conn.execute(self._db.outbox.insert(), self._events)
            self._events = []


class ServiceDatabase:
    def __init__(self, engine, metadata, service, relay=None, context=None):
        self.engine = engine
        self.metadata = metadata
        self.service = service
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]
        self.relay = relay
        self.context = context or {}

    @contextmanager
    def transaction(self, publish_now: bool = False):
        """``publish_now``: events a person is waiting on (a popup). The worker publishes the
        outbox itself once committed, passing a relay round in progress (its rows are locked),
        instead of waking the relay; what it cannot publish is left to the relay."""
        with self.engine.begin() as conn:
            tx = Transaction(conn, self)
            yield tx
            tx.flush_events()
        if tx.emitted and self.relay is not None:
            if not publish_now or not self._published_now():
                self.relay.wake()

    def _published_now(self) -> bool:
        """One relay round in this worker; False when the relay must take over (the round
        failed, or it was full and more rows may wait)."""
        try:
            return self.relay.relay_once() < self.relay.BATCH
        except Exception as exc:  # noqa: BLE001 - the rows stay in the outbox for the relay
            log.warning("outbox left to the relay", service=self.service, error=repr(exc))
            return False

    @contextmanager
    def autocommit(self):
        """A connection whose every statement commits on its own: for a write of one statement
        that emits no event, without the BEGIN and COMMIT round trips of a transaction."""
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def connect(self):
        """A connection for reading. On PostgreSQL it runs outside a transaction: each
        statement sees what was committed when it started, as inside one at READ COMMITTED,
        without a BEGIN and a ROLLBACK round trip around every read."""
        with self.engine.connect() as conn:
            if is_postgres(conn):
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn


def __getattr__(name: str):
    # The relay and the nameko provider live apart: what only reads and writes tables (the
    # catalog's import processes, scripts) starts without nameko, eventlet and the broker.
    if name in ("OutboxRelay", "Database"):
        from crmhub.runtime import outbox

        return getattr(outbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
