"""`crmhub declare`: quorum queues with dead-lettering where loss matters, a message whose
handler's process keeps dying is parked after the delivery limit (and an operator replays it),
a queue of the other type is upgraded when empty and refused while it holds messages, and the
queue lag reaches /metrics."""
import json
import subprocess

import amqp
import pytest
import requests
import yaml

from crmhub.runtime.dlq import list_dead_letters
from crmhub.runtime.messaging import connection_params
from crmhub.runtime.metrics import QUEUE_MESSAGES
from crmhub.runtime.topology import QueueDepths, dead_letter_queue_name, handler_queue_name
from crmhub.services.contacts.service import ContactsService
from support import RABBIT_API, RABBIT_AUTH, REPO, queue_depth, wait_for

pytestmark = pytest.mark.rabbit

FORMS_QUEUE = handler_queue_name("gateway", "form_submitted", "contacts", "on_form_submitted")
CLI = str(REPO / ".venv/bin/crmhub")


def crmhub(tmp_path, amqp_uri, *args, check=True, **config):
    path = tmp_path / "declare.yaml"
    path.write_text(yaml.safe_dump({"AMQP_URI": amqp_uri, "LOG_LEVEL": "WARNING",
                                    "RETRY_DELAYS_MS": [200, 500], **config}))
    return subprocess.run([CLI, *args, "--config", str(path)], capture_output=True, text=True,
                          check=check, timeout=120)


def broker_queue(amqp_uri: str, name: str) -> dict:
    vhost = amqp_uri.rsplit("/", 1)[1]
    resp = requests.get(f"{RABBIT_API}/queues/{vhost}/{name}", auth=RABBIT_AUTH, timeout=10)
    resp.raise_for_status()
    return resp.json()


def publish_form(amqp_uri: str, message_id: str) -> None:
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    try:
        channel = conn.channel()
        channel.confirm_select()
        channel.basic_publish(amqp.Message(json.dumps({"form": message_id}), delivery_mode=2,
                                           message_id=message_id),
                              exchange="gateway.events", routing_key="form_submitted")
    finally:
        conn.close()


def take_without_settling(amqp_uri: str, queue: str) -> bool:
    """A consumer that receives the message and dies before acking it."""
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    try:
        return conn.channel().basic_get(queue, no_ack=False) is not None
    finally:
        conn.close()  # the message goes back to the queue, its delivery count one higher


def test_declare_makes_quorum_queues_that_dead_letter_into_the_services_queue(
        amqp_uri, tmp_path):
    out = crmhub(tmp_path, amqp_uri, "declare", QUEUE_TYPE="quorum", DELIVERY_LIMIT=7).stdout
    assert FORMS_QUEUE in out.split() and "crmhub.dlq.contacts" in out.split()

    handler = broker_queue(amqp_uri, FORMS_QUEUE)
    assert handler["type"] == "quorum" and handler["durable"]
    assert handler["arguments"]["x-delivery-limit"] == 7
    assert handler["arguments"]["x-dead-letter-routing-key"] == "crmhub.dlq.contacts"
    assert handler["arguments"]["x-dead-letter-strategy"] == "at-least-once"
    assert broker_queue(amqp_uri, "crmhub.dlq.contacts")["type"] == "quorum"
    retry = broker_queue(amqp_uri, "crmhub.retry.500ms")
    assert retry["type"] == "quorum" and retry["arguments"]["x-message-ttl"] == 500


def test_a_message_whose_handler_keeps_dying_is_parked_and_replayed(amqp_uri, tmp_path):
    crmhub(tmp_path, amqp_uri, "declare", QUEUE_TYPE="quorum", DELIVERY_LIMIT=2)
    publish_form(amqp_uri, "poison-1")

    deliveries = 0
    while take_without_settling(amqp_uri, FORMS_QUEUE):
        deliveries += 1
        assert deliveries < 10, "the delivery limit never parked the message"
    assert deliveries == 3  # the first delivery and two more: then the broker parks it
    wait_for(lambda: queue_depth(amqp_uri, dead_letter_queue_name("contacts")) == 1)

    listed = json.loads(crmhub(tmp_path, amqp_uri, "dlq", "list", "--service", "contacts",
                               "--json", QUEUE_TYPE="quorum").stdout)
    assert len(listed) == 1
    letter = listed[0]
    assert letter["message_id"] == "poison-1" and letter["body"] == {"form": "poison-1"}
    assert letter["queue"] == FORMS_QUEUE
    assert letter["origin"] == "gateway/form_submitted"
    assert "delivered too many times" in letter["error"]

    out = crmhub(tmp_path, amqp_uri, "dlq", "replay", "--service", "contacts", "--all").stdout
    assert "replayed 1" in out
    assert queue_depth(amqp_uri, FORMS_QUEUE) == 1
    assert list_dead_letters(amqp_uri, ["contacts"]) == []
    # A replayed message starts afresh: it gets its full delivery allowance again.
    assert take_without_settling(amqp_uri, FORMS_QUEUE)
    assert queue_depth(amqp_uri, FORMS_QUEUE) == 1


def test_an_empty_queue_changes_type_and_a_loaded_one_is_refused(amqp_uri, tmp_path):
    crmhub(tmp_path, amqp_uri, "declare", QUEUE_TYPE="classic")
    assert broker_queue(amqp_uri, FORMS_QUEUE)["type"] == "classic"

    crmhub(tmp_path, amqp_uri, "declare", QUEUE_TYPE="quorum")
    assert broker_queue(amqp_uri, FORMS_QUEUE)["type"] == "quorum"

    publish_form(amqp_uri, "waiting-1")
    refused = crmhub(tmp_path, amqp_uri, "declare", check=False, QUEUE_TYPE="classic")
    assert refused.returncode != 0
    assert FORMS_QUEUE in refused.stderr and "holds 1 message" in refused.stderr
    assert broker_queue(amqp_uri, FORMS_QUEUE)["type"] == "quorum"
    assert queue_depth(amqp_uri, FORMS_QUEUE) == 1  # nothing accepted is lost


def test_an_unknown_queue_type_is_refused(amqp_uri, tmp_path):
    refused = crmhub(tmp_path, amqp_uri, "declare", check=False, QUEUE_TYPE="mirrored")
    assert refused.returncode != 0 and "QUEUE_TYPE must be one of quorum, classic" in refused.stderr


def test_queue_lag_of_a_services_handler_queues_is_read_into_the_metric(amqp_uri, tmp_path):
    crmhub(tmp_path, amqp_uri, "declare", QUEUE_TYPE="quorum")
    for n in range(3):
        publish_form(amqp_uri, f"lag-{n}")
    depths = QueueDepths(amqp_uri, [ContactsService])
    try:
        depths.refresh()
        assert QUEUE_MESSAGES.labels("contacts", FORMS_QUEUE)._value.get() == 3
        conn = amqp.Connection(**connection_params(amqp_uri))
        conn.connect()
        conn.channel().basic_get(FORMS_QUEUE, no_ack=True)  # a consumer works one off
        conn.close()
        depths.refresh()
        assert QUEUE_MESSAGES.labels("contacts", FORMS_QUEUE)._value.get() == 2
    finally:
        depths.close()
