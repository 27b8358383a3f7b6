"""The sales funnel on PostgreSQL: the pipeline board, a move reaching the client's timeline,
and reminders firing on time across a restart.

Two hub processes, as two containers would be: the gateway with the contacts service, and the
deals service (alone, so it can be restarted).
* board: a pipeline with 10,000 open deals (and closed ones) bulk-loaded with COPY, then
  ``GET /api/v1/pipelines/<id>/board`` (and the next page of a column) through the hub, and
  the board's two queries in-process;
* move -> timeline: moves through the REST API at a fixed rate; a watcher polls the contacts
  timeline table every 2 ms and notes when each move's entry is committed;
* reminders: 100,000 tasks due at random times over a compressed window (a day cannot be
  waited for: ``--reminder-window`` seconds, 600 by default, i.e. ~170 tasks due per second
  where a day would be ~1.2/s), written with COPY (so only the service's own polling finds
  them); the deals process is stopped in the middle, left down a few seconds and started
  again; a consumer bound to deals.events/task_due notes when each reminder is published.
  Lateness = receipt time - due_at; also reminded_at - due_at as the service recorded it.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pika
import requests
import sqlalchemy as sa

from bench.common import (
    API_KEY,
    TimelineWatcher,
    database,
    hub_config,
    percentile,
    summary_ms,
    vhost,
)
from crmhub.runtime.db import ServiceDatabase, make_engine, sqlalchemy_url
from crmhub.runtime.migrate import upgrade
from crmhub.services.deals import logic
from crmhub.services.deals.models import metadata as deals_metadata
from crmhub.testing import HubProcess

PIPELINE = "b2b-sales"
MANAGERS = ("anna", "boris", "vera", "gleb")
OPEN_SHARE = (0.4, 0.3, 0.2, 0.1)  # of the open deals, per open stage in order


def _copy(cur, table: str, columns: str, rows: io.StringIO) -> None:
    rows.seek(0)
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", rows)


def _ts(value: dt.datetime) -> str:
    return value.isoformat()


# -- loading ---------------------------------------------------------------------------------

def setup_pipeline(config: dict) -> dict:
    db = ServiceDatabase(make_engine(config, "deals"), deals_metadata, "deals")
    try:
        with db.transaction() as tx:
            for manager in MANAGERS:
                logic.put_manager(tx, manager, {"name": manager.title(), "role": "manager",
                                                "email": None, "active": True})
            pipeline = logic.load_template(tx, PIPELINE)[0]
            logic.set_pipeline_managers(tx, PIPELINE, list(MANAGERS))
        return pipeline
    finally:
        db.engine.dispose()


def load_deals(pg_url: str, pipeline: dict, open_count: int, closed_count: int) -> dict:
    """Cards (contacts schema) and their deals (deals schema) with COPY: ``open_count`` open
    deals spread over the open stages, ``closed_count`` won or lost ones."""
    rng = random.Random(11)
    open_stages = [s for s in pipeline["stages"] if s["kind"] == "open"]
    closing = [s for s in pipeline["stages"] if s["kind"] != "open"]
    now = dt.datetime.now(dt.timezone.utc)
    contacts, deal_rows, history = io.StringIO(), io.StringIO(), io.StringIO()
    per_stage: dict[int, int] = {}
    expected_minor = 0
    for i in range(open_count + closed_count):
        cid, did = f"bc{i:030d}", uuid.uuid4().hex
        name = f"Клиент {i}"
        created = now - dt.timedelta(days=60, seconds=rng.randrange(86400 * 30))
        updated = now - dt.timedelta(seconds=rng.randrange(86400 * 30))
        if i < open_count:
            stage = rng.choices(open_stages, OPEN_SHARE[:len(open_stages)])[0]
            closed_at = r"\N"
            per_stage[stage["id"]] = per_stage.get(stage["id"], 0) + 1
        else:
            stage = rng.choice(closing)
            closed_at = _ts(updated)
        currency = "USD" if i % 10 == 0 else "RUB"
        amount = r"\N" if i % 7 == 0 else str(rng.randrange(1_000, 5_000_000) * 100)
        if i < open_count and amount != r"\N":
            expected_minor += int(amount)
        contacts.write(f"{cid}\tperson\t{name}\t[]\t{{}}\t{name.lower()}\t{_ts(created)}\t"
                       f"{_ts(created)}\n")
        deal_rows.write("\t".join([
            did, f"Поставка {i}", cid, name, _ts(created), PIPELINE, str(stage["id"]),
            stage["kind"], MANAGERS[i % len(MANAGERS)], amount, currency, r"\N", "[]",
            r"\N", "1", _ts(created), _ts(updated), closed_at]) + "\n")
        history.write(f"{did}\t\\N\t{stage['id']}\tbench\t1\t{_ts(created)}\n")
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        _copy(cur, "contacts.contacts", "id, kind, name, tags, custom_fields, search_text, "
              "created_at, updated_at", contacts)
        _copy(cur, "deals.deals", "id, title, contact_id, contact_name, contact_synced_at, "
              "pipeline_id, stage_id, status, manager, amount_minor, currency, source, "
              "products, close_reason, version, created_at, updated_at, closed_at", deal_rows)
        _copy(cur, "deals.stage_changes", "deal_id, from_stage_id, to_stage_id, actor, "
              "version, changed_at", history)
        cur.execute("ANALYZE contacts.contacts")
        cur.execute("ANALYZE deals.deals")
        cur.execute("ANALYZE deals.stage_changes")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return {"load_s": round(time.perf_counter() - started, 2), "per_stage": per_stage,
            "expected_minor": expected_minor}


# -- board -----------------------------------------------------------------------------------

def board(config: dict, base_url: str, pipeline: dict, loaded: dict, open_count: int,
          requests_count: int = 300) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    url = f"{base_url}/api/v1/pipelines/{PIPELINE}/board"
    first = session.get(url, timeout=30)
    first.raise_for_status()
    body = first.json()
    assert body["count"] == open_count, body["count"]
    shown = sum(len(c["deals"]) for c in body["columns"])
    for column in body["columns"]:
        assert column["count"] == loaded["per_stage"].get(column["stage"]["id"], 0)
    total_minor = sum(int(Decimal(t["amount"]) * 100) for t in body["totals"])
    assert total_minor == loaded["expected_minor"], (total_minor, loaded["expected_minor"])
    for _ in range(5):  # warm-up
        session.get(url, timeout=30)
    via_api = []
    for _ in range(requests_count):
        t = time.perf_counter()
        resp = session.get(url, timeout=30)
        via_api.append(time.perf_counter() - t)
        assert resp.status_code == 200
    mine = []
    for i in range(requests_count // 3):
        t = time.perf_counter()
        resp = session.get(url, params={"manager": MANAGERS[i % len(MANAGERS)]}, timeout=30)
        mine.append(time.perf_counter() - t)
        assert resp.status_code == 200
    lead = pipeline["stages"][0]["id"]
    pages = []
    for i in range(requests_count // 3):
        t = time.perf_counter()
        resp = session.get(f"{base_url}/api/v1/deals", timeout=30, params={
            "pipeline_id": PIPELINE, "stage_id": lead, "status": "open", "limit": 20,
            "offset": 20 * (1 + i % 20)})
        pages.append(time.perf_counter() - t)
        assert resp.status_code == 200 and len(resp.json()["items"]) == 20
    engine = make_engine(config, "deals")
    in_process = []
    try:
        with engine.connect() as conn:
            for _ in range(requests_count):
                t = time.perf_counter()
                logic.board(conn, PIPELINE, per_stage=20)
                in_process.append(time.perf_counter() - t)
    finally:
        engine.dispose()
    return {"open_deals": open_count, "deals_shown": shown,
            "response_bytes": len(first.content),
            "board_api": summary_ms(via_api), "board_api_one_manager": summary_ms(mine),
            "next_page_of_a_column_api": summary_ms(pages),
            "board_queries_in_process": summary_ms(in_process), "target_p99_ms": 200}


# -- move -> timeline ------------------------------------------------------------------------

def move_to_timeline(pg_url: str, base_url: str, pipeline: dict, rate: int,
                     duration: int) -> dict:
    engine = sa.create_engine(sqlalchemy_url(pg_url),
                              connect_args={"options": "-csearch_path=contacts"})
    open_stages = [s["id"] for s in pipeline["stages"] if s["kind"] == "open"]
    with engine.connect() as conn:
        picked = conn.execute(sa.text(
            "SELECT id, stage_id FROM deals.deals WHERE status = 'open' ORDER BY random() "
            "LIMIT :n"), {"n": rate * duration}).all()
    watcher = TimelineWatcher(  # when each deal's deal_stage_changed entry is committed
        engine, "kind, data->>'deal_id' AS deal_id",
        key=lambda row: row.deal_id if row.kind == "deal_stage_changed" else None)
    watcher.start()
    answered: dict[str, float] = {}
    http_times: list[float] = []
    failures: list = []
    local = threading.local()

    def move(deal_id, stage_id):
        session = getattr(local, "s", None)
        if session is None:
            session = local.s = requests.Session()
            session.headers["Authorization"] = f"Bearer {API_KEY}"
        target = open_stages[(open_stages.index(stage_id) + 1) % len(open_stages)]
        t = time.monotonic()
        resp = session.post(f"{base_url}/api/v1/deals/{deal_id}/move", timeout=30,
                            json={"stage_id": target, "reason": "bench"})
        done = time.monotonic()
        if resp.status_code == 200:
            answered[deal_id] = done
            http_times.append(done - t)
        else:
            failures.append(resp.status_code)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for i, row in enumerate(picked):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(move, row.id, row.stage_id)
    deadline = time.monotonic() + 30
    while not set(answered) <= set(watcher.seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a second entry for a move would show up by now
    watcher.stop()
    engine.dispose()
    raw = [watcher.seen[d] - t for d, t in answered.items() if d in watcher.seen]
    return {"rate_per_s": rate, "duration_s": duration, "moves": len(answered),
            "http_move": summary_ms(http_times),
            "answer_to_timeline_committed": summary_ms([max(0.0, v) for v in raw]),
            "entries_committed_before_the_answer": sum(1 for v in raw if v < 0),
            "http_failures": len(failures),
            "lost": len(set(answered) - set(watcher.seen)),
            "duplicated": sum(1 for d in answered if watcher.entries.get(d, 0) > 1),
            "target_p99_ms": 100}


# -- reminders -------------------------------------------------------------------------------

class DueObserver(threading.Thread):
    """A queue of our own bound to deals.events/task_due: notes when each reminder arrives."""

    def __init__(self, amqp_uri: str):
        super().__init__(daemon=True)
        self.amqp_uri = amqp_uri
        self.received: list[tuple[float, str, dt.datetime]] = []
        self.ready = threading.Event()
        self._stop_event = threading.Event()

    def run(self):
        conn = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
        channel = conn.channel()
        channel.exchange_declare("deals.events", "topic", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "deals.events", "task_due")
        channel.basic_qos(prefetch_count=2000)

        def on_message(_ch, _method, _props, body):
            now = time.time()
            task = json.loads(body)["task"]
            self.received.append((now, task["id"], dt.datetime.fromisoformat(task["due_at"])))

        channel.basic_consume(queue, on_message, auto_ack=True)
        self.ready.set()
        while not self._stop_event.is_set():
            conn.process_data_events(time_limit=0.2)
        conn.close()

    def stop(self):
        self._stop_event.set()
        self.join(10)


def load_tasks(pg_url: str, count: int, first_due: dt.datetime, window_s: float) -> dict:
    rng = random.Random(13)
    created = dt.datetime.now(dt.timezone.utc)
    rows = io.StringIO()
    due = {}
    for i in range(count):
        tid = f"bt{i:030d}"
        due[tid] = first_due + dt.timedelta(seconds=rng.uniform(0, window_s))
        rows.write(f"{tid}\tReminder {i}\t{_ts(due[tid])}\t{MANAGERS[i % len(MANAGERS)]}\t"
                   f"f\tbench\t{_ts(created)}\n")
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        _copy(cur, "deals.tasks", "id, title, due_at, manager, done, created_by, created_at",
              rows)
        cur.execute("ANALYZE deals.tasks")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return due


def _commits(pg_url: str) -> int:
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT xact_commit FROM pg_stat_database "
                                        "WHERE datname = current_database()")).scalar()
    finally:
        engine.dispose()


def reminders(workdir: Path, config: dict, pg_url: str, deals_proc: HubProcess, count: int,
              window_s: float, restart_pause: float = 5.0, lead_s: float = 15.0
              ) -> tuple[dict, HubProcess]:
    observer = DueObserver(config["AMQP_URI"])
    observer.start()
    observer.ready.wait(10)
    first_due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lead_s)
    started_load = time.perf_counter()
    due = load_tasks(pg_url, count, first_due, window_s)
    load_s = time.perf_counter() - started_load
    commits_before, commits_since = _commits(pg_url), time.monotonic()
    # Stop the deals service halfway through the window, leave it down, start it again.
    restart_at = first_due + dt.timedelta(seconds=window_s / 2)
    time.sleep(max(0.0, (restart_at - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    down_from = dt.datetime.now(dt.timezone.utc)
    deals_proc.stop()
    stopped = dt.datetime.now(dt.timezone.utc)
    time.sleep(restart_pause)
    deals_proc = HubProcess(workdir, "deals-restarted", config, services=["deals"])
    deals_proc.wait_healthy()
    down_until = dt.datetime.now(dt.timezone.utc)
    last_due = max(due.values())
    deadline = time.monotonic() + max(0.0, (last_due - dt.datetime.now(dt.timezone.utc))
                                      .total_seconds()) + 60
    while len({r[1] for r in observer.received}) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # duplicates, if any, would arrive by now
    observer.stop()
    commits_rate = (_commits(pg_url) - commits_before) / (time.monotonic() - commits_since)

    first_seen: dict[str, float] = {}
    duplicates = 0
    for received_at, tid, _due in observer.received:
        if tid in first_seen:
            duplicates += 1
        else:
            first_seen[tid] = received_at
    lateness = {tid: first_seen[tid] - due[tid].timestamp() for tid in first_seen if tid in due}
    during = {t for t, d in due.items() if down_from <= d <= down_until}
    on_time_path = [v for t, v in lateness.items() if t not in during]
    down_path = [v for t, v in lateness.items() if t in during]
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    with engine.connect() as conn:
        recorded = [None if v is None else float(v) for v in conn.execute(sa.text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY s), max(s), count(*) FROM "
            "(SELECT extract(epoch FROM reminded_at - due_at) AS s FROM deals.tasks "
            "WHERE reminded_at IS NOT NULL AND created_by = 'bench') AS x")).one()]
    engine.dispose()

    def seconds(values) -> dict:
        return {"count": len(values),
                "median_s": round(percentile(values, 50), 4) if values else None,
                "p99_s": round(percentile(values, 99), 4) if values else None,
                "max_s": round(max(values), 3) if values else None,
                "min_s": round(min(values), 4) if values else None}

    return {
        "tasks": count, "window_s": window_s,
        "compression": f"{count} tasks due at uniformly random times over {window_s:.0f} s "
                       f"(~{count / window_s:.0f} due per second; the same count over a day "
                       f"would be ~{count / 86400:.1f}/s)",
        "bulk_load_s": round(load_s, 2),
        "restart": {"stopped_at_s": round((down_from - first_due).total_seconds(), 1),
                    "stop_took_s": round((stopped - down_from).total_seconds(), 2),
                    "pause_s": restart_pause,
                    "down_s": round((down_until - down_from).total_seconds(), 2),
                    "tasks_due_while_down": len(during)},
        "fired": len(first_seen), "duplicates": duplicates,
        "missing": len(set(due) - set(first_seen)),
        "lateness_published_all": seconds(list(lateness.values())),
        "lateness_published_due_while_up": seconds(on_time_path),
        "lateness_published_due_while_down": seconds(down_path),
        "lateness_claimed_in_db": {
            "median_s": round(recorded[0], 4) if recorded[0] is not None else None,
            "p99_s": round(recorded[1], 4) if recorded[1] is not None else None,
            "max_s": round(recorded[2], 3) if recorded[2] is not None else None,
            "count": int(recorded[3] or 0)},
        "db_commits_per_s_whole_database": round(commits_rate, 1),
        "target_median_s": 1.0,
    }, deals_proc


# -- the suite -------------------------------------------------------------------------------

def run(workdir: Path, open_deals: int = 10_000, closed_deals: int = 5_000, move_rate: int = 20,
        move_duration: int = 20, reminder_tasks: int = 100_000,
        reminder_window: float = 600.0) -> dict:
    with vhost() as amqp_uri, database() as db_url:
        config = hub_config(amqp_uri, db_url, workdir, REMINDER_INTERVAL_SECONDS=5)
        for service in ("contacts", "deals"):
            upgrade(config, service)
        pipeline = setup_pipeline(config)
        loaded = load_deals(db_url, pipeline, open_deals, closed_deals)
        deals_config = hub_config(amqp_uri, db_url, workdir, REMINDER_INTERVAL_SECONDS=5)
        front = HubProcess(workdir, "gateway-contacts", config, services=["gateway", "contacts"])
        deals_proc = HubProcess(workdir, "deals", deals_config, services=["deals"])
        try:
            front.wait_healthy()
            deals_proc.wait_healthy()
            base_url = f"http://{config['WEB_SERVER_ADDRESS']}"
            result = {"processes": ["gateway+contacts", "deals"],
                      "bulk_load": {"open_deals": open_deals, "closed_deals": closed_deals,
                                    "load_s": loaded["load_s"]}}
            result["board"] = board(config, base_url, pipeline, loaded, open_deals)
            print(json.dumps({"deals.board": result["board"]}, indent=2), flush=True)
            result["move_to_timeline"] = move_to_timeline(db_url, base_url, pipeline, move_rate,
                                                          move_duration)
            print(json.dumps({"deals.move_to_timeline": result["move_to_timeline"]}, indent=2),
                  flush=True)
            result["reminders"], deals_proc = reminders(
                workdir, deals_config, db_url, deals_proc, reminder_tasks, reminder_window)
            print(json.dumps({"deals.reminders": result["reminders"]}, indent=2), flush=True)
            return result
        finally:
            deals_proc.stop()
            front.stop()
