"""An email campaign to 100,000 consenting clients on PostgreSQL, through a running hub.

Cards (with an email and a tag) and their consent are bulk-loaded with COPY (this measures the
campaign, not loading). Then, through the REST API: create the campaign, send it, and time
until every recipient is materialised and the campaign is sending (target: 30 s); then watch
the emails the SMTP server (a local aiosmtpd sink) accepts for ``measure_s`` seconds and
compare that rate with the campaign's configured rate.
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.common import API_KEY, REPO, database, hub_config, vhost
from crmhub.runtime.db import make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.testing import HubProcess

QUEUE_TARGET_S = 30.0
SERVICES = ["contacts", "deals", "email", "gateway"]


def load(config: dict, count: int, chunk: int = 50_000) -> float:
    started = time.perf_counter()
    contacts, email = make_engine(config, "contacts"), make_engine(config, "email")
    try:
        for engine, writer in ((contacts, _cards), (email, _consents)):
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                for start in range(0, count, chunk):
                    writer(cur, range(start, min(count, start + chunk)))
                cur.execute("ANALYZE")
                raw.commit()
            finally:
                raw.close()
    finally:
        contacts.dispose()
        email.dispose()
    return time.perf_counter() - started


def _card_id(i: int) -> str:
    return f"c{i:031d}"


def _cards(cur, ids) -> None:
    cards, emails = io.StringIO(), io.StringIO()
    for i in ids:
        cards.write(f"{_card_id(i)}\tperson\tClient {i}\t[\"vip\"]\t{{}}\tclient {i}\t"
                    "2026-01-01 00:00:00+00\t2026-01-01 00:00:00+00\n")
        emails.write(f"client{i}@bench.example\t{_card_id(i)}\t0\n")
    cards.seek(0)
    emails.seek(0)
    cur.copy_expert("COPY contacts (id, kind, name, tags, custom_fields, search_text, created_at, "
                    "updated_at) FROM STDIN", cards)
    cur.copy_expert("COPY contact_emails (email, contact_id, position) FROM STDIN", emails)


def _consents(cur, ids) -> None:
    rows = io.StringIO()
    for i in ids:
        rows.write(f"{_card_id(i)}\temail\tgranted\t2026-01-01 00:00:00+00\tform:bench\n")
    rows.seek(0)
    cur.copy_expert("COPY consents (contact_id, channel, status, at, source) FROM STDIN", rows)


def _campaign_row(engine, campaign_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT status, materialized, recipients, queued FROM campaigns WHERE id = :id"),
            {"id": campaign_id}).one()


def run(workdir: Path, count: int = 100_000, rate_per_minute: int = 6000,
        measure_s: float = 60.0) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from mailservers import SmtpSink

    sink = SmtpSink(workdir / "smtp").start()
    try:
        with database() as db_url, vhost() as amqp_uri:
            config = hub_config(amqp_uri, db_url, workdir, CAMPAIGN_TICK_S=1,
                                EMAIL={"smtp": sink.settings()})
            for service in SERVICES:
                upgrade(config, service)
            load_s = load(config, count)
            hub = HubProcess(workdir, "campaigns-hub", config, services=SERVICES).wait_healthy()
            engine = make_engine(config, "email")
            try:
                return _measure(hub, engine, sink, count, rate_per_minute, measure_s, load_s)
            finally:
                hub.stop()
                engine.dispose()
    finally:
        sink.stop()


def _measure(hub, engine, sink, count, rate_per_minute, measure_s, load_s) -> dict:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {API_KEY}"
    base = f"{hub.base_url}/api/v1/campaigns"
    created = api.post(base, timeout=30, json={
        "name": "Bench", "segment": {"tags_any": ["vip"]}, "rate_per_minute": rate_per_minute,
        "template": {"subject": "Offer for {{ client.name }}",
                     "text": "Dear {{ client.name }}, https://shop.example/offer",
                     "html": '<p>Dear {{ client.name }}</p><a href="https://shop.example/offer">'
                             "Offer</a>"}})
    created.raise_for_status()
    campaign_id = created.json()["id"]
    started = time.monotonic()
    api.post(f"{base}/{campaign_id}/send", timeout=30).raise_for_status()
    while True:
        row = _campaign_row(engine, campaign_id)
        if row.materialized or time.monotonic() - started > 300:
            break
        time.sleep(0.05)
    queued_s = time.monotonic() - started
    # Sending: what the SMTP server accepts over the window, after a few seconds' start.
    time.sleep(5)
    first, t0 = len(list(sink.dir.glob("*.json"))), time.monotonic()
    time.sleep(measure_s)
    last, t1 = len(list(sink.dir.glob("*.json"))), time.monotonic()
    sent_per_minute = (last - first) / (t1 - t0) * 60
    metrics = api.get(f"{base}/{campaign_id}/metrics", timeout=30).json()
    api.post(f"{base}/{campaign_id}/cancel", timeout=30)
    return {
        "clients": count, "bulk_load_s": round(load_s, 1),
        "recipients": row.recipients, "status_after_queuing": row.status,
        "queued_all_recipients_s": round(queued_s, 2), "queued_target_s": QUEUE_TARGET_S,
        "queued_within_target": queued_s <= QUEUE_TARGET_S and row.recipients == count,
        "configured_rate_per_minute": rate_per_minute,
        "measured_send_rate_per_minute": round(sent_per_minute, 1),
        "send_rate_vs_configured": round(sent_per_minute / rate_per_minute, 3),
        "measure_window_s": round(t1 - t0, 1),
        "sent_so_far": metrics["sent"], "queued_so_far": metrics["queued"],
    }
