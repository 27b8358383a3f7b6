"""Messaging guarantees on a real RabbitMQ: nothing dispatched before a consumer started is
lost, redeliveries have no second effect, failing handlers retry then park in a dead-letter
queue an operator can list and replay, the request id travels with the events."""
import datetime as dt
import json
import subprocess
import uuid

import eventlet
import pytest
import requests
import sqlalchemy as sa
import yaml
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from crmhub.contracts.base import new_event
from crmhub.contracts.contacts import ContactCreatedSchema
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.runtime.db import Database, make_engine, reliability_tables
from crmhub.runtime.dlq import list_dead_letters, replay_dead_letters
from crmhub.runtime.handlers import batch_handler, reliable_handler
from crmhub.runtime.messaging import OutgoingMessage, get_publisher
from crmhub.runtime.migrate import upgrade
from crmhub.runtime.rpc import CONNECTION_NAME, RpcProxy
from crmhub.runtime.timer import timer
from crmhub.runtime.topology import dead_letter_queue_name, declare_topology, handler_queue_name
from crmhub.services.contacts import logic
from crmhub.services.contacts.service import ContactsService
from support import RABBIT_API, RABBIT_AUTH, REPO, observed, queue_depth, wait_for

pytestmark = pytest.mark.rabbit

# -- a service whose handler fails until told otherwise ------------------------------------------

flaky_metadata = sa.MetaData()
reliability_tables(flaky_metadata)
handled = sa.Table("handled", flaky_metadata, sa.Column("id", sa.String(64), primary_key=True))
STATE = {"fail": True, "attempts": 0}


class FlakyService:
    name = "flaky"
    db = Database(flaky_metadata, relay=False)

    @reliable_handler("source", "thing_happened")
    def on_thing(self, payload):
        STATE["attempts"] += 1
        if STATE["fail"]:
            raise RuntimeError(f"downstream outage for {payload['id']}")
        with self.db.transaction() as tx:
            if tx.claim(f"thing:{payload['id']}"):
                tx.execute(handled.insert().values(id=payload["id"]))


def base_config(amqp_uri, tmp_path, **extra):
    return {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "DATABASE_URL": "",
            "RETRY_DELAYS_MS": [100, 200], "max_workers": 5, **extra}


def form_event(phone, key=None):
    return new_event(FormSubmittedSchema, idempotency_key=key or f"forms:{uuid.uuid4().hex}",
                     connector="forms", form="contact-us", contact={"phones": [phone]},
                     received_at=dt.datetime.now(dt.timezone.utc))


BATCHES: list[list[str]] = []


class BatchingService:
    name = "batching"
    db = Database(flaky_metadata, relay=False)

    @batch_handler("source", "thing_happened", max_batch=5, max_wait=0.05)
    def on_things(self, deliveries):
        ids = [d.payload["id"] for d in deliveries]
        if "poison" in ids:
            raise ValueError("a payload this handler cannot take")
        with self.db.transaction() as tx:
            for thing_id in ids:
                if tx.claim(f"thing:{thing_id}"):
                    tx.execute(handled.insert().values(id=thing_id))
        BATCHES.append(ids)


HELD = {"id": None, "release": None, "batch": ()}


class RunAckingService:
    """Batches of three, two at a time; the batch holding ``HELD["id"]`` waits for release."""

    name = "runacking"
    db = Database(flaky_metadata, relay=False)

    @batch_handler("source", "thing_happened", max_batch=3, max_wait=0.05, max_inflight=2)
    def on_things(self, deliveries):
        ids = [d.payload["id"] for d in deliveries]
        if HELD["id"] in ids:
            HELD["batch"] = tuple(ids)
            HELD["release"].wait()
        with self.db.transaction() as tx:
            for thing_id in ids:
                if tx.claim(f"thing:{thing_id}"):
                    tx.execute(handled.insert().values(id=thing_id))


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_failing_handler_retries_then_parks_and_an_operator_replays_it(
        amqp_uri, tmp_path, container_factory, queue_type):
    STATE.update(fail=True, attempts=0)
    config = base_config(amqp_uri, tmp_path, QUEUE_TYPE=queue_type)
    flaky_metadata.create_all(make_engine(config, "flaky"))
    declare_topology(config, [FlakyService])
    container = container_factory(FlakyService, config)
    container.start()

    get_publisher(amqp_uri).publish_json("source.events", "thing_happened", {"id": "t-1"},
                                         context={"request_id": "req-dlq"})
    wait_for(lambda: queue_depth(amqp_uri, dead_letter_queue_name("flaky")) == 1, timeout=15,
             message="message parked in the dead-letter queue")
    assert STATE["attempts"] == 3  # first run + one retry per configured delay

    letters = list_dead_letters(amqp_uri, ["flaky"])
    assert len(letters) == 1
    letter = letters[0]
    assert letter["body"] == {"id": "t-1"}
    assert "downstream outage for t-1" in letter["error"]
    assert letter["attempts"] == 3
    assert letter["origin"] == "source/thing_happened"
    assert letter["request_id"] == "req-dlq"
    # Listing does not consume.
    assert queue_depth(amqp_uri, dead_letter_queue_name("flaky")) == 1

    STATE["fail"] = False
    with entrypoint_waiter(container, "on_thing", timeout=10):
        assert replay_dead_letters(amqp_uri, "flaky") == 1
    engine = make_engine(config, "flaky")
    with engine.connect() as conn:
        assert conn.execute(sa.select(handled.c.id)).scalars().all() == ["t-1"]
    assert queue_depth(amqp_uri, dead_letter_queue_name("flaky")) == 0


