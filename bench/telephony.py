"""Telephony end to end on PostgreSQL with 1,000,000 cards: the incoming-call popup, call
events at 500/s, and click-to-call.

One database for the whole suite: the cards are bulk-loaded once with the lookup suite's
loader (COPY), then ``crmhub run`` (every service in one process, or as ``--telephony-layout``
says) takes Mango Office webhooks signed by the simulator (plugins/mango/simulator.py), and
its Mango API is played by ``FakeMangoApi`` in this process.

* popups: 50 managers seated at 50 extensions, each with an open SSE stream
  (``GET /api/v1/calls/stream``, read on raw sockets by one selector thread that notes when
  each event's last byte arrived). Three runs: one call at a time (the idle baseline); one
  caller thread per manager keeping a call ringing that manager's extension (2-4 s each,
  starts spread over 4 s, so 40-50 ring at once: the figure of the issue); every manager
  rung within half a second (a burst). The ``events/call`` Appeared webhook of the extension
  is timed; the rest of the call (answer or hang-up, summary) is posted afterwards by other
  threads. Latency = ``call_ringing`` at the manager's stream - the webhook's HTTP 200 (and -
  the request sent), split at the moment the telephony inbox claimed the ringing signal.
  Callers are cards of the 1M (``known``; one in three has an open deal, which its popup must
  show) or numbers no card has (``unknown``: the popup waits for a new card). Lost = no popup
  at the manager's stream 15 s after the last call.
* call events: many overlapping calls (answered with a recording, missed on two extensions,
  outgoing answered or busy), each call's webhooks spread over its simulated duration
  compressed ``--call-compression`` times, started at the rate that makes ``--call-rate``
  webhooks/s for ``--duration`` s; ~5% of the webhooks posted a second time 0.2-3 s later, as
  vendors do. Posted by worker processes (http.client keep-alive, one connection per lane, a
  call's webhooks in order on one lane, open loop: a late lane is reported, not slowed down).
  A watcher polls ``contacts.timeline`` for the call entries; the telephony inbox gives when
  each signal was handled; CPU of the hub, PostgreSQL, RabbitMQ and the load generator is
  read from /proc over the load.  At the end: one ``telephony.calls`` row and one timeline
  entry per call, every signal handled once, outcomes as the summaries say, each recording
  fetched once and on its card.
* click-to-call: ``POST /api/v1/calls`` by number or card, sequentially then from several
  threads; latency = the fake API's arrival of ``commands/callback`` (its ``command_id`` is
  the call id answered) - the request sent; also the HTTP answer's latency.
"""
from __future__ import annotations

import contextlib
import http.client
import io
import itertools
import json
import multiprocessing
import os
import random
import selectors
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import requests
import sqlalchemy as sa

from bench.common import (
    API_KEY,
    RABBIT_API,
    TimelineWatcher,
    database,
    free_port,
    hub_config,
    summary_ms,
    vhost,
)
from bench.lanes import LaneLoop, raw_post
from bench.lookup import as_written
from bench.lookup import load as load_cards
from bench.lookup import number as card_number
from crmhub.runtime.db import make_engine, sqlalchemy_url
from crmhub.runtime.migrate import upgrade
from crmhub.runtime.registry import SERVICES
from crmhub.testing import HubProcess

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MIX = (("answered", 0.4), ("missed", 0.3), ("outgoing", 0.3))  # calls of the load phase
LINE = "74951234567"
_UNKNOWN = itertools.count()  # unknown callers of the popup phase, each number once
# Each popup phase's samples, for a closer look from a script (not in the results):
# (webhook sent, 200 received, popup shown, signal claimed or None, known, IVR first).
SAMPLES: list[list[tuple]] = []


def known_number(i: int) -> str:
    """Card ``i`` of the loaded million as Mango sends a number: digits with the country code."""
    a, rest = card_number(i)
    return f"7{a}{rest}"


def card_id(i: int) -> str:
    return f"c{i:031d}"  # as bench.lookup.load writes it


# One loaded card in three has an open deal, which its popup must show.
DEAL_EVERY = 3


def deal_titles(card: str) -> list[str]:
    """The open deals the popup of a loaded card shows."""
    i = int(card[1:])
    return [f"Deal {i}"] if i % DEAL_EVERY == 0 else []


def load_card_deals(engine, count: int) -> None:
    """The loaded cards' open deals, as contacts keeps them from the deals service's events."""
    rows = io.StringIO()
    for i in range(0, count, DEAL_EVERY):
        rows.write(f"d{i:031d}\t{card_id(i)}\topen\tDeal {i}\tB2B\tNew lead\t1500.00\tRUB\t"
                   "olga\t1\t2026-01-01 00:00:00+00\n")
    rows.seek(0)
    raw = engine.raw_connection()
    try:
        raw.cursor().copy_expert(
            "COPY card_deals (deal_id, contact_id, status, title, pipeline_name, stage_name, "
            "amount, currency, manager, version, updated_at) FROM STDIN", rows)
        raw.cursor().execute("ANALYZE card_deals")
        raw.commit()
    finally:
        raw.close()


def unknown_number(k: int) -> str:
    """A mobile number no loaded card has (those are +7900... to +7906...)."""
    return f"7950{k:07d}"


# -- the popup stream, read on raw sockets ---------------------------------------------------

