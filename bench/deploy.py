"""The deployment of deploy/compose.yaml, each service its own OS process as its container
would run it (crmhub.compose_processes), on this machine's RabbitMQ and PostgreSQL.

* scale: form ingestion (wrk, as in the ingest suite) with one process of every service on
  the path (gateway, contacts, deals), the CPU each used; then again with a second process of
  the one that used the most (the busiest), and the ratio of the two throughputs;
* rolling restart: forms at a steady rate while every service is restarted, one at a time
  (the gateway has two replicas, as behind a load balancer); accepted vs stored;
* footprint: what one service's install weighs (a fresh venv with crmhub and its runtime
  dependencies), since no image builder runs here.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import database, vhost
from bench.ingest import throughput
from crmhub.compose_processes import REPO, LocalCompose
from crmhub.runtime.db import sqlalchemy_url
from crmhub.testing import SteadyForms

INGEST_PATH = ["gateway", "contacts", "deals"]


def _compose(workdir: Path, amqp_uri: str, db_url: str) -> LocalCompose:
    return LocalCompose.on_local_servers(workdir, amqp_uri, db_url,
                                         FORMS_RATE_LIMIT=str(10**9), LOG_LEVEL="WARNING")


def _contacts_engine(db_url: str):
    return sa.create_engine(sqlalchemy_url(db_url), connect_args={"options": "-csearch_path=contacts"})


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _ingestion(workdir: Path, duration: int, connections: int, scale: dict) -> dict:
    with vhost() as amqp_uri, database() as db_url:
        compose = _compose(workdir, amqp_uri, db_url)
        engine = _contacts_engine(db_url)
        try:
            compose.up(INGEST_PATH, scale=scale)
            before = {p.name: p.cpu_seconds() for p in compose.all_processes()}
            machine_before = _machine_cpu()
            started = time.monotonic()
            result = throughput(compose.gateway_url, engine, duration, connections)
            elapsed = time.monotonic() - started
            busy, total = (after - first for after, first in zip(_machine_cpu(), machine_before))
            # What is left of the machine: near 0, the cores (shared with wrk, RabbitMQ and
            # PostgreSQL) are the bottleneck rather than any one process.
            result["machine_cpu_busy_share"] = round(busy / total, 2)
            result["cpu_share_per_process"] = {
                p.name: round((p.cpu_seconds() - before[p.name]) / elapsed, 2)
                for p in compose.all_processes()}
            result["processes"] = {name: len(group) for name, group in compose.processes.items()}
            return result
        finally:
            compose.down()
            engine.dispose()


def scale(workdir: Path, duration: int, connections: int) -> dict:
    one = _ingestion(workdir / "one", duration, connections, {})
    busiest = max(one["cpu_share_per_process"], key=one["cpu_share_per_process"].get)
    service = busiest.rsplit("-", 1)[0]
    two = _ingestion(workdir / "two", duration, connections, {service: 2})
    rate = "end_to_end_per_s"
    return {"busiest_service": service, "one_process": one, "two_processes": two,
            "ratio_two_vs_one": round(two[rate] / one[rate], 3) if one[rate] else None}


def rolling_restart(workdir: Path, rate: float) -> dict:
    with vhost() as amqp_uri, database() as db_url:
        compose = _compose(workdir / "rolling", amqp_uri, db_url)
        engine = _contacts_engine(db_url)
        try:
            compose.up(scale={"gateway": 2})
            sender = SteadyForms(compose.gateway_url, rate, form="bench", prefix="roll-",
                                 clients=1_000_000)
            sender.start()
            restarts = {}
            started = time.monotonic()
            for name in compose.crmhub_services():
                began = time.monotonic()
                compose.restart(name)
                restarts[name] = round(time.monotonic() - began, 1)
            sender.stopping.set()
            sender.join(60)
            window = time.monotonic() - started
            accepted = set(sender.accepted)
            deadline = time.monotonic() + 180
            while True:
                with engine.connect() as conn:
                    keys = conn.execute(sa.text("SELECT source_key FROM timeline "
                                                "WHERE source_key LIKE '%roll-%'")).scalars().all()
                stored = [key.rsplit(":", 1)[1] for key in keys]
                if set(stored) >= accepted or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            return {"rate_per_s": rate, "window_s": round(window, 1),
                    "restart_s_per_service": restarts, "accepted": len(accepted),
                    "stored": len(set(stored)), "lost": len(accepted - set(stored)),
                    "duplicated": len(stored) - len(set(stored)),
                    "resent_after_refusal": sender.resent}
        finally:
            compose.down()
            engine.dispose()


def _megabytes(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 2**20, 1)


# What deploy/Dockerfile copies into its build stage.
IMAGE_SOURCES = ["pyproject.toml", "setup.py", "README.md", "crmhub", "contracts", "plugins",
                 "services"]


def footprint() -> dict:
    """A fresh venv with crmhub (not editable) and its runtime dependencies only, built from
    a copy of what the image's build stage gets (a build in the checkout would leave build/)."""
    builder = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True)
    with tempfile.TemporaryDirectory(prefix="crmhub-footprint-") as tmp:
        source, venv = Path(tmp) / "src", Path(tmp) / "venv"
        source.mkdir()
        for name in IMAGE_SOURCES:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, source / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPO / name, source / name)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"),
                        "install", "-q", "--no-cache-dir", "--disable-pip-version-check",
                        str(source)], check=True)
        # What the image's build step checks, and more: the installed package (no source
        # tree) has its migrations and templates, so every service's tables get created.
        migrated = subprocess.run(
            [str(venv / "bin/crmhub"), "migrate"], cwd=tmp, capture_output=True, text=True,
            env={"PATH": "/usr/bin:/bin", "CRMHUB_DATA_DIR": str(Path(tmp) / "var"),
                 "LOG_LEVEL": "WARNING", "CRMHUB_CONFIG": str(REPO / "deploy/config.yaml")})
        site = next((venv / "lib").glob("python*/site-packages"))
        packages = sorted(((p.name, _megabytes(p)) for p in site.iterdir() if p.is_dir()
                           and not p.name.endswith(".dist-info")), key=lambda x: -x[1])
        return {"image_builder": "docker" if builder and builder.returncode == 0 else "none",
                "installed_migrate_ok": migrated.returncode == 0,
                "installed_migrate_error": migrated.stderr[-500:] if migrated.returncode else None,
                "venv_mb": _megabytes(venv), "site_packages_mb": _megabytes(site),
                "largest_packages_mb": dict(packages[:8])}


def run(workdir: Path, duration: int = 20, connections: int = 64, rate: float = 50) -> dict:
    return {"scale": scale(workdir, duration, connections),
            "rolling_restart": rolling_restart(workdir, rate),
            "footprint": footprint()}
