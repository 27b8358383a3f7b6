"""What the benchmarks share: an isolated vhost and database, hub processes, percentiles."""
from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests
import sqlalchemy as sa

from crmhub.runtime.db import sqlalchemy_url
from crmhub.testing import free_port  # noqa: F401 - the suites import it from here

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
RABBIT_API = os.environ.get("RABBIT_API", "http://127.0.0.1:15672/api")
AMQP_BASE = os.environ.get("BENCH_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
API_KEY = "bench-admin-key"


def percentile(values, pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values_s) -> dict:
    ms = [v * 1000 for v in values_s]
    return {"count": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2), "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(max(ms), 2) if ms else None,
            "mean_ms": round(statistics.fmean(ms), 2) if ms else None}


@contextlib.contextmanager
def vhost():
    name = f"crmhub-bench-{uuid.uuid4().hex[:8]}"
    auth = ("guest", "guest")
    requests.put(f"{RABBIT_API}/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
    requests.put(f"{RABBIT_API}/permissions/{name}/guest", auth=auth, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    try:
        yield f"{AMQP_BASE}/{name}"
    finally:
        requests.delete(f"{RABBIT_API}/vhosts/{name}", auth=auth, timeout=10)


@contextlib.contextmanager
def database():
    name = f"crmhub_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :n"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def hub_config(amqp_uri: str, database_url: str, workdir: Path, **extra) -> dict:
    config = {
        "AMQP_URI": amqp_uri, "DATABASE_URL": database_url, "DATA_DIR": str(workdir / "var"),
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}", "OPS_ADDRESS": f"127.0.0.1:{free_port()}",
        "API_KEYS": f"{API_KEY}:admin", "LOG_LEVEL": "WARNING", "max_workers": 32,
        "DB_POOL_SIZE": 20, "DB_MAX_OVERFLOW": 0,
        "CONNECTORS": {"forms": {"allow_unknown_forms": True, "rate_limit_per_minute": 10**9}},
        # The product's default; QUEUE_TYPE=classic measures a single-node broker's choice.
        "QUEUE_TYPE": os.environ.get("QUEUE_TYPE", "quorum"),
    }
    config.update(extra)
    return config


class TimelineWatcher(threading.Thread):
    """Notes the moment each timeline row of interest becomes visible (committed).

    ``columns`` are selected besides ``id``; ``key(row)`` names a row of interest, or None.
    Rows are read in id order, but transactions commit out of id order: an id skipped on the
    way up is re-asked for until it shows up or ``gap_patience`` seconds pass (a sequence
    value a conflicting insert consumed never shows up)."""

    def __init__(self, engine, columns: str, key, interval=0.002, gap_patience=30.0):
        super().__init__(daemon=True)
        self.engine = engine
        self.query = sa.text(f"SELECT id, {columns} FROM timeline "
                             "WHERE id > :last OR id = ANY(:gaps) ORDER BY id")
        self.key = key
        self.interval = interval
        self.gap_patience = gap_patience
        self.seen: dict[str, float] = {}
        self.entries: Counter = Counter()
        self.counts: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self):
        last, gaps = 0, {}
        with self.engine.connect() as conn:
            while not self._stop_event.is_set():
                rows = conn.execute(self.query, {"last": last, "gaps": list(gaps)}).all()
                conn.commit()
                now = time.monotonic()
                for row in rows:
                    gaps.pop(row.id, None)
                    if row.id > last:
                        gaps.update(dict.fromkeys(range(last + 1, row.id), now))
                        last = row.id
                    key = self.key(row)
                    if key is not None:
                        self.seen.setdefault(key, now)
                        self.entries[key] += 1
                gaps = {i: t for i, t in gaps.items() if now - t < self.gap_patience}
                self.counts.append((now, len(self.seen)))
                time.sleep(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join(5)
