"""Apply a staged file to the catalog in set-based statements: find the rows that differ from
what is stored (``chg_<table>``), upsert only those and write the change events for exactly
those rows; deactivate what a full snapshot left out.

Every statement runs in the import's transaction: a package is applied whole or not at all.
"""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance
from crmhub.contracts.catalog import PriceChangedSchema, StockChangedSchema
from crmhub.runtime.db import is_postgres
from crmhub.services.catalog.staging import STAGES, key_columns, value_columns

EVENT_ROWS = 1000
EVENTS = {"stock": (ev.STOCK_CHANGED, StockChangedSchema),  # table -> (event, schema)
          "prices": (ev.PRICE_CHANGED, PriceChangedSchema)}
ARRIVED = "(coalesce(old_quantity, 0) <= 0 AND quantity > 0)"


def _group(kind: str) -> str:
    return "products" if kind == "import" else "catalog"


def _kinds(kind: str) -> str:
    return "('import')" if kind == "import" else "('offers', 'prices', 'rests')"


def _repeated_key(exc: sa.exc.DBAPIError) -> bool:
    """A key given twice in the file: the primary key cannot be built (unique_violation), or
    the upsert would change one row twice (cardinality_violation)."""
    return getattr(exc.orig, "pgcode", None) in ("23505", "21000")


