"""``crmhub import-1c``: exchange files from disk, each by an import process, with a progress
bar drawn from the job's heartbeat."""
from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from crmhub.plugins.onec.xmlsafety import ExchangeFileError, exchange_file_kind
from crmhub.runtime.db import make_engine
from crmhub.services.catalog import jobs
from crmhub.services.catalog.service import importer_command, importer_env

ORDER = ("import", "offers", "prices", "rests")  # 1C's order: products before their offers
WIDTH = 30


def exchange_files(folder: Path) -> list[tuple[Path, str]]:
    """The catalog files of ``folder`` in the order 1C sends them."""
    found = []
    for path in sorted(folder.glob("*.xml")):
        try:
            kind = exchange_file_kind(path.name)
        except ExchangeFileError:
            continue
        if kind in ORDER:
            found.append((path, kind))
    return sorted(found, key=lambda item: (ORDER.index(item[1]), item[0].name))


def bar(job: dict, elapsed: float) -> str:
    total, done = job.get("bytes_total") or 0, job.get("bytes_read") or 0
    share = min(1.0, done / total) if total else 0.0
    filled = int(share * WIDTH)
    rate = job["read"] / elapsed if elapsed > 0 else 0
    return (f"\r{job['filename']:<20} [{'#' * filled}{'.' * (WIDTH - filled)}] {share:4.0%} "
            f"{job['read']:>12,} records {rate:>9,.0f}/s {elapsed:6.1f} s")


def import_files(config: dict, files: list[tuple[Path, str]], out) -> int:
    """Import each file; returns how many were refused."""
    engine = make_engine(config, "catalog")
    session, failed = f"cli-{uuid.uuid4().hex[:12]}", 0
    try:
        for path, kind in files:
            with engine.begin() as conn:
                job, _ = jobs.queue(conn, session, path.name, kind, "cli")
            started = time.monotonic()
            proc = subprocess.Popen(importer_command(job["id"], path.resolve()), env=importer_env(config))
            while proc.poll() is None:
                time.sleep(0.5)
                with engine.connect() as conn:
                    out.write(bar(jobs.load(conn, job["id"]), time.monotonic() - started))
                out.flush()
            with engine.connect() as conn:
                job = jobs.load(conn, job["id"])
            if job["state"] == "done":  # the last heartbeat may predate the end
                job = {**job, "bytes_read": job["bytes_total"] or 1, "bytes_total": job["bytes_total"] or 1}
            out.write(bar(job, time.monotonic() - started) + "\n")
            if job["state"] == "done":
                counts = job["counts"] or {}
                out.write("  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items() if v)
                          + "\n")
            else:
                failed += 1
                out.write(f"  refused: {job['error']}\n")
    finally:
        engine.dispose()
    return failed
