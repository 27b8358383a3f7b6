"""Recordings on a real RabbitMQ: a recording the PBX cannot hand over is retried with backoff,
then parked in the telephony service's dead-letter queue with the call kept, and stored once an
operator replays it; a recording URL the guard refuses is parked at once."""
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from nameko.testing.services import entrypoint_waiter, worker_factory

from crmhub.plugins.calls import call_signal
from crmhub.plugins.mango.fake_api import FAKE_MP3
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.dlq import list_dead_letters, replay_dead_letters
from crmhub.runtime.handlers import Delivery
from crmhub.runtime.messaging import event_exchange_name, get_publisher
from crmhub.runtime.migrate import upgrade
from crmhub.runtime.outbox import OutboxRelay
from crmhub.runtime.topology import dead_letter_queue_name, declare_topology
from crmhub.services.telephony import logic
from crmhub.services.telephony.dependencies import SeatingChart
from crmhub.services.telephony.models import metadata, outbox
from crmhub.services.telephony.recordings import store_from_config
from crmhub.services.telephony.service import TelephonyService
from support import Cards, observed, queue_depth, wait_for

pytestmark = pytest.mark.rabbit
DLQ = dead_letter_queue_name("telephony")


def start_telephony(amqp_uri, tmp_path, container_factory, connector_settings):
    config = {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "DATABASE_URL": "",
              "RETRY_DELAYS_MS": [100, 200], "max_workers": 5,
              "CONNECTORS": {"mango": connector_settings}}
    upgrade(config, "telephony")
    declare_topology(config, [TelephonyService])
    container = container_factory(TelephonyService, config)
    container.start()
    return config, container


def publish_recording(amqp_uri, entry_id="E-1"):
    _, event = call_signal(provider="mango", event_key=f"recording:{entry_id}", call_key=entry_id,
                           kind="recording", recording_ref=f"rec:{entry_id}", extension="101",
                           at=dt.datetime.now(dt.timezone.utc))
    get_publisher(amqp_uri).publish_json("gateway.events", "call_signal", event)


def the_call(config, entry_id="E-1") -> dict:
    db = ServiceDatabase(make_engine(config, "telephony"), metadata, "telephony")
    with db.connect() as conn:
        return logic.call_view(logic.find_calls(conn, [("mango", entry_id)])["mango", entry_id])


def test_an_unreachable_recording_is_retried_parked_with_the_call_kept_then_replayed(
        amqp_uri, tmp_path, container_factory, mango):
    config, container = start_telephony(amqp_uri, tmp_path, container_factory, mango.settings(
        allow_private_recording_hosts=True))
    mango.down = True
    publish_recording(amqp_uri)
    wait_for(lambda: queue_depth(amqp_uri, DLQ) == 1, timeout=20,
             message="the recording parked in the dead-letter queue")
    [letter] = list_dead_letters(amqp_uri, ["telephony"])
    assert letter["attempts"] == 3 and "FetchFailed: recording from 127.0.0.1" in letter["error"]
    call = the_call(config)
    assert call["recording"] == {"ref": "rec:E-1", "stored": False, "content_type": None,
                                 "size": None, "url": None}

    mango.down = False
    with entrypoint_waiter(container, "on_recording_found", timeout=10):
        assert replay_dead_letters(amqp_uri, "telephony") == 1
    stored = the_call(config)["recording"]
    assert (stored["stored"], stored["size"], stored["content_type"]) == (
        True, len(FAKE_MP3), "audio/mpeg")
    with store_from_config(config).open(f"call-{call['id']}") as reader:
        assert b"".join(reader.read_range(0)) == FAKE_MP3
    assert queue_depth(amqp_uri, DLQ) == 0


def test_a_recording_on_a_refused_address_is_parked_at_once(
        amqp_uri, tmp_path, container_factory, mango):
    # Without allow_private_recording_hosts the local "vendor" is a loopback address: refused.
    config, _ = start_telephony(amqp_uri, tmp_path, container_factory, mango.settings())
    publish_recording(amqp_uri, "E-2")
    wait_for(lambda: queue_depth(amqp_uri, DLQ) == 1, timeout=20,
             message="the refused recording parked")
    [letter] = list_dead_letters(amqp_uri, ["telephony"])
    assert letter["attempts"] == 1 and "127.0.0.1" in letter["error"]
    assert mango.downloads == []
    assert the_call(config, "E-2")["recording"]["stored"] is False


def test_a_popup_reaches_the_broker_from_the_folding_worker_before_the_rest_of_its_batch(
        amqp_uri, tmp_path):
    """The outbox relay is not running: the batch's popup is published by the worker that
    folded it, while the missed call folded after it waits in the outbox for the relay."""
    config = {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "DATABASE_URL": ""}
    upgrade(config, "telephony")
    engine = make_engine(config, "telephony")
    relay = OutboxRelay(engine, outbox, get_publisher(amqp_uri), "telephony")
    worker = worker_factory(TelephonyService, db=ServiceDatabase(engine, metadata, "telephony",
                                                                 relay),
                            contacts=Cards(), seating=SeatingChart(0),
                            config={"TELEPHONY": {}})
    conn, channel = observed(amqp_uri, event_exchange_name("telephony"), "popup-probe", "#")
    now = dt.datetime.now(dt.timezone.utc)
    signals = [call_signal(provider="mango", event_key="B:end", call_key="B", kind="finished",
                           direction="inbound", client_number="79161234567", outcome="missed",
                           at=now),
               call_signal(provider="mango", event_key="C:ring", call_key="C", kind="ringing",
                           direction="inbound", client_number="79035550011", extension="101",
                           at=now)]
    try:
        worker.on_call_signals([Delivery(payload, None) for _, payload in signals])
        wait_for(lambda: queue_depth(amqp_uri, "popup-probe") >= 1, timeout=10)
        message = channel.basic_get("popup-probe", no_ack=True)
        assert (message.delivery_info["routing_key"], json.loads(message.body)["call"]["call_key"]) \
            == ("call_ringing", "C")
        with engine.connect() as db_conn:
            waiting = [r.event_type for r in db_conn.execute(sa.select(outbox.c.event_type))]
        assert "call_missed" in waiting and "call_ringing" not in waiting
    finally:
        conn.close()
        engine.dispose()
