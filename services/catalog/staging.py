"""Bulk loading of parsed rows into temporary stage tables: COPY on PostgreSQL (multi-row
inserts on SQLite), batch by batch in a writer thread, so the database loads one batch while
the parser reads the next.

Every table lives in the import's own transaction (dropped at its end): a failed import leaves
nothing behind, and concurrent imports never see each other's rows.
"""
from __future__ import annotations

import io
import queue
import threading

import sqlalchemy as sa

from crmhub.runtime.db import is_postgres
from crmhub.services.catalog.rangeparse import copy_line

# Per table: its key, then its other columns, with their types. Batch tables also have ``seq``,
# the row's position in the file: a row given twice in a batch counts as its last occurrence.
STAGES = {
    "products": ((("id", "text"),),
                 (("article", "text"), ("barcode", "text"), ("name", "text"), ("unit", "text"),
                  ("group_ids", "text"), ("properties", "text"), ("active", "boolean"))),
    "offers": ((("id", "text"),),
               (("product_id", "text"), ("characteristic_id", "text"), ("article", "text"),
                ("name", "text"), ("characteristics", "text"), ("active", "boolean"))),
    "prices": ((("offer_id", "text"), ("price_type_id", "text")),
               (("amount", "numeric(18,2)"), ("currency", "text"))),
    "stock": ((("offer_id", "text"), ("warehouse_id", "text")), (("quantity", "numeric(18,3)"),)),
    # Every record of a file read by parsing processes, with its block; ``parsed``: the block
    # changed since it was last applied, so its records' rows are in the other stages.
    "digests": ((("record_id", "text"),), (("block_key", "text"), ("parsed", "boolean"))),
    "blocks": ((("block_key", "text"),), (("digest", "text"), ("parsed", "boolean"))),
}
BATCH_ROWS = 20_000


def key_columns(table: str) -> tuple[str, ...]:
    return tuple(col for col, _ in STAGES[table][0])


def value_columns(table: str) -> tuple[str, ...]:
    return tuple(col for col, _ in STAGES[table][1])


def create_stage_tables(conn: sa.Connection) -> None:
    postgres = is_postgres(conn)
    for table, (key, values) in STAGES.items():
        cols = ", ".join(f"{col} {kind}" for col, kind in key + values)
        if postgres:
            conn.exec_driver_sql(f"CREATE TEMP TABLE stage_{table} (seq bigint, {cols}) ON COMMIT DROP")
        else:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.stage_{table}")
            # Keyed: INSERT OR REPLACE keeps a row's last occurrence, as DISTINCT ON does.
            keys = ", ".join(col for col, _ in key)
            conn.exec_driver_sql(f"CREATE TEMP TABLE stage_{table} (seq integer, {cols}, "
                                 f"PRIMARY KEY ({keys}))")


class Stager:
    """Collects rows per table and hands full batches to a writer thread, which loads each
    into ``stage_<table>``. Rows also come already formatted for COPY (``add_text``), from
    parsing processes."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.postgres = is_postgres(conn)
        self._rows: dict[str, list] = {name: [] for name in STAGES}
        self._seq = 0
        # Two batches waiting at most: the parser never runs far ahead of the database.
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="catalog-stager", daemon=True)

    def __enter__(self):
        create_stage_tables(self.conn)
        self._thread.start()
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            for table in STAGES:
                if self._rows[table]:
                    self._send(table)
        self._stop()
        if exc_type is None:
            self._raise_writer_error()
            if self.postgres:  # the planner then knows a 10,000-row package from a full one
                for table in STAGES:
                    self.conn.exec_driver_sql(f"ANALYZE stage_{table}")
        return False

    def add(self, table: str, row: tuple) -> None:
        self._seq += 1
        rows = self._rows[table]
        rows.append((self._seq, *row))
        if len(rows) >= BATCH_ROWS:
            self._send(table)

    def add_text(self, table: str, text: str) -> None:
        """Rows in COPY text format (PostgreSQL), ``seq`` first."""
        self._raise_writer_error()
        self._queue.put((table, text))

    def _send(self, table: str) -> None:
        self._raise_writer_error()
        rows, self._rows[table] = self._rows[table], []
        if self.postgres:
            # Formatted here, in the parsing thread: the writer thread then only waits on I/O.
            text = "".join(map(copy_line, rows))
            self._queue.put((table, text))
        else:
            self._queue.put((table, rows))

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the parser finds the error at its next batch
            table, data = item
            try:
                self._load(table, data)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the parsing thread
                self._error = exc

    def _load(self, table: str, data) -> None:
        key, values = STAGES[table]
        columns = ", ".join(("seq",) + tuple(col for col, _ in key + values))
        if self.postgres:
            cursor = self.conn.connection.dbapi_connection.cursor()
            try:
                cursor.copy_expert(f"COPY stage_{table} ({columns}) FROM STDIN", io.StringIO(data))
            finally:
                cursor.close()
        else:
            marks = ", ".join("?" * (1 + len(key) + len(values)))
            self.conn.connection.dbapi_connection.executemany(
                f"INSERT OR REPLACE INTO stage_{table} ({columns}) VALUES ({marks})", data)