class Applier:
    def __init__(self, conn: sa.Connection, job_id: str, now: dt.datetime, *, full: bool,
                 headers: str = "{}"):
        self.conn = conn
        self.job_id = job_id
        self.now = now
        self.full = full
        self.headers = headers
        self.postgres = is_postgres(conn)
        self.counts = {f"changed_{table}": 0 for table in STAGES if table not in ("digests", "blocks")}
        self.counts.update(arrivals=0, deactivated=0)
        self._events = {table: 0 for table in EVENTS}
        self.loaded_empty: set[str] = set()  # tables this import filled from empty

    def sql(self, text: str, **params):
        return self.conn.execute(sa.text(text), params)

    def create_change_tables(self) -> None:
        for table, (key, values) in STAGES.items():
            cols = ", ".join(f"{col} {kind}" for col, kind in key + values)
            old = ", ".join(f"old_{col} {kind}" for col, kind in values)
            suffix = " ON COMMIT DROP" if self.postgres else ""
            if not self.postgres:
                self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.chg_{table}")
            self.conn.exec_driver_sql(
                f"CREATE TEMP TABLE chg_{table} ({cols}, {old}, is_new boolean){suffix}")

    # -- a table ---------------------------------------------------------------------------------
    def apply_table(self, table: str) -> None:
        """Apply ``stage_<table>`` (every row of the file): upsert the rows that changed and
        announce them. A file rarely gives a key twice, so its rows are first taken as they
        are; only if a key repeats is the work redone keeping each key's last row (which
        costs a sort of the whole file)."""
        empty = self._is_empty(table)
        for dedupe in (False, True):
            try:
                with self.conn.begin_nested():
                    counts = self._load_empty(table, dedupe) if empty else self._apply_changes(table, dedupe)
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError) as exc:
                if dedupe or not _repeated_key(exc):
                    raise
                continue
            break
        for name, count in counts.items():
            self.counts[name] += count
        if empty:
            self.loaded_empty.add(table)

    def _apply_changes(self, table: str, dedupe: bool) -> dict:
        changed = self._changes(table, dedupe)
        counts = {f"changed_{table}": changed, "arrivals": 0}
        if changed:
            if table == "stock":
                counts["arrivals"] = self.sql(f"SELECT count(*) FROM chg_stock WHERE {ARRIVED}").scalar()
            self._upsert_changes(table)
            if table in EVENTS:
                self._emit(table)
        return counts

    def _is_empty(self, table: str) -> bool:
        return self.postgres and self.sql(f"SELECT NOT EXISTS (SELECT 1 FROM {table})").scalar()

    def _load_empty(self, table: str, dedupe: bool) -> dict:
        """The first load of a table (PostgreSQL): every row is new, so the rows go in without
        the table's indexes, which are then built once: several times faster than
        maintaining them row by row. The table stays locked until the import commits (it was
        empty anyway)."""
        key, values = key_columns(table), value_columns(table)
        cols = ", ".join(key + values)
        constraint = self.sql("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                              "AND contype = 'p'", t=table).scalar()
        indexes = self.sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND "
                           "schemaname = current_schema() AND indexname <> :pk", t=table,
                           pk=constraint).all()
        self.sql(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
        for index in indexes:
            self.sql(f"DROP INDEX {index.indexname}")
        count = self.sql(f"INSERT INTO {table} ({cols}, updated_at) SELECT {cols}, :now "
                         f"FROM {self._latest(table, dedupe)} s", now=self.now).rowcount
        # A key given twice fails here (IntegrityError): apply_table then keeps the last rows.
        self.sql(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} PRIMARY KEY ({', '.join(key)})")
        for index in indexes:
            self.sql(index.indexdef)
        self.sql(f"ANALYZE {table}")  # the next import plans its joins on what is there now
        counts = {f"changed_{table}": count, "arrivals": 0}
        if table == "stock":
            counts["arrivals"] = self.sql("SELECT count(*) FROM stock WHERE quantity > 0").scalar()
        if table in EVENTS and count:
            olds = ", ".join(f"NULL::{kind} AS old_{col}" for col, kind in STAGES[table][1])
            self._emit(table, source=f"(SELECT *, {olds} FROM {table}) loaded")
        return counts

    def _distinct(self, a: str, b: str) -> str:
        return f"{a} IS DISTINCT FROM {b}" if self.postgres else f"{a} IS NOT {b}"

    def _latest(self, table: str, dedupe: bool = True) -> str:
        """The staged rows, one per key: its last occurrence (SQLite stages are keyed)."""
        if not self.postgres or not dedupe:
            return f"stage_{table}"
        keys = ", ".join(key_columns(table))
        return f"(SELECT DISTINCT ON ({keys}) * FROM stage_{table} ORDER BY {keys}, seq DESC)"

    def _changes(self, table: str, dedupe: bool = True) -> int:
        """Fill ``chg_<table>`` with the batch's rows that differ from the stored ones (the
        stored values as ``old_<column>``); returns their count."""
        key, values = key_columns(table), value_columns(table)
        differs = " OR ".join([f"t.{key[0]} IS NULL"] + [self._distinct(f"t.{c}", f"s.{c}") for c in values])
        join = " AND ".join(f"t.{k} = s.{k}" for k in key)
        self.sql(f"{'TRUNCATE' if self.postgres else 'DELETE FROM'} chg_{table}")
        cols = key + values + tuple(f"old_{c}" for c in values) + ("is_new",)
        return self.sql(
            f"INSERT INTO chg_{table} ({', '.join(cols)}) SELECT "
            + ", ".join(f"s.{c}" for c in key + values) + ", "
            + ", ".join(f"t.{c}" for c in values) + f", t.{key[0]} IS NULL"
            + f" FROM {self._latest(table, dedupe)} s LEFT JOIN {table} t ON {join} WHERE {differs}").rowcount

    def _upsert_changes(self, table: str) -> None:
        key, values = key_columns(table), value_columns(table)
        cols = key + values
        updates = ", ".join(f"{c} = excluded.{c}" for c in values + ("updated_at",))
        # "WHERE true" lets SQLite tell the upsert's ON CONFLICT from a join condition.
        self.sql(f"INSERT INTO {table} ({', '.join(cols)}, updated_at) "
                 f"SELECT {', '.join(cols)}, :now FROM chg_{table} WHERE true "
                 f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}", now=self.now)

    # -- the end of the file -------------------------------------------------------------------------
    def upsert_reference(self, table: sa.Table, rows: list[dict]) -> None:
        """Price types, warehouses, groups, properties: few, upserted as sent."""
        if not rows:
            return
        if self.postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table)
        key = [c.name for c in table.primary_key]
        stmt = stmt.on_conflict_do_update(index_elements=key, set_={
            c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key})
        latest = {tuple(row[k] for k in key): row for row in rows}
        self.conn.execute(stmt, list(latest.values()))

    def _listed(self, id_column: str, table: str = "") -> str:
        """SQL: the record ``id_column`` is in the file: parsed into ``stage_<table>``, or
        unchanged (only hashed)."""
        parsed = f"EXISTS (SELECT 1 FROM stage_{table} s WHERE s.id = {id_column})" if table else "false"
        return f"({parsed} OR EXISTS (SELECT 1 FROM stage_digests d WHERE d.record_id = {id_column}))"

    def deactivate_absent(self, table: str) -> None:
        """A full snapshot: what it does not list is no longer sold."""
        if table in self.loaded_empty:
            return  # it holds only what the file lists
        self.counts["deactivated"] += self.sql(
            f"UPDATE {table} SET active = false, updated_at = :now WHERE active AND "
            f"NOT {self._listed(f'{table}.id', table)}", now=self.now).rowcount

    def zero_absent_stock(self) -> None:
        """A full stock snapshot: stock it does not list is none."""
        if "stock" in self.loaded_empty:
            return
        self.sql(f"{'TRUNCATE' if self.postgres else 'DELETE FROM'} chg_stock")
        # An offer listed unchanged keeps its stock: it is what the file says.
        zeroed = self.sql(
            "INSERT INTO chg_stock (offer_id, warehouse_id, quantity, old_quantity, is_new) "
            "SELECT t.offer_id, t.warehouse_id, 0, t.quantity, false FROM stock t "
            "WHERE t.quantity <> 0 AND NOT EXISTS (SELECT 1 FROM stage_stock s "
            "WHERE s.offer_id = t.offer_id AND s.warehouse_id = t.warehouse_id) AND NOT EXISTS "
            "(SELECT 1 FROM stage_digests d WHERE d.record_id = t.offer_id AND NOT d.parsed)").rowcount
        if zeroed:
            self.counts["changed_stock"] += zeroed
            self._upsert_changes("stock")
            self._emit("stock")

    # -- digests -----------------------------------------------------------------------------------
    def generation(self, kind: str) -> int:
        """The digest generation of the files of ``kind``'s group."""
        return self.sql("SELECT generation FROM digest_generations WHERE grp = :g",
                        g=_group(kind)).scalar() or 0

    def has_digests(self, kind: str) -> bool:
        """Whether blocks of files of ``kind`` are known in the current generation (if not,
        as on a first load, the parsing processes need not ask)."""
        return self.sql("SELECT EXISTS (SELECT 1 FROM block_digests WHERE kind = :k AND "
                        "generation = :g)", k=kind, g=self.generation(kind)).scalar()

    def keep_digests(self, kind: str) -> None:
        """A block digest holds while what it describes is what is stored. An import that
        changed nothing keeps every digest (and adds those of blocks that changed only in
        form). One that changed rows may have made other files' digests wrong: it starts a
        new generation of its group, in which this file's blocks are the only ones known."""
        changed = any(v for k, v in self.counts.items() if k.startswith("changed_")) \
            or self.counts["deactivated"]
        generation = self.generation(kind)
        if changed:
            generation += 1
            if self.sql("UPDATE digest_generations SET generation = :n WHERE grp = :g",
                        n=generation, g=_group(kind)).rowcount == 0:
                self.sql("INSERT INTO digest_generations (grp, generation) VALUES (:g, :n)",
                         g=_group(kind), n=generation)
            self.sql(f"DELETE FROM block_digests WHERE kind IN {_kinds(kind)} AND generation < :n",
                     n=generation)
        blocks = "stage_blocks" if changed else "(SELECT * FROM stage_blocks WHERE parsed) b"
        for dedupe in (False, True):  # a block given twice: its last digest
            source = (f"(SELECT DISTINCT ON (block_key) * FROM {blocks} ORDER BY block_key, seq DESC) s"
                      if dedupe and self.postgres else blocks)
            try:
                with self.conn.begin_nested():
                    self.sql(f"INSERT INTO block_digests (kind, block_key, digest, generation) "
                             f"SELECT :kind, block_key, digest, :n FROM {source} WHERE true "
                             f"ON CONFLICT (kind, block_key) DO UPDATE SET digest = excluded.digest, "
                             f"generation = excluded.generation", kind=kind, n=generation)
                return
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError) as exc:
                if dedupe or not _repeated_key(exc):
                    raise

    # -- events ----------------------------------------------------------------------------------
    def _item_sql(self, table: str) -> list[tuple[str, str]]:
        """(name, SQL expression) of each field of an event item, from ``chg_<table>``."""
        if self.postgres:
            product, decimal = "split_part(offer_id, '#', 1)", "{}::text"
        else:
            product = ("CASE WHEN instr(offer_id, '#') > 0 THEN substr(offer_id, 1, "
                       "instr(offer_id, '#') - 1) ELSE offer_id END")
            decimal = "CASE WHEN {0} IS NULL THEN NULL ELSE printf('%.{1}f', {0}) END"
        if table == "stock":
            return [("offer_id", "offer_id"), ("product_id", product),
                    ("warehouse_id", "warehouse_id"), ("quantity", decimal.format("quantity", 3)),
                    ("previous", decimal.format("old_quantity", 3)), ("arrived", ARRIVED)]
        return [("offer_id", "offer_id"), ("product_id", product), ("price_type_id", "price_type_id"),
                ("amount", decimal.format("amount", 2)), ("previous", decimal.format("old_amount", 2)),
                ("currency", "currency")]

    def _emit(self, table: str, source: str | None = None) -> None:
        """Write the events of the changed rows (``chg_<table>``, or ``source`` with the same
        columns) to the outbox, EVENT_ROWS rows per event."""
        event_type, schema = EVENTS[table]
        fields = self._item_sql(table)
        order = ", ".join(key_columns(table))
        first = self._events[table]
        source = source or f"chg_{table}"
        if self.postgres:
            written = self._emit_in_sql(event_type, source, fields, first)
        else:
            written = self._emit_dumped(event_type, schema, source, fields, order, first)
        self._events[table] += written

    def _event_id(self, event_type: str, number: int) -> str:
        return f"{self.job_id}-{event_type}-{number}"

    def _emit_dumped(self, event_type, schema, source, fields, order, first) -> int:
        select = ", ".join(f"{expr} AS {name}" for name, expr in fields)
        query = f"SELECT {select} FROM {source} ORDER BY {order}"
        rows = [dict(row) for row in self.sql(query).mappings()]
        outbox = []
        for n in range(0, len(rows), EVENT_ROWS):
            items = rows[n:n + EVENT_ROWS]
            for item in items:
                if "arrived" in item:
                    item["arrived"] = bool(item["arrived"])
            payload = instance(schema).dump({
                "event_id": self._event_id(event_type, first + n // EVENT_ROWS),
                "occurred_at": self.now, "import_id": self.job_id, "items": items})
            outbox.append({"event_type": event_type, "payload": json.dumps(payload),
                           "headers": self.headers, "created_at": self.now})
        if outbox:
            self.conn.execute(sa.text("INSERT INTO outbox (event_type, payload, headers, created_at) "
                                      "VALUES (:event_type, :payload, :headers, :created_at)"), outbox)
        return len(outbox)

    def _emit_in_sql(self, event_type, source, fields, first) -> int:
        """The same events, built by PostgreSQL: dumping a million changed rows with
        marshmallow would cost the importer minutes. Their payloads are those of the event's
        schema (a contract test loads them with it). Rows go to events, and events to the
        outbox, in no particular order: sorting two million keys first cost more than building
        the events, and sorting the built events (hundreds of MB) spilled to disk."""
        item = "json_build_object(" + ", ".join(f"'{name}', {expr}" for name, expr in fields) + ")"
        return self.sql(
            "INSERT INTO outbox (event_type, payload, headers, created_at) "
            "SELECT :event_type, json_build_object("
            "'event_id', :job || '-' || :event_type || '-' || (n + :first), "
            "'schema_version', 1, 'occurred_at', :occurred, 'import_id', :job, "
            "'items', json_agg(item))::text, :headers, :now FROM ("
            f"SELECT {item} AS item, pos, (pos - 1) / {EVENT_ROWS} AS n FROM ("
            f"SELECT *, row_number() OVER () AS pos FROM {source}) numbered"
            ") items GROUP BY n",
            event_type=event_type, job=self.job_id, first=first, occurred=self.now.isoformat(),
            headers=self.headers, now=self.now).rowcount
