"""Import one CommerceML file into the catalog, whole or not at all.

The file is read as a stream (constant memory however large) and its rows are staged in bulk
while it is read; then one set of statements applies only what changed and writes the change
events. It runs in a process of its own (``python -m crmhub.services.catalog.importer JOB``,
started by the catalog service) so parsing never stalls a service's event loop, or in-process
for ``crmhub import-1c``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
import structlog

from crmhub.plugins.onec.commerceml import read_package
from crmhub.plugins.onec.xmlsafety import ExchangeFileError, exchange_file_kind
from crmhub.runtime.db import make_engine, utcnow
from crmhub.services.catalog import jobs, parallel
from crmhub.services.catalog.apply import Applier
from crmhub.services.catalog.models import groups, price_types, properties, warehouses
from crmhub.services.catalog.rangeparse import rows_of
from crmhub.services.catalog.staging import Stager

log = structlog.get_logger(__name__)
PROGRESS_EVERY = 10_000
HEARTBEAT_SECONDS = 2.0


class ImportFailed(Exception):
    """The package was refused; nothing of it was applied. ``reason`` goes back to 1C."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Progress:
    """How far an import is, read by its heartbeat (and a progress bar)."""

    records: int = 0
    bytes_read: int = 0
    bytes_total: int | None = None


class CountingReader(io.RawIOBase):
    """A stream that adds what is read from it to ``progress.bytes_read``."""

    def __init__(self, stream, progress: Progress):
        self._stream = stream
        self._progress = progress

    def readable(self):
        return True

    def read(self, size=-1):
        data = self._stream.read(size)
        self._progress.bytes_read += len(data)
        return data

    def close(self):
        self._stream.close()
        super().close()


def read_into(path: Path, kind: str, stager: Stager, on_package, progress: Progress,
              workers=1, parallel_from=parallel.MIN_PARALLEL_BYTES, generation=None) -> dict:
    """Read the file into the stager (its records by ``workers`` processes when it is big);
    returns what applying it needs to know. ``generation``: of the block digests to compare
    with (None: none are known, every block is parsed)."""
    reference = {"groups": [], "properties": [], "price_types": [], "warehouses": []}
    read = {"records": 0, "products": 0, "offers": 0, "has_stock": False}
    plan = parallel.plan(path, kind, workers, parallel_from) if stager.postgres else None
    progress.bytes_total = path.stat().st_size
    source = parallel.skeleton(path, plan) if plan else open(path, "rb")
    with CountingReader(source, progress) as stream:
        records = read_package(stream, kind_hint=kind)
        read_records(records, kind, stager, on_package, read, reference, progress)
    if plan:
        def counted(records, bytes_read):
            read["records"] += records
            read["products" if kind == "import" else "offers"] += records
            progress.records, progress.bytes_read = read["records"], progress.bytes_read + bytes_read

        url = stager.conn.engine.url.set(drivername="postgresql")
        dsn = None if generation is None else url.render_as_string(hide_password=False)
        read["has_stock"] |= parallel.read_ranges(path, kind, plan, stager, counted, dsn,
                                                  generation or 0)
    return {"reference": reference, **read}


def read_records(records, kind, stager, on_package, read, reference, progress) -> None:
    """Stage the products and offers of ``records``; collect the rest into ``reference``."""
    package = None
    for record_kind, record in records:
        if record_kind in ("offer", "product"):
            read[record_kind + "s"] += 1
            for table, row in rows_of(record_kind, record, kind):
                read["has_stock"] = read["has_stock"] or table == "stock"
                stager.add(table, row)
        elif record_kind == "package":
            package = record
            on_package(record)
        elif record_kind == "group":
            reference["groups"].append({"id": record.id, "parent_id": record.parent_id,
                                        "name": record.name or record.id})
        elif record_kind == "property":
            reference["properties"].append({"id": record.id, "name": record.name or record.id,
                                            "vals": dict(record.values)})
        elif record_kind == "price_type":
            reference["price_types"].append({"id": record.id, "name": record.name or record.id,
                                             "currency": record.currency})
        elif record_kind == "warehouse":
            reference["warehouses"].append({"id": record.id, "name": record.name or record.id})
        read["records"] += 1
        if read["records"] % PROGRESS_EVERY == 0:
            progress.records = read["records"]
    progress.records = read["records"]
    if package is None:
        raise ImportFailed("no CommerceML package (Каталог, Классификатор or ПакетПредложений) "
                           "in the file")


def finish_package(applier: Applier, kind: str, read: dict) -> dict:
    """Apply the staged file: reference rows, the changed rows, what a full snapshot left out."""
    reference = read["reference"]
    for table, rows in ((groups, reference["groups"]), (properties, reference["properties"]),
                        (price_types, reference["price_types"]), (warehouses, reference["warehouses"])):
        applier.upsert_reference(table, rows)
    for table in {"import": ("products",), "offers": ("offers", "prices", "stock"),
                  "prices": ("prices",), "rests": ("stock",)}[kind]:
        applier.apply_table(table)
    if applier.full:
        if kind == "import" and read["products"]:
            applier.deactivate_absent("products")
        if kind == "offers":
            applier.deactivate_absent("offers")
        if kind in ("offers", "rests") and read["has_stock"]:
            applier.zero_absent_stock()
    applier.keep_digests(kind)
    unchanged = applier.sql("SELECT count(*) FROM stage_digests WHERE NOT parsed").scalar()
    return {"products": read["products"], "offers": read["offers"], "unchanged": unchanged,
            **applier.counts}