def test_dlq_cli_lists_and_replays_one_message_by_id(amqp_uri, tmp_path, container_factory):
    STATE.update(fail=True, attempts=0)
    config = base_config(amqp_uri, tmp_path, RETRY_DELAYS_MS=[])
    flaky_metadata.create_all(make_engine(config, "flaky"))
    declare_topology(config, [FlakyService])
    container = container_factory(FlakyService, config)
    container.start()
    for thing in ("a", "b"):
        get_publisher(amqp_uri).publish_json("source.events", "thing_happened", {"id": thing})
    wait_for(lambda: queue_depth(amqp_uri, dead_letter_queue_name("flaky")) == 2, timeout=15)

    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump({"AMQP_URI": amqp_uri, "LOG_LEVEL": "WARNING"}))
    cli = [str(REPO / ".venv/bin/crmhub"), "dlq"]
    listed = subprocess.run(cli + ["list", "--config", str(path), "--service", "flaky", "--json"],
                            capture_output=True, text=True, check=True)
    letters = json.loads(listed.stdout)
    assert [letter["body"]["id"] for letter in letters] == ["a", "b"]

    STATE["fail"] = False
    wanted = next(letter["message_id"] for letter in letters if letter["body"]["id"] == "b")
    with entrypoint_waiter(container, "on_thing", timeout=10):
        out = subprocess.run(cli + ["replay", "--config", str(path), "--service", "flaky",
                                    "--id", wanted], capture_output=True, text=True, check=True)
    assert "replayed 1" in out.stdout
    remaining = list_dead_letters(amqp_uri, ["flaky"])
    assert [letter["body"]["id"] for letter in remaining] == ["a"]


def test_events_published_before_the_consumer_ever_ran_are_not_lost(
        amqp_uri, tmp_path, container_factory):
    config = base_config(amqp_uri, tmp_path)
    upgrade(config, "contacts")
    declare_topology(config, [ContactsService])
    get_publisher(amqp_uri).publish_json("gateway.events", "form_submitted",
                                         form_event("+79161234567"))
    queue = handler_queue_name("gateway", "form_submitted", "contacts", "on_form_submitted")
    assert queue_depth(amqp_uri, queue) == 1

    container = container_factory(ContactsService, config)
    with entrypoint_waiter(container, "on_form_submitted", timeout=10):
        container.start()
    with make_engine(config, "contacts").connect() as conn:
        assert logic.search(conn, phone="89161234567")["total"] == 1


def test_redelivered_form_has_no_second_effect(amqp_uri, tmp_path, container_factory):
    config = base_config(amqp_uri, tmp_path)
    upgrade(config, "contacts")
    declare_topology(config, [ContactsService])
    container = container_factory(ContactsService, config)
    container.start()
    event = form_event("+79161234567", key="tilda:777")
    for _ in range(2):
        with entrypoint_waiter(container, "on_form_submitted", timeout=10):
            get_publisher(amqp_uri).publish_json("gateway.events", "form_submitted", event)
    # A provider retry: same submission id, a new event id.
    with entrypoint_waiter(container, "on_form_submitted", timeout=10):
        get_publisher(amqp_uri).publish_json("gateway.events", "form_submitted",
                                             form_event("+79161234567", key="tilda:777"))
    with make_engine(config, "contacts").connect() as conn:
        page = logic.search(conn)
        assert page["total"] == 1
        assert len(logic.load_timeline(conn, page["items"][0]["id"])) == 1


def test_state_change_events_reach_the_broker_with_the_request_id(
        amqp_uri, tmp_path, container_factory):
    config = base_config(amqp_uri, tmp_path)
    upgrade(config, "contacts")
    declare_topology(config, [ContactsService])
    conn, channel = observed(amqp_uri, "contacts.events", "observer", "contact_created")

    container = container_factory(ContactsService, config)
    container.start()
    get_publisher(amqp_uri).publish_json("gateway.events", "form_submitted",
                                         form_event("+79161234567"),
                                         context={"request_id": "req-42"})
    message = wait_for(lambda: channel.basic_get("observer", no_ack=True), timeout=10,
                       message="contact_created published from the outbox")
    assert message.properties["application_headers"]["nameko.request_id"] == "req-42"
    event = ContactCreatedSchema().load(json.loads(message.body))
    assert event["contact"]["phones"][0]["e164"] == "+79161234567"
    conn.close()


