"""Phone lookup and substring search with 1,000,000 cards on PostgreSQL.

Cards are bulk-loaded with COPY (this measures lookups, not loading), then looked up with
the number written the ways people and providers write it: in the contacts service's own
query path, and through the REST API of a running hub. The API is asked over one keep-alive
``http.client`` connection: ``requests`` alone spent 0.7 ms of CPU a call on this machine
(by psutil), on the two cores the hub runs on, a fifth of what was measured.
"""
from __future__ import annotations

import http.client
import io
import json
import random
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.common import API_KEY, database, hub_config, summary_ms, vhost
from crmhub.runtime.db import make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.contacts import logic
from crmhub.testing import HubProcess

FORMATS = ("+7{a}{b}{c}", "8 ({a}) {b}-{c}", "7{a}{b}{c}", "+7 {a} {b} {c}", "8{a}{b}{c}")


def number(i: int) -> tuple[str, str]:
    digits = f"{9000000000 + i * 7:010d}"
    return digits[:3], digits[3:]


def as_written(i: int) -> str:
    a, rest = number(i)
    return random.choice(FORMATS).format(a=a, b=rest[:3], c=rest[3:])


def load(engine, count: int, chunk: int = 100_000) -> float:
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DROP INDEX IF EXISTS ix_contacts_search_trgm")
        for start in range(0, count, chunk):
            contacts, phones = io.StringIO(), io.StringIO()
            for i in range(start, min(count, start + chunk)):
                a, rest = number(i)
                e164 = f"+7{a}{rest}"
                contacts.write(f"c{i:031d}\tperson\tClient {i}\t[]\t{{}}\tclient {i} 7{a}{rest}\t"
                               "2026-01-01 00:00:00+00\t2026-01-01 00:00:00+00\n")
                phones.write(f"c{i:031d}\t{e164}\t{e164}\t0\n")
            contacts.seek(0)
            phones.seek(0)
            cur.copy_expert("COPY contacts (id, kind, name, tags, custom_fields, search_text, "
                            "created_at, updated_at) FROM STDIN", contacts)
            cur.copy_expert("COPY contact_phones (contact_id, e164, raw, position) FROM STDIN",
                            phones)
        cur.execute("CREATE INDEX ix_contacts_search_trgm ON contacts "
                    "USING gin (search_text public.gin_trgm_ops)")
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def run(workdir: Path, count: int = 1_000_000, lookups: int = 2000, api_lookups: int = 1000) -> dict:
    random.seed(7)
    with database() as db_url, vhost() as amqp_uri:
        config = hub_config(amqp_uri, db_url, workdir)
        upgrade(config, "contacts")
        engine = make_engine(config, "contacts")
        load_s = load(engine, count)
        in_service = []
        with engine.connect() as conn:
            for _ in range(lookups):
                i = random.randrange(count)
                t = time.perf_counter()
                page = logic.search(conn, phone=as_written(i), limit=20)
                in_service.append(time.perf_counter() - t)
                assert page["total"] == 1, page
            substring = []
            for _ in range(200):
                needle = f"client {random.randrange(count)}"
                t = time.perf_counter()
                logic.search(conn, q=needle, limit=20)
                substring.append(time.perf_counter() - t)
        hub = HubProcess(workdir, "lookup-hub", config, services=["gateway", "contacts"]).wait_healthy()
        try:
            host, port = config["WEB_SERVER_ADDRESS"].rsplit(":", 1)
            api = http.client.HTTPConnection(host, int(port), timeout=10)
            headers = {"Authorization": f"Bearer {API_KEY}"}

            def lookup(i):
                api.request("GET", "/api/v1/contacts?" + urlencode({"phone": as_written(i)}),
                            headers=headers)
                resp = api.getresponse()
                return resp.status, resp.read()

            lookup(1)  # warm-up
            via_api = []
            for _ in range(api_lookups):
                i = random.randrange(count)
                t = time.perf_counter()
                status, body = lookup(i)
                via_api.append(time.perf_counter() - t)
                assert status == 200 and json.loads(body)["total"] == 1
            api.close()
        finally:
            hub.stop()
            engine.dispose()
    return {"contacts": count, "bulk_load_s": round(load_s, 1),
            "phone_lookup_query": summary_ms(in_service),
            "phone_lookup_api": summary_ms(via_api),
            "substring_search_query": summary_ms(substring)}
