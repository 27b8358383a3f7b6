"""The catalog import from 1C: a generated exchange of N offers (one price, stock at two
warehouses) uploaded to the exchange folder and imported by the warm import process exactly as
the catalog service hands it a job, on the real PostgreSQL; timed until the job is done.

Figures: the first import of offers.xml (time, offers/s, peak RSS of the import process and
its parsing processes together), the same file again (nothing changes, no events), a
change-only package of 10,000 offers, and PostgreSQL's own COPY rate for the same rows.
"""
from __future__ import annotations

import io
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.common import database
from crmhub.plugins.onec.generator import write_exchange
from crmhub.runtime.db import make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.catalog import jobs
from crmhub.services.catalog.service import importer_command, importer_env


class PeakRss:
    """Samples the resident memory of a process and all its descendants, summed."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    todo.extend(int(c) for c in task.read_text().split())
                except OSError:
                    pass
        return pids

    def _rss_kb(self, pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, sum(self._rss_kb(pid) for pid in self._tree()))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak / 1024, 1)


def outbox_events(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT event_type, count(*) FROM outbox GROUP BY 1")).all())


def run_import(config: dict, engine, path: Path, importer) -> dict:
    """Hand one file to the warm import process, as the catalog service does, and time it
    until its job is done."""
    session = f"bench-{uuid.uuid4().hex[:8]}"
    folder = jobs.exchange_path(config, session, path.name).parent
    folder.mkdir(parents=True)
    os.link(path, folder / path.name)  # as if uploaded (a symlink would lead outside the folder)
    with engine.begin() as conn:
        job, _ = jobs.queue(conn, session, path.name, None, "bench")
    before = outbox_events(engine)
    rss = PeakRss(importer.pid)
    started = time.monotonic()
    importer.stdin.write(job["id"].encode() + b"\n")
    importer.stdin.flush()
    while True:
        with engine.connect() as conn:
            job = jobs.load(conn, job["id"])
        if job["state"] in ("done", "failed") or importer.poll() is not None:
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    peak = rss.stop()
    after = outbox_events(engine)
    counts = job["counts"] or {}
    offers = counts.get("offers") or counts.get("products") or 0
    return {"file": path.name, "state": job["state"], "error": job["error"],
            "seconds": round(seconds, 2), "records_per_s": round(offers / seconds) if seconds else None,
            "peak_rss_mb": peak, "counts": counts,
            "events": {k: after.get(k, 0) - before.get(k, 0) for k in after}}


def copy_rate(engine) -> dict:
    """PostgreSQL's COPY of the rows an import stages (offers, prices, stock), into
    unindexed temporary tables: what loading the same data costs the database alone."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        dumps, rows = {}, 0
        for table, cols in (
                ("offers", "id, product_id, characteristic_id, article, name, characteristics, active"),
                ("prices", "offer_id, price_type_id, amount, currency"),
                ("stock", "offer_id, warehouse_id, quantity")):
            buf = io.StringIO()
            cur.copy_expert(f"COPY (SELECT {cols} FROM {table}) TO STDOUT", buf)
            dumps[table] = (cols, buf.getvalue())
            rows += dumps[table][1].count("\n")
            cur.execute(f"CREATE TEMP TABLE copy_{table} AS SELECT {cols} FROM {table} LIMIT 0")
        started = time.monotonic()
        for table, (cols, text) in dumps.items():
            cur.copy_expert(f"COPY copy_{table} ({cols}) FROM STDIN", io.StringIO(text))
        raw.commit()
        seconds = time.monotonic() - started
        cur.execute("SELECT count(*) FROM offers")
        offers = cur.fetchone()[0]
        return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
                "offers_per_s": round(offers / seconds),
                "mb": round(sum(len(t.encode()) for _, t in dumps.values()) / 2**20, 1)}
    finally:
        raw.close()


def run(workdir: Path, offers: int = 1_000_000, changes: int = 10_000, workers: int | None = None) -> dict:
    files = workdir / "exchange"
    started = time.monotonic()
    write_exchange(files, offers, warehouses=2)
    delta = workdir / "delta"
    write_exchange(delta, changes, warehouses=2, only_changes=True, start=offers // 3,
                   quantity_fn=lambda i, w: 1000 + w, price_fn=lambda i: 777)
    generated = time.monotonic() - started
    # The generator leaves gigabytes of the files in the page cache, unwritten. Flushed while
    # the import runs, they would be charged to it (a 1C upload trickles in over minutes).
    os.sync()
    result = {"offers": offers, "generated_s": round(generated, 1),
              "synced_s": round(time.monotonic() - started - generated, 1),
              "offers_xml_mb": round((files / "offers.xml").stat().st_size / 2**20),
              "import_xml_mb": round((files / "import.xml").stat().st_size / 2**20)}
    with database() as url:
        config = {"DATABASE_URL": url, "DATA_DIR": str(workdir / "var")}
        if workers:
            config["IMPORT_WORKERS"] = workers
        upgrade(config, "catalog")
        config["EXCHANGE_DIR"] = str(workdir / "exchange-dir")
        engine = make_engine(config, "catalog")
        importer = subprocess.Popen(importer_command(), stdin=subprocess.PIPE, env=importer_env(config))
        try:
            time.sleep(3)  # warm, as the catalog service keeps it
            result["import_xml"] = run_import(config, engine, files / "import.xml", importer)
            result["first"] = run_import(config, engine, files / "offers.xml", importer)
            result["again"] = run_import(config, engine, files / "offers.xml", importer)
            result["change_only"] = run_import(config, engine, delta / "offers.xml", importer)
            result["copy"] = copy_rate(engine)
        finally:
            importer.stdin.close()
            importer.wait()
            engine.dispose()
    first, again, change = result["first"], result["again"], result["change_only"]
    result["goals"] = {
        "first_import_s<=60": first["seconds"] <= 60,
        "first_import_peak_rss_mb<=250": first["peak_rss_mb"] <= 250,
        "reimport_s<=20": again["seconds"] <= 20,
        "reimport_changes_nothing": not any(v for k, v in again["counts"].items()
                                            if k.startswith("changed") or k in ("arrivals", "deactivated")),
        "reimport_emits_no_change_events": not any(again["events"].get(k) for k in ("stock_changed",
                                                                                    "price_changed")),
        "change_only_10k_s<=3": change["seconds"] <= 3,
    }
    return result
