"""Form ingestion end to end on PostgreSQL: HTTP accepted -> card and timeline entry committed.

Hub processes as containers would be: the gateway (one or two), contacts, and deals (which
consumes the contact events too).
* throughput: wrk posts unique submissions as fast as the hub takes them;
* latency: an open-loop sender at a fixed rate; a watcher polls the timeline table every
  2 ms and notes when each submission's entry is committed (readable by the API);
* loss check: every accepted submission has exactly one timeline entry;
* broker baseline: raw pika publish + consume on the same broker, for the ratio.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pika
import requests
import sqlalchemy as sa

from bench.common import TimelineWatcher, database, free_port, hub_config, summary_ms, vhost
from crmhub.runtime.db import sqlalchemy_url
from crmhub.runtime.migrate import upgrade
from crmhub.testing import HubProcess

WRK_SCRIPT = r"""
local threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end
local n = 0
function request()
  n = n + 1
  local body = string.format(
    "name=Bench+%d-%d&phone=%%2B7916%02d%05d&utm_source=bench&utm_campaign=load&submission_id=w%d-%d",
    tid, n, tid, n, tid, n)
  return wrk.format("POST", "/hooks/forms/bench",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
"""


def phase_watcher(engine, prefix: str, interval=0.002) -> TimelineWatcher:
    """Watches the timeline entries of one phase (``prefix`` of their source key)."""
    return TimelineWatcher(engine, "source_key", interval=interval,
                           key=lambda row: row.source_key if row.source_key.startswith(prefix)
                           else None)


def loss_check(engine, prefix: str, accepted_keys: set[str] | None, accepted_count: int) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT source_key, count(*) AS n FROM timeline WHERE kind = 'form_submitted' "
            "AND source_key LIKE :prefix GROUP BY source_key"), {"prefix": prefix + "%"}).all()
    stored = {r.source_key: r.n for r in rows}
    duplicated = sum(1 for n in stored.values() if n > 1)
    result = {"accepted": accepted_count, "stored": len(stored), "duplicated": duplicated}
    if accepted_keys is not None:
        result["lost"] = len(accepted_keys - set(stored))
    else:
        result["lost"] = max(0, accepted_count - len(stored))
    return result


def throughput(base_url: str, engine, duration: int, connections: int) -> dict:
    prefix = "form:forms:bench:w"  # the wrk script's submission ids start with "w"
    watcher = phase_watcher(engine, prefix, interval=0.05)
    watcher.start()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    started = time.monotonic()
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", script.name, base_url], capture_output=True, text=True, check=True)
    load_ended = time.monotonic()
    total = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    errors = re.search(r"Socket errors: (.*)", out.stdout)
    accepted = total - (int(non2xx.group(1)) if non2xx else 0)
    deadline = time.monotonic() + 120
    while len(watcher.seen) < accepted and time.monotonic() < deadline:
        time.sleep(0.1)
    watcher.stop()
    done = max(watcher.seen.values()) if watcher.seen else load_ended
    # Sustained rate: committed entries per second over the load window, skipping warm-up.
    window = [(t, n) for t, n in watcher.counts if started + 3 <= t <= load_ended]
    sustained = ((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
                 if len(window) > 1 else float("nan"))
    http_rate = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    return {
        "duration_s": duration, "connections": connections,
        "http_accepted_per_s": float(http_rate.group(1)) if http_rate else None,
        "end_to_end_per_s": round(len(watcher.seen) / (done - started), 1),
        "sustained_committed_per_s": round(sustained, 1),
        "drain_after_load_s": round(max(0.0, done - load_ended), 2),
        "http_latency": re.findall(r"^\s+(50%|99%)\s+(\S+)", out.stdout, re.M),
        "socket_errors": errors.group(1).strip() if errors else "none",
        "loss": loss_check(engine, prefix, None, accepted),
    }


def latency(base_url: str, engine, rate: int, duration: int) -> dict:
    prefix = "form:forms:bench:lat-"
    watcher = phase_watcher(engine, prefix)
    watcher.start()
    accepted: dict[str, float] = {}
    failures = []
    session_local = threading.local()
    run_id = uuid.uuid4().hex[:6]

    def send(i):
        session = getattr(session_local, "s", None) or requests.Session()
        session_local.s = session
        sid = f"lat-{run_id}-{i}"
        body = {"name": f"Latency {i}", "phone": f"+7926{i:07d}", "utm_source": "bench",
                "submission_id": sid}
        resp = session.post(f"{base_url}/hooks/forms/bench", data=body, timeout=10)
        if resp.status_code == 200:
            accepted[f"form:forms:bench:{sid}"] = time.monotonic()
        else:
            failures.append(resp.status_code)

    total = rate * duration
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i)
    deadline = time.monotonic() + 30
    while not set(accepted) <= set(watcher.seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop()
    latencies = [watcher.seen[k] - t for k, t in accepted.items() if k in watcher.seen]
    return {"rate_per_s": rate, "duration_s": duration,
            "accept_to_readable": summary_ms([max(0.0, v) for v in latencies]),
            "http_failures": len(failures),
            "loss": loss_check(engine, prefix, set(accepted), len(accepted))}


def broker_baseline(amqp_uri: str, count: int = 20000, confirmed: int = 3000) -> dict:
    params = pika.URLParameters(amqp_uri)
    body = b'{"phone": "+79161234567", "name": "Bench", "utm_source": "bench"}' * 6
    conn = pika.BlockingConnection(params)
    channel = conn.channel()
    channel.queue_declare("bench.baseline", durable=True)
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    started = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("", "bench.baseline", body, props)
    publish_s = time.perf_counter() - started
    channel.basic_qos(prefetch_count=500)
    received = 0
    started_consume = time.perf_counter()
    for method, _props, _body in channel.consume("bench.baseline", inactivity_timeout=5):
        if method is None:
            break
        received += 1
        if received % 100 == 0 or received == count:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if received == count:
            break
    channel.cancel()
    consume_s = time.perf_counter() - started_consume
    channel.confirm_delivery()
    started = time.perf_counter()
    for _ in range(confirmed):
        channel.basic_publish("", "bench.baseline", body, props)
    confirm_s = time.perf_counter() - started
    channel.queue_delete("bench.baseline")
    conn.close()
    return {"publish_per_s": round(count / publish_s), "consume_per_s": round(count / consume_s),
            "publish_and_consume_per_s": round(count / (publish_s + consume_s)),
            "publish_confirmed_each_per_s": round(confirmed / confirm_s)}


def run(workdir: Path, duration: int = 20, rate: int = 100, connections: int = 64,
        gateways: int = 1, contacts: int = 1) -> dict:
    """``gateways`` gateway processes sharing one port (the kernel spreads connections over
    them: SO_REUSEPORT), ``contacts`` contacts processes sharing its queues, and one deals
    process, as separately scaled containers would be."""
    with vhost() as amqp_uri, database() as db_url:
        config = hub_config(amqp_uri, db_url, workdir)
        upgrade(config, "contacts")
        upgrade(config, "deals")

        def process(name, service):
            return HubProcess(workdir, name, {**config, "OPS_ADDRESS": f"127.0.0.1:{free_port()}"},
                              services=[service])

        # deals takes its share of contact events, as in the running mesh (no lead rules).
        processes = ([process(f"contacts{i}", "contacts") for i in range(contacts)]
                     + [process("deals", "deals")]
                     + [process(f"gateway{i}", "gateway") for i in range(gateways)])
        engine = sa.create_engine(sqlalchemy_url(db_url),
                                  connect_args={"options": "-csearch_path=contacts"})
        try:
            for process in processes:
                process.wait_healthy()
            base_url = f"http://{config['WEB_SERVER_ADDRESS']}"
            result = {"gateway_processes": gateways, "contacts_processes": contacts,
                      "broker_baseline": broker_baseline(amqp_uri)}
            result["latency"] = latency(base_url, engine, rate, duration)
            result["throughput"] = throughput(base_url, engine, duration, connections)
            e2e = result["throughput"]["end_to_end_per_s"]
            result["ratio_end_to_end_vs_raw_broker"] = round(
                e2e / result["broker_baseline"]["publish_and_consume_per_s"], 3)
            return result
        finally:
            for process in processes:
                process.stop()
            engine.dispose()
