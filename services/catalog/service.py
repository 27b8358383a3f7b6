"""catalog: products, prices and stock from 1C (CommerceML 2), imported file by file."""
import json
import os
import sys

import sqlalchemy as sa
import structlog
from eventlet.green import subprocess
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from crmhub.contracts import catalog as schemas
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import CrmhubError, InvalidInput
from crmhub.plugins.onec.xmlsafety import ExchangeFileError, exchange_file_kind
from crmhub.runtime.db import Database, utcnow
from crmhub.runtime.logs import LogContext
from crmhub.runtime.timer import timer
from crmhub.services.catalog import jobs, logic
from crmhub.services.catalog.models import import_jobs, metadata

EXPECTED = (CrmhubError,)
CATALOG_KINDS = ("import", "offers", "prices", "rests")
# Config keys an import process needs (it gets them in its environment, as JSON).
IMPORTER_CONFIG = ("DATABASE_URL", "DATA_DIR", "EXCHANGE_DIR", "IMPORT_WORKERS", "LOG_LEVEL", "LOG_FORMAT")
log = structlog.get_logger(__name__)


def _dump(schema_cls, value):
    return instance(schema_cls).dump(value)


def importer_command(job_id: str | None = None, path=None) -> list[str]:
    """An import process for one job (with ``path``: that file), or one that imports the
    jobs named on its stdin (no job)."""
    args = [job_id, *(["--file", str(path)] if path else [])] if job_id else ["--serve"]
    return [sys.executable, "-m", "crmhub.services.catalog.importer", *args]


def importer_env(config: dict) -> dict:
    """The environment of an import process: this one's, and the config it needs as JSON."""
    needed = json.dumps({k: config.get(k) for k in IMPORTER_CONFIG if config.get(k)})
    return dict(os.environ, CRMHUB_IMPORT_CONFIG=needed)


class Importers(DependencyProvider):
    """Hands jobs to an import process kept warm: parsing a file of hundreds of megabytes in
    a service's process would stall its event loop (and hold its memory) for a minute, and a
    new process per file would cost a small package a second of start-up. The process imports
    one job after the other (imports take turns anyway); a dead one is started again."""

    def setup(self):
        self.env_config = self.container.config
        self.process = None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()  # an import in flight finishes (or fails) whole first

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def get_dependency(self, worker_ctx):
        return self.launch

    def _running(self):
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(importer_command(), stdin=subprocess.PIPE,
                                            env=importer_env(self.env_config))
        return self.process

    def launch(self, job_id: str) -> None:
        for attempt in (1, 2):
            process = self._running()
            try:
                process.stdin.write(job_id.encode() + b"\n")
                process.stdin.flush()
                return
            except OSError:  # it died since: start another (the job is still queued)
                process.kill()
                self.process = None
                if attempt == 2:
                    raise


class CatalogService:
    name = "catalog"

    config = Config()
    db = Database(metadata)
    launch_import = Importers()
    log_ctx = LogContext()

    # -- imports ---------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def import_file(self, request, request_id=None):
        """Import an uploaded exchange file: the first call queues it and starts its import;
        every call returns the job as it stands (1C polls until it is done or failed)."""
        request = load_input(schemas.ImportRequestSchema, request)
        try:
            kind = exchange_file_kind(request["filename"])
        except ExchangeFileError as exc:
            raise InvalidInput(f"filename: {exc.reason}", {"filename": [exc.reason]}) from None
        if kind not in CATALOG_KINDS:
            raise InvalidInput(f"filename: {request['filename']!r} is not a catalog file",
                               {"filename": ["import*, offers*, prices* or rests*.xml"]})
        path = jobs.exchange_path(self.config, request["session"], request["filename"])
        with self.db.transaction() as tx:
            job, created = jobs.queue(tx.conn, request["session"], request["filename"], kind,
                                      request["source"], request_id)
        if created:
            if path.is_file():
                self.launch_import(job["id"])
            else:
                jobs.fail(self.db.engine, job["id"], f"{request['filename']}: no such file was uploaded")
                with self.db.connect() as conn:
                    job = jobs.load(conn, job["id"])
        return _dump(schemas.ImportJobSchema, job)

    @rpc(expected_exceptions=EXPECTED)
    def get_import(self, job_id):
        with self.db.connect() as conn:
            return _dump(schemas.ImportJobSchema, jobs.load(conn, str(job_id)))

    @rpc(expected_exceptions=EXPECTED)
    def list_imports(self, limit=50):
        with self.db.connect() as conn:
            return _dump(schemas.ImportJobListSchema, {"items": jobs.recent(conn, int(limit))})

    @timer("IMPORT_CHECK_SECONDS", default=15.0)
    def watch_imports(self):
        """Fail imports whose process died; start queued ones that no process took (their
        service instance stopped before it could). While an import runs, jobs wait for their
        turn: they are not handed out again."""
        jobs.fail_stale(self.db.engine)
        with self.db.connect() as conn:
            if conn.execute(sa.select(import_jobs.c.id).where(import_jobs.c.state == "running")
                            .limit(1)).first() is not None:
                return
            waiting = conn.execute(import_jobs.select().where(
                import_jobs.c.state == "queued",
                import_jobs.c.created_at < utcnow() - jobs.STALE_AFTER)).all()
        for job in waiting:
            self.launch_import(job.id)

    # -- products --------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def search_products(self, query=None):
        params = load_input(schemas.ProductQuerySchema, query)
        with self.db.connect() as conn:
            return _dump(schemas.ProductPageSchema, logic.search_products(conn, **params))