@contextlib.contextmanager
def _blocking_driver(engine):
    """COPY is refused by psycopg2 made green (a wait callback): the importer runs alone in its
    process, so it drops the callback while it runs (set only when eventlet patched this
    process: the test suite, a script)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    import psycopg2.extensions

    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(callback)


def import_file(engine: sa.Engine, path: Path, job: dict, progress: Progress | None = None,
                workers=1, parallel_from=parallel.MIN_PARALLEL_BYTES) -> dict:
    """Import ``path`` for ``job`` (a row of import_jobs) in one transaction; marks the job done
    (with its ``catalog_imported`` event) in that same transaction. Returns the counts; raises
    ImportFailed (nothing applied) when the file is refused."""
    kind = job.get("kind") or exchange_file_kind(path.name)
    if kind not in ("import", "offers", "prices", "rests"):
        raise ImportFailed(f"{path.name}: not a catalog file (import, offers, prices or rests)")
    if not path.is_file():
        raise ImportFailed(f"{job['filename']}: no such file was uploaded")
    progress = progress or Progress()
    headers = json.dumps({"request_id": job["request_id"]} if job.get("request_id") else {})
    try:
        with _blocking_driver(engine), engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # The staged file and the sorts and hashes over it in the server's memory rather
                # than on disk (before the first temporary table: temp_buffers is fixed then).
                conn.exec_driver_sql("SET LOCAL temp_buffers = '1GB'")
                # Imports take turns: each compares the file with what the one before applied.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('crmhub.catalog.import'))")
                conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
                # Compiling a plan costs more than these plain scans and joins save by it.
                conn.exec_driver_sql("SET LOCAL jit = off")
                # The catalog is read again and again, so it sits in memory: an index lookup per
                # row of a 10,000-row package beats reading a table of millions whole.
                conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
                # A first load writes hundreds of MB of change events: lz4 compresses them
                # several times faster than the default pglz (where the server has it).
                conn.exec_driver_sql(
                    "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
                    "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
            applier = Applier(conn, job["id"], utcnow(), full=True, headers=headers)
            applier.create_change_tables()

            def on_package(package):
                # Known before the first row: a change-only package keeps no keys.
                applier.full = not package.only_changes

            started = time.monotonic()
            with Stager(conn) as stager:
                read = read_into(path, kind, stager, on_package, progress, workers, parallel_from,
                                 applier.generation(kind) if applier.has_digests(kind) else None)
            read_at = time.monotonic()
            counts = finish_package(applier, kind, read)
            log.info("catalog package applied", file=path.name, read_s=round(read_at - started, 2),
                     finish_s=round(time.monotonic() - read_at, 2))
            jobs.finish(conn, job["id"], "done", counts=counts, read=read["records"], kind=kind,
                        headers=headers)
    except ExchangeFileError as exc:
        raise ImportFailed(f"{path.name}: {exc.reason}") from None
    return counts


# -- the import process --------------------------------------------------------------------------

def run_job(config: dict, job_id: str, path: Path | None = None, engine=None) -> int:
    """Import one queued job (in an import process): its file in the exchange folder, or
    ``path``; returns the exit status."""
    own_engine = engine is None
    engine = engine or make_engine(config, "catalog")
    done = threading.Event()
    progress = Progress()

    def beat():  # also while the package is applied, which reads nothing
        while not done.wait(HEARTBEAT_SECONDS):
            jobs.heartbeat(engine, job_id, progress.records, progress.bytes_read, progress.bytes_total)

    try:
        job = jobs.start(engine, job_id, f"{socket.gethostname()}:{os.getpid()}")
        if job is None:
            return 0  # another process took it, or it is finished
        threading.Thread(target=beat, name="catalog-import-heartbeat", daemon=True).start()
        started = time.monotonic()
        try:
            path = path or jobs.exchange_path(config, job["session"], job["filename"])
            counts = import_file(engine, path, job, progress,
                                 workers=parallel.workers_for(config.get("IMPORT_WORKERS")))
        except ImportFailed as exc:
            jobs.fail(engine, job_id, exc.reason)
            log.warning("catalog import refused", job=job_id, file=job["filename"], reason=exc.reason)
            return 1
        except Exception as exc:  # noqa: BLE001 - 1C is told; the operator reads the log
            jobs.fail(engine, job_id, f"internal error: {exc.__class__.__name__}")
            log.exception("catalog import failed", job=job_id, file=job["filename"])
            return 2
        log.info("catalog imported", job=job_id, file=job["filename"], counts=counts,
                 seconds=round(time.monotonic() - started, 2))
        return 0
    finally:
        done.set()
        if own_engine:
            engine.dispose()


def serve(config: dict, lines) -> int:
    """Import the jobs whose ids come in ``lines`` (stdin), one after the other: a process
    kept warm spares a small package the second it takes to start a new one."""
    engine = make_engine(config, "catalog")
    try:
        for line in lines:
            if line.strip():
                run_job(config, line.strip(), engine=engine)
    finally:
        engine.dispose()
    return 0


def main(argv=None) -> int:
    from crmhub.runtime.logs import configure_logging

    parser = argparse.ArgumentParser(description="Import queued catalog jobs.")
    parser.add_argument("job", nargs="?", help="the job to import")
    parser.add_argument("--file", type=Path, help="import this file instead of the job's upload")
    parser.add_argument("--serve", action="store_true", help="import the jobs named on stdin")
    args = parser.parse_args(argv)
    config = json.loads(os.environ.get("CRMHUB_IMPORT_CONFIG") or "{}")
    configure_logging(config)
    if args.serve:
        return serve(config, sys.stdin)
    if not args.job:
        parser.error("name a job, or --serve")
    return run_job(config, args.job, args.file)

if __name__ == "__main__":
    sys.exit(main())
