"""Hot reads planned once per database connection.

A lookup by phone is an index probe that PostgreSQL runs in microseconds, yet parsing and
planning its text costs several times that on every call, and SQLAlchemy's compile and
result setup more on the client. A :class:`PreparedRead` sends ``PREPARE`` the first time
a pooled connection runs it and ``EXECUTE`` after that; PostgreSQL switches to a generic
plan after a few executions. On other databases (the embedded SQLite) it runs the statement
as usual.

Behind a pooler in transaction mode (PgBouncer before 1.21), a connection's prepared
statements do not follow it: set ``DB_PREPARED_STATEMENTS: false`` there.
"""
from __future__ import annotations

import re

import sqlalchemy as sa

_PYFORMAT = re.compile(r"%\((\w+)\)s")
_PREPARED = "crmhub_prepared"  # key in a pooled connection's info: names prepared on it
PREPARE_OPTION = "crmhub_prepare"  # an engine's execution option: True on PostgreSQL


class PreparedRead:
    """``statement`` (a SELECT with named bind parameters) prepared as ``name`` on each
    PostgreSQL connection that runs it. ``execute(conn, params)`` returns a result whose rows
    have the statement's column names and types."""

    def __init__(self, name: str, statement: sa.Select):
        self.name = f"crmhub_{name}"
        self.statement = statement
        self._pg: tuple[str, sa.TextClause] | None = None

    def execute(self, conn: sa.Connection, params: dict) -> sa.CursorResult:
        if not conn.get_execution_options().get(PREPARE_OPTION):
            return conn.execute(self.statement, params)
        prepare, execute = self._pg or self._compile(conn.dialect)
        prepared = conn.connection.info.setdefault(_PREPARED, set())
        if self.name not in prepared:
            conn.exec_driver_sql(prepare)
            prepared.add(self.name)
        return conn.execute(execute, params)

    def _compile(self, dialect) -> tuple[str, sa.TextClause]:
        compiled = self.statement.compile(dialect=dialect)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        order: list[str] = []

        def parameter_or_constant(match: re.Match) -> str:
            bind = binds[match.group(1)]
            if not bind.required and bind.value is not None:
                # A constant goes into the text: a generic plan sees it, and so may use a
                # partial index (``status = 'open'``) that a parameter would rule out.
                return _literal(bind, dialect).replace("%", "%%")
            if bind.key not in order:
                order.append(bind.key)
            return f"${order.index(bind.key) + 1}"

        body = _PYFORMAT.sub(parameter_or_constant, compiled.string).replace("%%", "%")
        types = [_sql_type(binds[name], dialect) for name in order]
        # Typed columns, matched by position: rows get the statement's result processing.
        columns = [sa.column(c.key, c.type) for c in self.statement.selected_columns]
        execute = sa.text(f"EXECUTE {self.name}(" + ", ".join(f":{n}" for n in order) + ")")
        self._pg = (f"PREPARE {self.name} ({', '.join(types)}) AS {body}",
                    execute.columns(*columns))
        return self._pg


def _literal(bind, dialect) -> str:
    render = bind.type.literal_processor(dialect)
    if render is None:
        raise TypeError(f"{bind.key}: a {bind.type} constant has no SQL literal")
    return render(bind.value)


def _sql_type(bind, dialect) -> str:
    """A parameter's type as its bind declares it; ``unknown`` (PostgreSQL infers it from
    its use) for an untyped bind. A parameter used twice must be typed where the two uses
    would infer different types (a text literal and a varchar column)."""
    if isinstance(bind.type, sa.types.NullType):
        return "unknown"
    return dialect.type_compiler_instance.process(bind.type)