def test_a_backlog_is_handled_in_batches_of_at_most_max_batch_and_a_bad_message_parks_alone(
        amqp_uri, tmp_path, container_factory):
    BATCHES.clear()
    config = base_config(amqp_uri, tmp_path, RETRY_DELAYS_MS=[])
    engine = make_engine(config, "batching")
    flaky_metadata.create_all(engine)
    declare_topology(config, [BatchingService])
    ids = [f"b-{i}" for i in range(43)]
    ids.insert(20, "poison")
    publisher = get_publisher(amqp_uri)
    for thing_id in ids:  # queued before the service starts: it finds a backlog
        publisher.publish_json("source.events", "thing_happened", {"id": thing_id})

    container = container_factory(BatchingService, config)
    container.start()
    wait_for(lambda: queue_depth(amqp_uri, dead_letter_queue_name("batching")) == 1,
             timeout=15, message="the bad message parked")
    with engine.connect() as conn:
        wait_for(lambda: conn.execute(sa.select(sa.func.count()).select_from(handled))
                 .scalar() == 43, timeout=15, message="every good message handled")
        stored = {row.id for row in conn.execute(sa.select(handled.c.id))}
    assert stored == set(ids) - {"poison"}
    assert max(map(len, BATCHES)) == 5  # batched, and never beyond max_batch
    assert [m["body"]["id"] for m in list_dead_letters(amqp_uri, ["batching"])] == ["poison"]
    container.stop()  # every message was settled: none comes back to the queue
    assert queue_depth(amqp_uri, handler_queue_name("source", "thing_happened", "batching",
                                                    "on_things")) == 0


def test_batches_are_acked_as_a_run_never_past_a_message_still_at_work(
        amqp_uri, tmp_path, container_factory):
    """Finished batches are acked together (one ``multiple`` ack); one behind a batch still at
    work waits for it, so a crash at that moment gives the unfinished message back, together
    with the finished ones after it, which the inbox makes harmless."""
    config = base_config(amqp_uri, tmp_path, RETRY_DELAYS_MS=[])
    engine = make_engine(config, "runacking")
    flaky_metadata.create_all(engine)
    declare_topology(config, [RunAckingService])
    queue = handler_queue_name("source", "thing_happened", "runacking", "on_things")
    ids = [f"r-{i}" for i in range(12)]
    HELD.update(id="r-0", release=eventlet.Event(), batch=())
    publisher = get_publisher(amqp_uri)
    for thing_id in ids:
        publisher.publish_json("source.events", "thing_happened", {"id": thing_id})

    def stored():
        with engine.connect() as conn:
            return {row.id for row in conn.execute(sa.select(handled.c.id))}

    crashed = container_factory(RunAckingService, config)
    crashed.start()
    # How many messages share r-0's batch depends on how the broker's deliveries fall into
    # the batching window, so the test asks the handler rather than assuming three.
    wait_for(lambda: HELD["batch"] and stored() == set(ids) - set(HELD["batch"]), timeout=15,
             message="every batch but the held one handled")
    crashed.kill()  # the process dies while r-0 is at work
    wait_for(lambda: queue_depth(amqp_uri, queue) == len(ids), timeout=15,
             message="the broker gave back every message from r-0 on")

    HELD.update(id=None)
    restarted = container_factory(RunAckingService, config)
    restarted.start()
    wait_for(lambda: stored() == set(ids), timeout=15, message="the redelivered messages handled")
    restarted.stop()  # anything it left unacked would be ready in the queue again
    assert queue_depth(amqp_uri, queue) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(handled)).scalar() == len(ids)


def test_a_batch_of_publishes_arrives_whole_and_in_order(amqp_uri):
    """Many messages handed over at once go to the broker as one batch (its frames in one
    write); each arrives intact, in order, with its headers, bodies larger than a frame too."""
    conn, channel = observed(amqp_uri, "batch.events", "batch-probe", "#")
    sizes = [10, 5_000, 300_000, 1, 131_072, 64]  # 300,000 bytes take three body frames
    messages = [OutgoingMessage("batch.events", f"thing.{i}",
                                json.dumps({"n": i, "fill": "x" * sizes[i % len(sizes)]}).encode(),
                                headers={"request_id": f"r-{i}"}) for i in range(60)]
    try:
        get_publisher(amqp_uri).publish_many(messages)
        received = []
        wait_for(lambda: queue_depth(amqp_uri, "batch-probe") == 60, timeout=15)
        while (message := channel.basic_get("batch-probe", no_ack=True)) is not None:
            received.append(message)
        assert [m.body for m in received] == [m.body.decode() for m in messages]
        assert [m.headers["request_id"] for m in received] == [f"r-{i}" for i in range(60)]
        assert [m.delivery_info["routing_key"] for m in received] == [f"thing.{i}" for i in range(60)]
    finally:
        conn.collect()