class _Stream:
    def __init__(self, manager: str, sock: socket.socket):
        self.manager = manager
        self.sock = sock
        self.raw = b""
        self.headers_done = False
        self.chunked = False
        self.body = b""
        self.status = None
        self.ready = threading.Event()

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Bytes from the socket -> complete SSE events (type, data)."""
        self.raw += data
        if not self.headers_done:
            head, sep, rest = self.raw.partition(b"\r\n\r\n")
            if not sep:
                return []
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            self.chunked = any(line.lower().startswith("transfer-encoding:") and "chunked"
                               in line.lower() for line in lines[1:])
            self.headers_done, self.raw = True, rest
        if self.chunked:
            while True:
                size_line, sep, rest = self.raw.partition(b"\r\n")
                if not sep:
                    break
                size = int(size_line.split(b";")[0], 16)
                if len(rest) < size + 2:
                    break
                self.body += rest[:size]
                self.raw = rest[size + 2:]
        else:
            self.body, self.raw = self.body + self.raw, b""
        events = []
        while b"\n\n" in self.body:
            block, _, self.body = self.body.partition(b"\n\n")
            kind, data = "message", []
            for line in block.decode().split("\n"):
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            if data or kind != "message":
                events.append((kind, "\n".join(data)))
        return events


class PopupStreams(threading.Thread):
    """Open SSE streams of several managers, read by one thread with a selector; notes the
    moment each event was complete. ``ringing[call_key]`` = [(stream's manager, time,
    event)]."""

    def __init__(self, host: str, port: int):
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.selector = selectors.DefaultSelector()
        self.streams: list[_Stream] = []
        self.ringing: dict[str, list[tuple[str, float, dict]]] = defaultdict(list)
        self.other = Counter()
        self.closed: list[str] = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def open(self, manager: str, key: str) -> _Stream:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall((f"GET /api/v1/calls/stream HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                      f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n").encode())
        sock.setblocking(False)
        stream = _Stream(manager, sock)
        with self._lock:
            self.streams.append(stream)
            self.selector.register(sock, selectors.EVENT_READ, stream)
        return stream

    def run(self):
        while not self._stop_event.is_set():
            with self._lock:
                ready = self.selector.select(timeout=0.1) if self.streams else []
            if not ready:
                if not self.streams:
                    time.sleep(0.01)
                continue
            for key, _ in ready:
                stream: _Stream = key.data
                try:
                    data = stream.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                now = time.monotonic()
                if not data:
                    with self._lock:
                        self.selector.unregister(stream.sock)
                    self.closed.append(stream.manager)
                    continue
                for kind, text in stream.feed(data):
                    if kind == "ready":
                        stream.ready.set()
                    elif kind == "call_ringing":
                        event = json.loads(text)
                        self.ringing[event["call"]["call_key"]].append((stream.manager, now, event))
                    else:
                        self.other[kind] += 1

    def close(self):
        self._stop_event.set()
        self.join(5)
        for stream in self.streams:
            with contextlib.suppress(OSError):
                stream.sock.close()


# -- posting webhooks --------------------------------------------------------------------------

class Poster:
    """One keep-alive connection to the hub; ``post`` returns (sent, answered, status)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None
        self.retries = 0

    def post(self, path: str, body: bytes, headers=FORM) -> tuple[float, float, int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            sent = time.monotonic()
            try:
                self.conn.request("POST", path, body, headers)
                resp = self.conn.getresponse()
                content = resp.read()
                if resp.will_close:
                    self.close()
                return sent, time.monotonic(), resp.status, content
            except (OSError, http.client.HTTPException):
                self.close()
                self.retries += attempt == 0
        return sent, time.monotonic(), 0, b""

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _hook_path(hook) -> str:
    return hook.url("http://hub").removeprefix("http://hub")


def _payload(hook) -> dict:
    return json.loads(hook.fields["json"])


def _scenario(kind: str, rng: random.Random, exts: list[str], client: str, start: float):
    from crmhub.plugins.mango import simulator

    if kind == "answered":
        return simulator.answered_incoming(client=client, line=LINE, extension=rng.choice(exts),
                                           start=start, recorded=True)
    if kind == "missed":
        return simulator.missed_incoming(client=client, line=LINE,
                                         extensions=tuple(rng.sample(exts, 2)), start=start)
    return simulator.outgoing(client=client, line=LINE, extension=rng.choice(exts),
                              start=start, answered=rng.random() < 2 / 3)


# -- 1: popup latency --------------------------------------------------------------------------

def popups(hub_addr: tuple[str, int], streams: PopupStreams, managers: list[dict], calls: int,
           contacts: int, unknown_share: float, rng: random.Random, *, parallel: bool = True,
           ring_s: tuple[float, float] = (2.0, 4.0), start_spread: float | None = None,
           engine=None, cpu=None, hubs=()) -> dict:
    """``calls`` calls ringing the managers' extensions. ``parallel``: one caller per manager,
    each keeping one call ringing at a time (so ~all managers' phones ring at once); else one
    caller, one call at a time, round the managers (the idle baseline). Half the calls pass
    the IVR first (answered_incoming: a leg without extension, then the extension rings), half
    ring the extension at once (missed_incoming). The callers start within ``start_spread``
    seconds (default: the longest ring, so that calls arrive evenly from the start)."""
    from crmhub.plugins.mango import simulator

    expected: dict[str, dict] = {}
    ringing_spans: list[tuple[float, float]] = []
    errors = Counter()
    lock = threading.Lock()
    tails = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tail")
    local = threading.local()
    if parallel:
        plans = [[m] * (calls // len(managers) + (1 if m < calls % len(managers) else 0))
                 for m in range(len(managers))]
    else:
        plans = [[j % len(managers) for j in range(calls)]]

    tail_posters: list[Poster] = []

    def poster() -> Poster:
        if getattr(local, "poster", None) is None:
            local.poster = Poster(*hub_addr)
            with lock:
                tail_posters.append(local.poster)
        return local.poster

    def post_tail(hooks, ring_sent):
        p = poster()
        first = True
        for hook in hooks:
            _, answered, status, _ = p.post(_hook_path(hook), hook.body)
            if first:
                with lock:
                    ringing_spans.append((ring_sent, answered))
                first = False
            if status != 200:
                with lock:
                    errors[f"tail_http_{status}"] += 1
            time.sleep(0.05)

    def caller(plan: list[int], seed: float):
        p = Poster(*hub_addr)
        crng = random.Random(seed)
        if parallel:  # the managers' calls do not start in step
            time.sleep(crng.uniform(0, ring_s[1] if start_spread is None else start_spread))
        try:
            for j, m in enumerate(plan):
                manager = managers[m]
                unknown = crng.random() < unknown_share
                if unknown:
                    with lock:
                        client, card = unknown_number(next(_UNKNOWN)), None
                else:
                    i = crng.randrange(contacts)
                    client, card = known_number(i), card_id(i)
                ivr = j % 2 == 0
                if ivr:
                    hooks = simulator.answered_incoming(client=client, line=LINE,
                                                        extension=manager["ext"], recorded=False)
                else:
                    hooks = simulator.missed_incoming(client=client, line=LINE,
                                                      extensions=(manager["ext"],))
                ring = next(k for k, h in enumerate(hooks) if h.path == "/events/call"
                            and _payload(h)["call_state"] == "Appeared"
                            and (_payload(h)["to"] or {}).get("extension") == manager["ext"])
                for hook in hooks[:ring]:  # the IVR answers first
                    p.post(_hook_path(hook), hook.body)
                    time.sleep(0.2)
                ringing = _payload(hooks[ring])
                sent, answered, status, _ = p.post(_hook_path(hooks[ring]), hooks[ring].body)
                with lock:
                    expected[ringing["entry_id"]] = {
                        "manager": manager["name"], "sent": sent, "answered": answered,
                        "status": status, "known": not unknown, "card": card, "ivr": ivr,
                        "signal": f"signal:mango:call:{ringing['call_id']}:{ringing['seq']}"
                                  ":Appeared"}
                time.sleep(max(0.0, crng.uniform(*ring_s) - (time.monotonic() - sent)))
                tails.submit(post_tail, hooks[ring + 1:], sent)
        finally:
            p.close()

    metrics_before = hub_metrics(hubs)
    cpu_before = cpu.sample() if cpu else None
    started = time.monotonic()
    threads = [threading.Thread(target=caller, args=(plan, rng.random()), daemon=True)
               for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tails.shutdown(wait=True)
    for p in tail_posters:
        p.close()
    posted_s = time.monotonic() - started
    cpu_after = cpu.sample() if cpu else None
    deadline = time.monotonic() + 15
    while (time.monotonic() < deadline
           and not all(k in streams.ringing for k in expected)):
        time.sleep(0.1)

    claimed = {}
    if engine is not None:
        wall_minus_mono = time.time() - time.monotonic()
        with engine.connect() as conn:
            claimed = {r.key: r.handled_at.timestamp() - wall_minus_mono for r in conn.execute(
                sa.text("SELECT key, handled_at FROM telephony.inbox WHERE key = ANY(:k)"),
                {"k": [c["signal"] for c in expected.values()]})}
    groups = ("known", "unknown")
    from_200 = {g: [] for g in groups}
    from_sent = {g: [] for g in groups}
    to_claim, claim_to_popup = [], []
    lost, wrong_stream, doubled, wrong_card = [], 0, 0, []
    not_200 = 0
    for entry_id, call in expected.items():
        if call["status"] != 200:
            not_200 += 1
        shown = streams.ringing.get(entry_id, [])
        mine = [(t, e) for who, t, e in shown if who == call["manager"]]
        wrong_stream += len(shown) - len(mine)
        if not mine:
            lost.append(entry_id)
            continue
        doubled += len(mine) > 1
        t, event = mine[0]
        shown_caller = event["caller"]
        if call["known"]:
            wrong = (shown_caller.get("contact_id") != call["card"]
                     or not shown_caller["known"]
                     or [d["title"] for d in shown_caller["open_deals"]] != deal_titles(
                         call["card"]))
        else:
            wrong = bool(shown_caller["known"] or not shown_caller.get("contact_id"))
        if wrong:
            wrong_card.append({"expected": call["card"] or "a new card", "known": call["known"],
                               "ivr_first": call["ivr"],
                               "shown": {k: shown_caller.get(k)
                                         for k in ("contact_id", "known", "open_deals")}})
        group = "known" if call["known"] else "unknown"
        from_200[group].append(t - call["answered"])
        from_sent[group].append(t - call["sent"])
        if call["signal"] in claimed:
            to_claim.append(claimed[call["signal"]] - call["answered"])
            claim_to_popup.append(t - claimed[call["signal"]])
    SAMPLES.append([(c["sent"], c["answered"], mine[0], claimed.get(c["signal"]), c["known"],
                   c["ivr"]) for k, c in expected.items()
                  if (mine := [t for who, t, _ in streams.ringing.get(k, [])
                               if who == c["manager"]])])
    all_200 = from_200["known"] + from_200["unknown"]
    result = {
        "calls": len(expected), "managers": len(managers), "posting_s": round(posted_s, 1),
        "ringing_at_once": _concurrency(sorted(ringing_spans)),
        "popup_after_http_200": {"all": summary_ms(all_200),
                                 "known_caller": summary_ms(from_200["known"]),
                                 "unknown_caller": summary_ms(from_200["unknown"])},
        "popup_after_request_sent": {
            "all": summary_ms(from_sent["known"] + from_sent["unknown"]),
            "known_caller": summary_ms(from_sent["known"]),
            "unknown_caller": summary_ms(from_sent["unknown"])},
        "breakdown": {
            "http_200_to_signal_claimed": summary_ms(to_claim),
            "signal_claimed_to_popup": summary_ms(claim_to_popup),
            "note": "claimed = the telephony inbox's handled_at of the ringing signal: after "
                    "the queue, the caller lookups (contacts.identify_caller, "
                    "deals.search_deals) and the call row's lock; then fold, commit, outbox "
                    "relay, broadcast to the gateway, SSE write"},
        "popup_before_http_200": sum(1 for v in all_200 if v < 0),
        "lost_popups": len(lost), "lost_examples": lost[:5],
        "popups_at_other_managers_streams": wrong_stream, "popups_shown_twice": doubled,
        "wrong_caller_card": len(wrong_card), "wrong_caller_card_examples": wrong_card[:5],
        "wrong_caller_card_by_path": dict(Counter(
            f"{'known' if w['known'] else 'unknown'}{' after IVR' if w['ivr_first'] else ''}"
            for w in wrong_card)),
        "webhooks_not_200": not_200, "tail_errors": dict(errors),
        "streams_closed_by_server": len(streams.closed),
    }
    if cpu:
        result["cpu_cores"] = cpu.cores(cpu_before, cpu_after)
    if hubs:
        result["hub_counted"] = metrics_delta(metrics_before, hub_metrics(hubs))
    return result, list(expected)


def _concurrency(spans: list[tuple[float, float]]) -> dict:
    """Calls ringing at once: time-weighted mean and max, over the spans (start, end)."""
    if not spans:
        return {}
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level, peak, area, last = 0, 0, 0.0, points[0][0]
    for t, delta in points:
        area += level * (t - last)
        level += delta
        peak = max(peak, level)
        last = t
    return {"mean": round(area / (points[-1][0] - points[0][0]), 1), "max": peak}


# -- 2: call events at a rate ------------------------------------------------------------------

def _load_worker(conn, host: str, port: int, lanes: list) -> None:
    """A load generator process: one keep-alive connection per lane, all driven by one
    selector loop (``bench.lanes``); each lane's items (due, path, body, tag) are posted at start + due,
    or as soon as the lane's previous answer is in when it is late (open loop: lateness is
    reported, not slowed down). Waits for the start time over ``conn``, sends back (tag, due,
    sent, answered, status) per item, the lanes' retries and its own CPU seconds."""
    conn.send("ready")
    start_at = conn.recv()
    cpu_before = time.process_time()  # this process's imports are not the load's
    loop = LaneLoop(host, port, start_at, [[(due, raw_post(host, port, path, body, FORM), tag)
                                            for due, path, body, tag in items]
                                           for items in lanes])
    results = loop.run()
    results.append(("retries", loop.retries))
    results.append(("cpu_s", time.process_time() - cpu_before))
    conn.send(results)
    conn.close()


class CpuMeter:
    """CPU seconds of process groups, from /proc: the hub processes, PostgreSQL, RabbitMQ,
    this benchmark's main process (the load generators report their own)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, hub_pids: dict[str, int]):
        self.hub_pids = hub_pids

    @staticmethod
    def _ticks(pid: int) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            return 0

    def _groups(self) -> dict[str, list[int]]:
        groups = {f"hub:{name}": [pid] for name, pid in self.hub_pids.items()}
        groups.update(postgres=[], rabbitmq=[], bench=[os.getpid()])
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "postgres":
                groups["postgres"].append(int(entry.name))
            elif comm in ("beam.smp", "erl_child_setup", "epmd"):
                groups["rabbitmq"].append(int(entry.name))
        return groups

    def sample(self) -> tuple[float, dict[str, int]]:
        return time.monotonic(), {name: sum(self._ticks(p) for p in pids)
                                  for name, pids in self._groups().items()}

    def cores(self, before, after) -> dict[str, float]:
        """Average cores used by each group between two samples (processes that came or went
        in between count from when they were seen)."""
        (t0, a), (t1, b) = before, after
        return {name: round((b[name] - a.get(name, 0)) / self.TICK / (t1 - t0), 2)
                for name in b}


def hub_metrics(hubs) -> Counter:
    """The hubs' Prometheus counters, summed over the processes: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    values: Counter = Counter()
    for hub in hubs:
        try:
            text = requests.get(f"{hub.ops_url}/metrics", timeout=5).text
        except requests.RequestException:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("crmhub_"):
                    values[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    return values


def metrics_delta(before: Counter, after: Counter) -> dict:
    """What the hubs counted in between: handler retries, dead letters, inbox duplicates,
    and the mean wall time of each busy entrypoint (a green thread's, waits included)."""
    delta = Counter({k: v - before.get(k, 0) for k, v in after.items()})
    out: dict = {"handler_retries": {}, "dead_letters": {}, "inbox_duplicates": {},
                 "entrypoints": {}}
    for (name, labels), value in delta.items():
        if not value:
            continue
        lab = dict(labels)
        if name == "crmhub_handler_retries_total":
            out["handler_retries"][lab["queue"]] = int(value)
        elif name == "crmhub_dead_letters_total":
            out["dead_letters"][lab["queue"]] = int(value)
        elif name == "crmhub_inbox_duplicates_total":
            out["inbox_duplicates"][lab["service"]] = int(value)
        elif name in ("crmhub_worker_seconds_sum", "crmhub_worker_seconds_count"):
            key = f"{lab['service']}.{lab['entrypoint']}"
            out["entrypoints"].setdefault(key, {})[name.rsplit("_", 1)[1]] = value
    out["entrypoints"] = {
        key: {"runs": int(v.get("count", 0)),
              "mean_ms": round(1000 * v.get("sum", 0) / v["count"], 1) if v.get("count") else None}
        for key, v in sorted(out["entrypoints"].items(), key=lambda kv: -kv[1].get("sum", 0))}
    return out


def queue_backlog(amqp_uri: str) -> dict[str, int]:
    """Messages ready in the vhost's queues: the names from the management API, the counts
    from the broker itself (the management API's counts lag by its stats interval)."""
    import amqp

    from crmhub.runtime.messaging import connection_params

    name = amqp_uri.rsplit("/", 1)[1]
    try:
        resp = requests.get(f"{RABBIT_API}/queues/{quote(name, safe='')}", auth=("guest", "guest"),
                            timeout=5, params={"columns": "name,exclusive"})
        # An instance's broadcast queues are exclusive: only their owner may declare them.
        names = [q["name"] for q in resp.json() if not q.get("exclusive")]
    except (requests.RequestException, ValueError):
        return {}
    counts = {}
    conn = amqp.Connection(**connection_params(amqp_uri))
    try:
        conn.connect()
        for queue in names:
            try:
                channel = conn.channel()
                counts[queue] = channel.queue_declare(queue, passive=True).message_count
                channel.close()
            except amqp.exceptions.ChannelError:
                pass  # a reply queue that went away
    except OSError:
        return {}
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return {queue: n for queue, n in counts.items() if n}


def build_load(rng: random.Random, rate: float, duration: float, compression: float,
               duplicates: float, exts: list[str], contacts: int, unknown_share: float,
               lanes: int, min_gap: float = 0.03):
    """The calls of the load phase and their webhooks spread over each call's simulated
    duration / ``compression``. Returns (calls, lanes of (due, path, body, tag))."""
    from crmhub.plugins.host import ConnectorHost
    from crmhub.plugins.mango import simulator

    host = ConnectorHost({"CONNECTORS": {"mango": {"api_key": simulator.SIM_API_KEY,
                                                   "api_salt": simulator.SIM_API_SALT}}})
    # Webhooks per call of each scenario, to start calls at the rate that makes ``rate``.
    per_call = {"answered": 8, "missed": 5, "outgoing": 2 / 3 * 4 + 1 / 3 * 3}
    mean_hooks = sum(per_call[k] * share for k, share in MIX)
    starts_per_s = rate / mean_hooks
    calls, items = [], [[] for _ in range(lanes)]
    t, now = 0.0, time.time()
    kinds, weights = zip(*MIX)
    while t < duration:
        kind = rng.choices(kinds, weights)[0]
        if rng.random() < unknown_share:
            client, known = unknown_number(10**6 + len(calls)), False
        else:
            client, known = known_number(rng.randrange(contacts)), True
        hooks = _scenario(kind, rng, exts, client, now + t)
        first = _payload(hooks[0])
        origin = first.get("timestamp") or first.get("create_time")
        signals, outcome, recorded, last = set(), None, False, t
        for n, hook in enumerate(hooks):
            payload = _payload(hook)
            vtime = payload.get("timestamp") or payload.get("end_time") or origin
            due = max(t + (vtime - origin) / compression, last + (min_gap if n else 0))
            last = due
            lane = len(calls) % lanes
            items[lane].append((due, _hook_path(hook), hook.body, (len(calls), n, 0)))
            if rng.random() < duplicates:
                items[lane].append((due + rng.uniform(0.2, 3.0), _hook_path(hook), hook.body,
                                    (len(calls), n, 1)))
            for _, event in host.handle(hook.request())[1].events:
                signals.add(event["idempotency_key"])
                if event["kind"] == "finished":
                    outcome = event["outcome"]
                recorded |= event["kind"] == "recording"
        calls.append({"entry_id": first["entry_id"], "kind": kind, "known": known,
                      "hooks": len(hooks), "signals": signals, "outcome": outcome,
                      "recorded": recorded, "start": t, "end": last, "client": client})
        t += rng.expovariate(starts_per_s)
    for lane in items:
        lane.sort(key=lambda item: item[0])
    return calls, items


def call_events(hub_addr, amqp_uri: str, engine, fake, cpu: CpuMeter, hubs, *, rate: int,
                duration: int, compression: float, duplicates: float, exts: list[str],
                contacts: int, unknown_share: float, workers: int, lanes_per_worker: int,
                streams: PopupStreams, rng: random.Random) -> dict:
    lanes = workers * lanes_per_worker
    calls, items = build_load(rng, rate, duration, compression, duplicates, exts, contacts,
                              unknown_share, lanes)
    entry_ids = [c["entry_id"] for c in calls]
    originals = sum(c["hooks"] for c in calls)
    dup_count = sum(len(lane) for lane in items) - originals
    with engine.connect() as conn:
        base_id = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM contacts.timeline")
                               ).scalar()
    downloads_before = len(fake.downloads)
    popups_before = sum(len(v) for v in streams.ringing.values())
    ctx = multiprocessing.get_context("spawn")
    procs, pipes = [], []
    for w in range(workers):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_load_worker, daemon=True,
                           args=(child, hub_addr[0], hub_addr[1],
                                 items[w * lanes_per_worker:(w + 1) * lanes_per_worker]))
        proc.start()
        procs.append(proc)
        pipes.append(parent)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    watcher = TimelineWatcher(
        sa.create_engine(engine.url, connect_args={"options": "-csearch_path=contacts"}),
        "source_key, kind", interval=0.05,
        key=lambda row: row.source_key if row.kind == "call" and row.id > base_id else None)
    watcher.start()
    backlog_samples: list[dict] = []
    sampling = threading.Event()

    def sample_backlog():
        while not sampling.wait(2.0):
            backlog_samples.append(queue_backlog(amqp_uri))

    sampler = threading.Thread(target=sample_backlog, daemon=True)
    start_at = time.monotonic() + 0.5
    wall_start = time.time() + 0.5
    for pipe in pipes:
        pipe.send(start_at)
    metrics_before = hub_metrics(hubs)
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu_start = cpu.sample()
    sampler.start()
    results = []
    for pipe in pipes:
        results.extend(pipe.recv())
    for proc in procs:
        proc.join(10)
    load_ended = time.monotonic()
    cpu_load = cpu.sample()
    backlog_end = queue_backlog(amqp_uri)
    retries = sum(r[1] for r in results if r[0] == "retries")
    generator_cpu_s = sum(r[1] for r in results if r[0] == "cpu_s")
    sends = [r for r in results if r[0] not in ("retries", "cpu_s")]
    # Drain: until every call has its entry, or no progress for 30 s.
    last_progress, seen = time.monotonic(), 0
    while len(watcher.seen) < len(calls) and time.monotonic() - last_progress < 30:
        if len(watcher.seen) > seen:
            seen, last_progress = len(watcher.seen), time.monotonic()
        time.sleep(0.1)
    # The recordings stored after the entries: give them the same patience.
    recorded = sum(c["recorded"] for c in calls)
    settle = time.monotonic() + 30
    while time.monotonic() < settle:
        with engine.connect() as conn:
            stored = conn.execute(sa.text(
                "SELECT count(*) FROM telephony.calls WHERE call_key = ANY(:k) "
                "AND recording_key IS NOT NULL"), {"k": entry_ids}).scalar()
        if stored >= recorded:
            break
        time.sleep(0.2)
    cpu_drain = cpu.sample()
    _wait_quiet(amqp_uri)  # the handlers after the last entry (recording_ready, tasks) are done
    sampling.set()
    watcher.stop()
    watcher.engine.dispose()
    counted = metrics_delta(metrics_before, hub_metrics(hubs))

    ok = [s for s in sends if s[4] == 200]
    replays = [s for s in sends if s[0][2]]
    first_sent = min(s[2] for s in sends)
    last_answer = max(s[3] for s in sends)
    load_s = last_answer - first_sent
    lateness = [s[2] - (start_at + s[1]) for s in sends]
    http_latency = [s[3] - s[2] for s in sends]
    # Steady state: past the first call's span and up to the end of the starts.
    steady = (start_at + 4.0, start_at + duration)
    in_steady = [s for s in ok if steady[0] <= s[3] <= steady[1]]
    # Entries committed per second during the load (after warm-up) and overall.
    window = [(t, n) for t, n in watcher.counts if start_at + 3 <= t <= load_ended]
    sustained = ((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
                 if len(window) > 1 and window[-1][0] > window[0][0] else float("nan"))
    done = max(watcher.seen.values()) if watcher.seen else load_ended
    after_load = sum(1 for t in watcher.seen.values() if t > load_ended)
    checks = _check_calls(engine, calls)
    with engine.connect() as conn:
        handled = [r[0].timestamp() for r in conn.execute(sa.text(
            "SELECT handled_at FROM telephony.inbox WHERE handled_at >= to_timestamp(:t) "
            "AND key LIKE 'signal:%'"), {"t": wall_start - 1})]
    offset = start_at - wall_start  # monotonic = wall + offset
    handled_mono = sorted(h + offset for h in handled)
    in_load = [h for h in handled_mono if steady[0] <= h <= steady[1]]
    expected_signals = sum(len(c["signals"]) for c in calls)
    ringing_expected = sum(1 if c["kind"] == "answered" else 2 if c["kind"] == "missed" else 0
                           for c in calls)
    load_window_s = cpu_load[0] - cpu_start[0]
    load_cores = {**cpu.cores(cpu_start, cpu_load),
                  "load_generators": round(generator_cpu_s / load_window_s, 2)}
    result = {
        "duration_s": duration, "compression": compression,
        "calls": len(calls), "calls_by_kind": dict(Counter(c["kind"] for c in calls)),
        "unknown_callers": sum(not c["known"] for c in calls),
        "webhooks": originals, "duplicate_webhooks": dup_count,
        "duplicates_answered_200": sum(1 for s in replays if s[4] == 200),
        "signals_expected": expected_signals,
        "offered_per_s_steady": round(sum(
            1 for s in sends if steady[0] <= start_at + s[1] <= steady[1])
            / (steady[1] - steady[0]), 1),
        "offered_per_s_overall": round(len(sends) / (max(s[1] for s in sends) or 1), 1),
        "target_per_s": rate,
        "accepted_per_s": round(len(ok) / load_s, 1),
        "accepted_per_s_steady": round(len(in_steady) / (steady[1] - steady[0]), 1),
        "http_not_200": dict(Counter(s[4] for s in sends if s[4] != 200)),
        "client_retries": retries,
        "webhook_http_latency": summary_ms(http_latency),
        "sender_lateness": summary_ms([max(0.0, v) for v in lateness]),
        "signals_handled_per_s_steady": round(len(in_load) / (steady[1] - steady[0]), 1),
        "signals_handled_per_s_overall": round(
            len(handled_mono) / max(1e-9, handled_mono[-1] - start_at), 1) if handled_mono else 0,
        "entries_committed_per_s_sustained": round(sustained, 1),
        "entries_per_s_end_to_end": round(len(watcher.seen) / max(1e-9, done - start_at), 1),
        "entries_per_s_after_load": round(after_load / (done - load_ended), 1)
        if done > load_ended else None,
        "entries_committed_during_load": len(watcher.seen) - after_load,
        "load_s": round(load_s, 1),
        "drain_after_load_s": round(max(0.0, done - load_ended), 2),
        "cpu_cores_during_load": load_cores,
        "cpu_cores_during_drain": cpu.cores(cpu_load, cpu_drain),
        # CPU per webhook: comparable across rates and days where throughput is not.
        "cpu_ms_per_accepted_webhook": _per_webhook(load_cores, load_window_s, len(ok)),
        "queue_backlog_at_load_end": backlog_end,
        "queue_backlog_peak": _peaks(backlog_samples),
        "popups_during_load": {
            "expected_if_ringing_is_handled_before_the_answer": ringing_expected,
            "delivered": sum(len(v) for v in streams.ringing.values()) - popups_before},
        "recording_downloads": len(fake.downloads) - downloads_before,
        "recorded_calls": recorded,
        "hub_counted": counted,
        **checks,
    }
    result["drained"] = checks["lost_calls"] == 0 and checks["lost_entries"] == 0
    return result


def _per_webhook(cores: dict[str, float], seconds: float, accepted: int) -> dict[str, float]:
    """Milliseconds of CPU per accepted webhook, by process group and in all."""
    per = {name: round(share * seconds / accepted * 1000, 2) for name, share in cores.items()}
    return {**per, "all": round(sum(per.values()), 2)} if accepted else {}


def _peaks(samples: list[dict]) -> dict[str, int]:
    peaks: dict[str, int] = {}
    for sample in samples:
        for name, count in sample.items():
            peaks[name] = max(peaks.get(name, 0), count)
    return dict(sorted(peaks.items(), key=lambda kv: -kv[1])[:8])


def _check_calls(engine, calls: list[dict]) -> dict:
    """One calls row and one timeline entry per posted call; every signal handled; outcomes
    as the summaries say; recordings on the cards."""
    entry_ids = [c["entry_id"] for c in calls]
    with engine.connect() as conn:
        rows = {r.call_key: r for r in conn.execute(sa.text(
            "SELECT id, call_key, status, outcome, recording_key, contact_id "
            "FROM telephony.calls WHERE provider = 'mango' AND call_key = ANY(:k)"),
            {"k": entry_ids})}
        keys = [f"call:{r.id}" for r in rows.values()]
        entries = {r.source_key: r for r in conn.execute(sa.text(
            "SELECT source_key, count(*) AS n, bool_or((data::jsonb ->> 'recording_url') "
            "IS NOT NULL) AS has_recording FROM contacts.timeline WHERE kind = 'call' "
            "AND source_key = ANY(:k) GROUP BY source_key"), {"k": keys})}
        expected = sorted({f"signal:{s}" for c in calls for s in c["signals"]})
        handled = {r[0] for r in conn.execute(sa.text(
            "SELECT key FROM telephony.inbox WHERE key = ANY(:k)"), {"k": expected})}
    lost_calls = [c["entry_id"] for c in calls if c["entry_id"] not in rows]
    lost_entries, doubled, wrong_outcome, unfinished = [], 0, Counter(), 0
    recording_missing_on_card, recording_not_stored = [], 0
    for c in calls:
        row = rows.get(c["entry_id"])
        if row is None:
            continue
        entry = entries.get(f"call:{row.id}")
        if entry is None:
            lost_entries.append(row.id)
        elif entry.n > 1:
            doubled += 1
        if row.status != "finished":
            unfinished += 1
        if row.outcome != c["outcome"]:
            wrong_outcome[f"{c['outcome']}->{row.outcome}"] += 1
        if c["recorded"]:
            if row.recording_key is None:
                recording_not_stored += 1
            elif entry is not None and not entry.has_recording:
                recording_missing_on_card.append(row.id)
    return {"calls_rows": len(rows), "lost_calls": len(lost_calls),
            "lost_call_examples": lost_calls[:3], "lost_entries": len(lost_entries),
            "lost_entry_examples": lost_entries[:3], "duplicated_entries": doubled,
            "signals_not_handled": len(set(expected) - handled),
            "calls_not_finished": unfinished, "wrong_outcomes": dict(wrong_outcome),
            "recordings_not_stored": recording_not_stored,
            "recordings_stored_but_not_on_card": len(recording_missing_on_card),
            "recording_not_on_card_examples": recording_missing_on_card[:3]}


# -- 3: click-to-call --------------------------------------------------------------------------

def click_to_call(hub_addr, fake, managers: list[dict], contacts: int, count: int,
                  concurrency: int, rng: random.Random) -> dict:
    placed: list[dict] = []
    lock = threading.Lock()

    def place(p: Poster, manager: dict, crng: random.Random):
        i = crng.randrange(contacts)
        by_card = crng.random() < 0.5
        body = {"contact_id": card_id(i)} if by_card else {"number": as_written(i)}
        sent, answered, status, content = p.post(
            "/api/v1/calls", json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {manager['key']}"})
        call_id = json.loads(content).get("id") if status == 201 else None
        with lock:
            placed.append({"sent": sent, "answered": answered, "status": status,
                           "id": call_id, "by_card": by_card, "phase": phase})

    def run_thread(n, seed):
        crng, p = random.Random(seed), Poster(*hub_addr)
        for _ in range(n):
            place(p, crng.choice(managers), crng)
        p.close()

    phase = "warmup"
    run_thread(10, rng.random())
    sequential = count // 2
    phase = "sequential"
    run_thread(sequential, rng.random())
    phase = "concurrent"
    shares = [(count - sequential) // concurrency + (t < (count - sequential) % concurrency)
              for t in range(concurrency)]
    threads = [threading.Thread(target=run_thread, args=(n, rng.random())) for n in shares]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    concurrent_s = time.monotonic() - started
    time.sleep(1.0)
    arrived = {c.payload.get("command_id"): c.arrived for c in list(fake.commands)
               if c.path == "commands/callback"}
    result = {"target_p99_ms": 50, "requests": 0}
    for name in ("sequential", "concurrent"):
        mine = [p for p in placed if p["phase"] == name]
        reached = [p for p in mine if p["id"] in arrived]
        result["requests"] += len(mine)
        result[name] = {
            "requests": len(mine), "http_not_201": dict(Counter(p["status"] for p in mine
                                                                if p["status"] != 201)),
            "not_reaching_pbx": len(mine) - len(reached),
            "request_to_pbx": summary_ms([arrived[p["id"]] - p["sent"] for p in reached]),
            "request_to_pbx_by_number": summary_ms([arrived[p["id"]] - p["sent"] for p in reached
                                                 if not p["by_card"]]),
            "request_to_pbx_by_card": summary_ms([arrived[p["id"]] - p["sent"] for p in reached
                                               if p["by_card"]]),
            "http_answer": summary_ms([p["answered"] - p["sent"] for p in mine])}
    result["concurrent"]["threads"] = concurrency
    result["concurrent"]["calls_per_s"] = round(result["concurrent"]["requests"] / concurrent_s, 1)
    every = [arrived[p["id"]] - p["sent"] for p in placed
             if p["phase"] != "warmup" and p["id"] in arrived]
    result["request_to_pbx_all"] = summary_ms(every)
    result["meets_target"] = bool(every) and result["request_to_pbx_all"]["p99_ms"] <= 50
    return result


# -- the suite ---------------------------------------------------------------------------------

def code_version() -> dict:
    """The commit benchmarked, and the files changed in the working tree (not committed)."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent,
                              capture_output=True, text=True).stdout.rstrip("\n")

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()
               if not line[3:].startswith("bench/")]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_changes": changed}


def _processes(layout: str) -> list[list[str]]:
    """``all`` (one process), or processes separated by "," with services joined by "+":
    ``gateway,telephony,contacts+deals``."""
    if layout == "all":
        return [list(SERVICES)]
    groups = [[s for s in group.split("+") if s] for group in layout.split(",")]
    named = [s for group in groups for s in group]
    unknown = set(named) - set(SERVICES)
    if unknown or set(SERVICES) - set(named):
        raise SystemExit(f"--telephony-layout {layout!r}: every one of {', '.join(SERVICES)} "
                         "once or more, e.g. gateway,telephony,contacts+deals")
    return groups


def run(workdir: Path, contacts: int = 1_000_000, calls: int = 500, managers: int = 50,
        call_rate: int = 500, duration: int = 20, compression: float = 20.0,
        duplicates: float = 0.05, unknown_share: float = 0.2, clicks: int = 600,
        click_concurrency: int = 8, layout: str = "all", load_workers: int = 4,
        lanes_per_worker: int = 48, seed: int = 7, hub_settings: dict | None = None) -> dict:
    """The three figures on one database loaded once; ``hub_settings`` override the hub's
    config (e.g. ``{"max_workers": 64}``)."""
    from crmhub.plugins.mango.fake_api import FakeMangoApi

    rng = random.Random(seed)
    random.seed(seed)
    team = [{"name": f"manager{m:02d}", "ext": str(201 + m),
             "key": f"bench-manager{m:02d}-{uuid.uuid4().hex[:8]}"} for m in range(managers)]
    api_keys = ",".join([f"{API_KEY}:admin:Admin"]
                        + [f"{m['key']}:operator:{m['name']}" for m in team])
    result: dict = {"code": code_version(), "contacts": contacts, "layout": layout,
                    "hub_settings": hub_settings or {}}
    with (database() as db_url, vhost() as amqp_uri, FakeMangoApi() as fake,
          contextlib.ExitStack() as stack):
        config = hub_config(amqp_uri, db_url, workdir, API_KEYS=api_keys,
                            CONNECTORS={"mango": fake.settings(allow_private_recording_hosts=True)},
                            **(hub_settings or {}))
        for service in SERVICES:
            upgrade(config, service)
        cards_engine = make_engine(config, "contacts")
        stack.callback(cards_engine.dispose)
        result["bulk_load_s"] = round(load_cards(cards_engine, contacts), 1)
        load_card_deals(cards_engine, contacts)
        engine = sa.create_engine(sqlalchemy_url(db_url))
        stack.callback(engine.dispose)

        hubs = {}
        for n, services in enumerate(_processes(layout)):
            name = "+".join(services) if layout != "all" else "all"
            name = name if name not in hubs else f"{name}-{n}"
            hubs[name] = HubProcess(workdir, f"telephony-hub{n}",
                                    {**config, "OPS_ADDRESS": f"127.0.0.1:{free_port()}"},
                                    services=services)
        for hub in hubs.values():
            stack.callback(hub.stop)
        for hub in hubs.values():
            hub.wait_healthy()
        host, port = config["WEB_SERVER_ADDRESS"].split(":")
        hub_addr = (host, int(port))
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {API_KEY}"
        base = f"http://{config['WEB_SERVER_ADDRESS']}"
        for m in team:
            admin.put(f"{base}/api/v1/extensions/{m['ext']}", timeout=10,
                      json={"manager": m["name"], "provider": "mango"}).raise_for_status()

        streams = PopupStreams(*hub_addr)
        streams.start()
        stack.callback(streams.close)
        for m in team:
            streams.open(m["name"], m["key"])
        for stream in streams.streams:
            if not stream.ready.wait(15):
                raise RuntimeError(f"no ready event on {stream.manager}'s stream")

        cpu = CpuMeter({name: hub.proc.pid for name, hub in hubs.items()})
        # Warm-up: a few calls through every path, not measured.
        popups(hub_addr, streams, team[:5], 10, contacts, 0.5, random.Random(seed + 1),
               parallel=False, ring_s=(0.3, 0.5))
        streams.ringing.clear()
        measured = {"engine": engine, "cpu": cpu, "hubs": list(hubs.values())}
        idle, idle_calls = popups(hub_addr, streams, team, idle_calls_count(calls), contacts,
                                  unknown_share, rng, parallel=False, ring_s=(0.3, 0.6),
                                  **measured)
        busy, busy_calls = popups(hub_addr, streams, team, calls, contacts, unknown_share, rng,
                                  **measured)
        burst, burst_calls = popups(hub_addr, streams, team, len(team), contacts, unknown_share,
                                    rng, ring_s=(2.0, 3.0), start_spread=0.5, **measured)
        p99 = busy["popup_after_http_200"]["all"]["p99_ms"]
        result["popups"] = {
            "all_managers_ringing": busy, "one_call_at_a_time": idle,
            "burst_every_manager_rung_within_half_a_second": burst, "target_p99_ms": 100,
            "meets_target": busy["lost_popups"] == 0 and p99 <= 100}
        # Let the popup phase's calls land on the cards before the load phase counts entries.
        result["popups"]["calls_without_timeline_entry"] = _wait_entries(
            engine, idle_calls + busy_calls + burst_calls)
        print(json.dumps({"telephony.popups": result["popups"]}), flush=True)

        result["call_events"] = call_events(
            hub_addr, amqp_uri, engine, fake, cpu, list(hubs.values()), rate=call_rate,
            duration=duration,
            compression=compression, duplicates=duplicates, exts=[m["ext"] for m in team],
            contacts=contacts, unknown_share=0.1, workers=load_workers,
            lanes_per_worker=lanes_per_worker, streams=streams, rng=rng)
        print(json.dumps({"telephony.call_events": result["call_events"]}), flush=True)
        _wait_quiet(amqp_uri)

        result["click_to_call"] = click_to_call(hub_addr, fake, team, contacts, clicks,
                                                click_concurrency, rng)
        dead = _dead_letters(amqp_uri)
        result["dead_letters"] = dead
        errors = [line for hub in hubs.values() for line in hub.logs()
                  if line.get("level") in ("error", "critical")]
        result["hub_errors_logged"] = len(errors)
        result["hub_errors_by_event"] = dict(Counter(
            f"{e.get('event')}: {_error_kind(e)}" for e in errors))
        result["hub_error_examples"] = [
            {k: str(v)[:300] for k, v in e.items()
             if k in ("event", "error", "exception", "call_id", "queue")} for e in errors[:3]]
    result["summary"] = _summary(result)
    return result


def _error_kind(line: dict) -> str:
    """What an error log line is about, in a few words (the exception's type and first line)."""
    text = str(line.get("error") or line.get("exception") or "")
    for marker in ("errors.", "exc_type': '"):
        if marker in text:
            return text.split(marker, 1)[1].split(")", 1)[0].split("'", 1)[0][:80]
    return text.split("\n", 1)[0][:80]


def _summary(result: dict) -> dict:
    """The figures of the telephony issue, at a glance."""
    busy = result["popups"]["all_managers_ringing"]
    load = result["call_events"]
    clicks = result["click_to_call"]
    return {
        "popup_p50_p95_p99_ms": [busy["popup_after_http_200"]["all"][k]
                                 for k in ("p50_ms", "p95_ms", "p99_ms")],
        "popup_target_p99_ms": 100, "popups_lost": busy["lost_popups"],
        "popup_meets_target": result["popups"]["meets_target"],
        "events_per_s_target": load["target_per_s"],
        "events_per_s_offered": load["offered_per_s_steady"],
        "events_per_s_accepted": load["accepted_per_s_steady"],
        "cpu_ms_per_event": load["cpu_ms_per_accepted_webhook"].get("all"),
        "signals_handled_per_s_during_load": load["signals_handled_per_s_steady"],
        "timeline_entries_per_s_during_load": load["entries_committed_per_s_sustained"],
        "drain_after_load_s": load["drain_after_load_s"],
        "calls_lost": load["lost_calls"], "entries_lost": load["lost_entries"],
        "entries_duplicated": load["duplicated_entries"],
        "click_to_call_p99_ms": clicks["request_to_pbx_all"]["p99_ms"],
        "click_to_call_p99_ms_sequential": clicks["sequential"]["request_to_pbx"]["p99_ms"],
        "click_to_call_p99_ms_concurrent": clicks["concurrent"]["request_to_pbx"]["p99_ms"],
        "click_to_call_meets_target": clicks["meets_target"],
    }


def idle_calls_count(calls: int) -> int:
    return max(20, min(40, calls // 12))


def _wait_entries(engine, entry_ids: list[str], timeout: float = 60) -> int:
    """Waits until each call has its timeline entry; returns how many have none."""
    deadline = time.monotonic() + timeout
    missing = len(entry_ids)
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            missing = conn.execute(sa.text(
                "SELECT count(*) FROM telephony.calls c WHERE c.call_key = ANY(:k) AND NOT "
                "EXISTS (SELECT 1 FROM contacts.timeline t WHERE t.source_key = 'call:' || c.id)"),
                {"k": entry_ids}).scalar()
        if not missing:
            break
        time.sleep(0.5)
    return missing


def _wait_quiet(amqp_uri: str, timeout: float = 60) -> None:
    """Until the broker's queues are empty (the previous phase's work is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
            not name.startswith("crmhub.dlq") for name in queue_backlog(amqp_uri)):
        time.sleep(1)


def _dead_letters(amqp_uri: str) -> dict[str, int]:
    return {name: n for name, n in queue_backlog(amqp_uri).items() if name.startswith("crmhub.dlq")}


