"""Import jobs: one per exchange file of a session. 1C asks for the same file's import again
and again ("progress" means "call me again"); each ask reads the job's state."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance
from crmhub.contracts.catalog import CatalogImportedSchema
from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.runtime.config import data_dir
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, new_id, utcnow
from crmhub.services.catalog.models import import_jobs, outbox

# A running import that has not reported for this long has died with its process.
STALE_AFTER = dt.timedelta(seconds=60)
SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def exchange_dir(config: dict) -> Path:
    """Where the gateway stores the files 1C uploads (shared with the catalog service)."""
    path = Path(config.get("EXCHANGE_DIR") or data_dir(config) / "1c-exchange")
    path.mkdir(parents=True, exist_ok=True)
    return path


def exchange_path(config: dict, session: str, filename: str) -> Path:
    """The file ``filename`` of ``session``, never outside the session's folder."""
    if not SESSION.match(session or ""):
        raise InvalidInput("session: letters, digits, '-' and '_' only")
    root = (exchange_dir(config) / session).resolve()
    path = (root / filename).resolve()
    if root not in path.parents:
        raise InvalidInput(f"filename: {filename!r} is outside the exchange folder")
    return path


def as_dict(row) -> dict:
    job = dict(row._mapping)
    for key in ("created_at", "finished_at", "heartbeat_at"):
        job[key] = as_utc(job[key])
    return job


def load(conn, job_id: str) -> dict:
    row = conn.execute(sa.select(import_jobs).where(import_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no import job {job_id!r}")
    return as_dict(row)


def find(conn, session: str, filename: str) -> dict | None:
    row = conn.execute(sa.select(import_jobs).where(import_jobs.c.session == session,
                                                    import_jobs.c.filename == filename)).first()
    return None if row is None else as_dict(row)


def queue(conn, session: str, filename: str, kind: str, source: str, request_id=None) -> tuple[dict, bool]:
    """The job of this file of this session, queued now if there was none; (job, created)."""
    created = insert_ignoring_conflicts(conn, import_jobs, [{
        "id": new_id(), "session": session, "filename": filename, "kind": kind, "source": source,
        "state": "queued", "read": 0, "request_id": request_id, "created_at": utcnow()}],
        ["session", "filename"])
    return find(conn, session, filename), bool(created)


def recent(conn, limit: int = 50) -> list[dict]:
    rows = conn.execute(sa.select(import_jobs).order_by(import_jobs.c.created_at.desc()).limit(limit))
    return [as_dict(row) for row in rows]


def start(engine, job_id: str, worker: str) -> dict | None:
    """Claim a queued job for this process; None if it is not queued any more."""
    with engine.begin() as conn:
        claimed = conn.execute(import_jobs.update().where(
            import_jobs.c.id == job_id, import_jobs.c.state == "queued").values(
            state="running", worker=worker, heartbeat_at=utcnow())).rowcount
        return load(conn, job_id) if claimed else None


def heartbeat(engine, job_id: str, read: int, bytes_read: int, bytes_total: int | None) -> None:
    with engine.begin() as conn:
        conn.execute(import_jobs.update().where(import_jobs.c.id == job_id,
                                                import_jobs.c.state == "running")
                     .values(read=read, bytes_read=bytes_read, bytes_total=bytes_total,
                             heartbeat_at=utcnow()))


def _announce(conn, job_id: str, headers: str) -> None:
    job = load(conn, job_id)
    payload = instance(CatalogImportedSchema).dump(
        {"event_id": f"{job_id}-{ev.CATALOG_IMPORTED}", "occurred_at": utcnow(), "job": job})
    conn.execute(outbox.insert().values(event_type=ev.CATALOG_IMPORTED, payload=json.dumps(payload),
                                        headers=headers, created_at=utcnow()))


def finish(conn, job_id: str, state: str, *, counts=None, read=None, kind=None, error=None,
           headers: str = "{}") -> None:
    """Record the job's end and announce it, in the caller's transaction."""
    values = {"state": state, "finished_at": utcnow(), "heartbeat_at": utcnow(), "error": error}
    values.update({k: v for k, v in (("counts", counts), ("read", read), ("kind", kind)) if v is not None})
    conn.execute(import_jobs.update().where(import_jobs.c.id == job_id).values(**values))
    _announce(conn, job_id, headers)


def fail(engine, job_id: str, reason: str) -> None:
    with engine.begin() as conn:
        job = load(conn, job_id)
        if job["state"] in ("queued", "running"):
            headers = json.dumps({"request_id": job["request_id"]} if job["request_id"] else {})
            finish(conn, job_id, "failed", error=reason[:2000], headers=headers)


def fail_stale(engine, now=None) -> int:
    """Fail the running jobs whose process stopped reporting (it crashed, or its host did)."""
    cutoff = (now or utcnow()) - STALE_AFTER
    with engine.connect() as conn:
        ids = conn.execute(sa.select(import_jobs.c.id).where(
            import_jobs.c.state == "running", import_jobs.c.heartbeat_at < cutoff)).scalars().all()
    for job_id in ids:
        fail(engine, job_id, "the import process stopped; send the file again")
    return len(ids)
