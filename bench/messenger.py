"""Messenger suite: how soon an inbound Telegram message is on the client's card.

A hub (gateway, contacts, deals, messenger on PostgreSQL, the Telegram connector pointed at
the local Bot API fake) takes Telegram updates at a steady rate: first messages of new clients
(a card and, by the lead rule, a deal are made on the way) and messages of clients it knows.
For each, the time from the webhook's 200 to the moment its timeline entry is committed in
the contacts database (watched by polling the table) is the latency. Target: p99 <= 100 ms.

``layout`` places the services in processes as a deployment would (default: one process per
service, as one container each); ``all`` runs them in one process, where the deals made by
the lead rule take the CPU the message's path needs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from bench.common import TimelineWatcher, database, free_port, hub_config, summary_ms, vhost
from crmhub.plugins.telegram.fake_api import SECRET, FakeTelegramApi
from crmhub.runtime.db import make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.testing import HubProcess

SERVICES = ["gateway", "contacts", "deals", "messenger"]
TARGET_P99_MS = 100.0
FIRST_USER = 500_000_000


def update(update_id: int, user_id: int, text: str) -> bytes:
    user = {"id": user_id, "is_bot": False, "first_name": f"Клиент {user_id}",
            "username": f"client_{user_id}"}
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "from": user, "chat": {"id": user_id, "type": "private"},
        "date": int(time.time()), "text": text}}, ensure_ascii=False).encode()


def send_all(url: str, bodies: list[tuple[str, bytes]], rate: float) -> dict[str, float]:
    """Post each body on schedule; returns when each was accepted (monotonic)."""
    accepted = {}
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    with requests.Session() as session:
        start = time.monotonic()
        for n, (marker, body) in enumerate(bodies):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            response = session.post(url, data=body, headers=headers, timeout=10)
            if response.status_code != 200:
                raise RuntimeError(f"webhook refused: {response.status_code} {response.text}")
            accepted[marker] = time.monotonic()
    return accepted


def latencies(watcher: TimelineWatcher, accepted: dict[str, float], wait_s: float = 30) -> list[float]:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not set(accepted) <= set(watcher.seen):
        time.sleep(0.05)
    missing = set(accepted) - set(watcher.seen)
    if missing:
        raise RuntimeError(f"{len(missing)} messages never reached a card")
    return [watcher.seen[m] - accepted[m] for m in accepted]


def processes(layout: str) -> list[list[str]]:
    if layout == "all":
        return [SERVICES]
    groups = [[s for s in group.split("+") if s] for group in layout.split(",")]
    if sorted(s for g in groups for s in g) != sorted(SERVICES):
        raise SystemExit(f"--messenger-layout {layout!r}: place each of {', '.join(SERVICES)} once")
    return groups


def run(workdir: Path, messages: int = 500, rate: float = 20.0, lead_rule: bool = True,
        layout: str = "gateway,messenger,contacts,deals") -> dict:
    """``messages`` new clients, then as many messages from those clients, at ``rate``/s."""
    with database() as db_url, vhost() as amqp_uri, FakeTelegramApi() as bot_api:
        rules = [{"connector": "telegram", "pipeline": "b2b-sales"}] if lead_rule else []
        config = hub_config(amqp_uri, db_url, workdir, LEAD_RULES=rules,
                            CONNECTORS={"telegram": bot_api.settings()})
        for service in SERVICES:
            upgrade(config, service)
        hubs = [HubProcess(workdir, f"messenger-hub{n}",
                           {**config, "OPS_ADDRESS": f"127.0.0.1:{free_port()}"}, services=group)
                for n, group in enumerate(processes(layout))]
        for hub in hubs:
            hub.wait_healthy()
        engine = make_engine(config, "contacts")
        watcher = TimelineWatcher(engine, "kind, data", lambda row: (
            (row.data or {}).get("text") if row.kind == "message" else None), interval=0.001)
        watcher.start()
        try:
            base = f"http://{config['WEB_SERVER_ADDRESS']}"
            requests.post(f"{base}/api/v1/pipelines/templates/b2b-sales", timeout=10,
                          headers={"Authorization": f"Bearer {config['API_KEYS'].split(':')[0]}"})
            url = f"{base}/hooks/telegram/shop"
            warm = [(f"warm {i}", update(i + 1, FIRST_USER - 1 - i, f"warm {i}")) for i in range(20)]
            latencies(watcher, send_all(url, warm, rate))
            new = [(f"first {i}", update(1000 + i, FIRST_USER + i, f"first {i}"))
                   for i in range(messages)]
            new_clients = latencies(watcher, send_all(url, new, rate))
            again = [(f"again {i}", update(10_000 + i, FIRST_USER + i, f"again {i}"))
                     for i in range(messages)]
            known_clients = latencies(watcher, send_all(url, again, rate))
        finally:
            watcher.stop()
            for hub in hubs:
                hub.stop()
            engine.dispose()
    both = new_clients + known_clients
    result = {"layout": layout, "lead_rule": lead_rule, "rate_per_s": rate,
              "new_client": summary_ms(new_clients), "known_client": summary_ms(known_clients),
              "all": summary_ms(both), "target_p99_ms": TARGET_P99_MS}
    result["target_met"] = result["all"]["p99_ms"] <= TARGET_P99_MS
    print(f"messenger: inbound Telegram message on the card after the webhook's 200, "
          f"{len(both)} messages at {rate:g}/s, processes {layout}\n"
          f"  new clients   p50 {result['new_client']['p50_ms']} ms, p99 "
          f"{result['new_client']['p99_ms']} ms (target p99 <= {TARGET_P99_MS:g} ms)\n"
          f"  known clients p50 {result['known_client']['p50_ms']} ms, p99 "
          f"{result['known_client']['p99_ms']} ms (target p99 <= {TARGET_P99_MS:g} ms)\n"
          f"  all           p99 {result['all']['p99_ms']} ms: "
          f"{'met' if result['target_met'] else 'NOT met'}", flush=True)
    return result