class EchoService:
    name = "echo"

    @rpc
    def echo(self, value):
        return value


class AskingAtStartService:
    """Asks another service from a timer that fires as the container starts."""

    name = "asking_at_start"
    echo = RpcProxy("echo")
    answers: list = []

    @timer("ASK_EVERY_SECONDS", default=60.0)
    def ask(self):
        self.answers.append(self.echo.echo("pong"))


def test_an_rpc_sent_while_its_container_starts_gets_its_answer(
        amqp_uri, tmp_path, container_factory):
    """The answer's queue is consumed before the request leaves: an eager timer's call (a
    backfill, a tick that was due while the service was down) is answered at once, not after
    RPC_TIMEOUT_SECONDS with Unavailable."""
    config = {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "RPC_TIMEOUT_SECONDS": 3}
    container_factory(EchoService, config).start()
    for attempt in range(3):
        AskingAtStartService.answers = []
        container = container_factory(AskingAtStartService, config)
        container.start()
        wait_for(lambda: AskingAtStartService.answers, timeout=2.5,
                 message=f"start {attempt}: the answer")
        assert AskingAtStartService.answers == ["pong"]
        container.stop()


class AskingService:
    name = "asking"
    echo = RpcProxy("echo")

    @rpc
    def ask(self, value):
        return self.echo.echo(value)

    @rpc
    def ask_all_at_once(self, values):
        return [reply.result() for reply in [self.echo.echo.call_async(v) for v in values]]


def asking_and_echo(amqp_uri, tmp_path, container_factory):
    """The echo service and one that asks it, started; the first call answered."""
    config = {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "RPC_TIMEOUT_SECONDS": 3}
    container_factory(EchoService, config).start()
    asking = container_factory(AskingService, config)
    asking.start()
    with entrypoint_hook(asking, "ask") as ask:
        assert ask("first") == "first"
    return asking


def reply_consumers(amqp_uri, service: str) -> list[dict]:
    vhost = amqp_uri.rsplit("/", 1)[1]
    return [c for c in requests.get(f"{RABBIT_API}/consumers/{vhost}", auth=RABBIT_AUTH,
                                    timeout=10).json()
            if c["queue"]["name"].startswith(f"rpc.reply-{service}-")]


def test_answers_are_settled_by_the_broker_as_it_delivers_them(
        amqp_uri, tmp_path, container_factory):
    """A caller's answers come without an ack each (a socket write per call): its reply queue
    is consumed in no-ack mode, and every call still gets its own answer."""
    asking = asking_and_echo(amqp_uri, tmp_path, container_factory)
    values = [f"call {n}" for n in range(50)]
    with entrypoint_hook(asking, "ask_all_at_once") as ask_all_at_once:
        assert ask_all_at_once(values) == values
    wait_for(lambda: reply_consumers(amqp_uri, "asking"), timeout=30, interval=0.5,
             message="the management API lists the reply queue's consumer")
    assert [c["ack_required"] for c in reply_consumers(amqp_uri, "asking")] == [False]


def close_rpc_publisher_connections(amqp_uri) -> int:
    vhost = amqp_uri.rsplit("/", 1)[1]
    names = [c["name"] for c in requests.get(f"{RABBIT_API}/connections", auth=RABBIT_AUTH,
                                             timeout=10).json()
             if c.get("vhost") == vhost
             and c.get("client_properties", {}).get("connection_name") == CONNECTION_NAME]
    for name in names:
        requests.delete(f"{RABBIT_API}/connections/{requests.utils.quote(name, safe='')}",
                        auth=RABBIT_AUTH, timeout=10).raise_for_status()
    return len(names)


def test_an_rpc_after_the_broker_closed_the_publishing_connection_gets_its_answer(
        amqp_uri, tmp_path, container_factory):
    """RPC requests and replies go unconfirmed on one connection per process: when the broker
    closes it (a restart, an operator), the next call opens a new one rather than writing
    into the closed one and waiting out its timeout."""
    asking = asking_and_echo(amqp_uri, tmp_path, container_factory)
    wait_for(lambda: close_rpc_publisher_connections(amqp_uri) > 0, timeout=10,
             message="the management API lists the publisher's connection")
    eventlet.sleep(0.5)  # the broker's close reaches the socket
    with entrypoint_hook(asking, "ask") as ask:
        assert ask("second") == "second"
