"""Upserts of many rows at once.

Given many parameter sets, psycopg2 runs an ``INSERT ... ON CONFLICT DO UPDATE`` once per row,
and SQLAlchemy compiles a multi-row VALUES statement anew for every size; a rebuild writes
millions of counter rows. On PostgreSQL rows go through psycopg2's ``execute_values`` (one
statement per page of rows, the SQL text built once per table); SQLite's own executemany is
fast already. Rows must not repeat a key within one call.
"""
from __future__ import annotations

import functools
import json

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from crmhub.runtime.db import is_postgres

PAGE = 1000


def upsert(conn, table: sa.Table, rows: list[dict], key: list[str],
           add: list[str] = (), replace: list[str] = (), newer: list[str] = ()) -> None:
    """INSERT ``rows``; on a key conflict add the ``add`` columns to the stored values and
    overwrite the ``replace`` ones, only where the row's ``newer`` columns compare greater
    (as a tuple) than the stored ones, if given."""
    if not rows:
        return
    columns = list(rows[0])
    if is_postgres(conn):
        sql = _postgres_sql(table, tuple(columns), tuple(key), tuple(add), tuple(replace),
                            tuple(newer))
        json_columns = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
        values = [tuple(json.dumps(r[c]) if c in json_columns and r[c] is not None else r[c]
                        for c in columns) for r in rows]
        from psycopg2.extras import execute_values

        cursor = conn.connection.driver_connection.cursor()
        try:
            execute_values(cursor, sql, values, page_size=PAGE)
        finally:
            cursor.close()
        return
    stmt = sqlite.insert(table)
    set_ = {**{c: table.c[c] + stmt.excluded[c] for c in add},
            **{c: stmt.excluded[c] for c in replace}}
    where = (sa.tuple_(*(stmt.excluded[c] for c in newer)) > sa.tuple_(*(table.c[c] for c in newer))
             if newer else None)
    conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=set_, where=where), rows)


@functools.cache
def _postgres_sql(table, columns, key, add, replace, newer) -> str:
    name = f'"{table.name}"'
    sets = [f'"{c}" = {name}."{c}" + EXCLUDED."{c}"' for c in add]
    sets += [f'"{c}" = EXCLUDED."{c}"' for c in replace]
    sql = (f"INSERT INTO {name} ({', '.join(_quoted(columns))}) VALUES %s "
           f"ON CONFLICT ({', '.join(_quoted(key))}) DO UPDATE SET {', '.join(sets)}")
    if newer:
        sql += (f" WHERE ({', '.join(f'EXCLUDED.{c}' for c in _quoted(newer))}) > "
                f"({', '.join(f'{name}.{c}' for c in _quoted(newer))})")
    return sql


def _quoted(columns) -> list[str]:
    return [f'"{c}"' for c in columns]
