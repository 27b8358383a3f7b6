"""Alembic migrations, one history per service, each in the service's own schema or file."""
from __future__ import annotations

import zlib
from importlib import import_module
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from crmhub.runtime.db import is_postgres, make_engine


def migrations_dir(service: str) -> Path | None:
    package = import_module(f"crmhub.services.{service}")
    path = Path(package.__file__).parent / "migrations"
    return path if (path / "env.py").exists() else None


def alembic_config(service: str, connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.attributes["connection"] = connection
    cfg.attributes["service"] = service
    return cfg


def upgrade(config: dict, service: str, revision: str = "head") -> bool:
    """Bring one service's tables to ``revision``; False if the service has no tables."""
    if migrations_dir(service) is None:
        return False
    engine = make_engine(config, service)
    try:
        with engine.begin() as conn:
            if is_postgres(engine):
                # Several processes may migrate at once (replicas started with --migrate, a
                # Job run twice): they take turns, and the later ones find nothing to do.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"),
                             {"id": zlib.crc32(f"crmhub-migrate:{service}".encode())})
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{service}"'))
            command.upgrade(alembic_config(service, conn), revision)
    finally:
        engine.dispose()
    return True


def run_env(context) -> None:
    """The body of every service's migrations/env.py (online mode only)."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=None,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
