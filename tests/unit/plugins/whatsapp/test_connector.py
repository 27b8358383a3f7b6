"""WhatsApp webhooks through a real connector host, with the recorded bodies of pywa's test
data (data/SOURCE.md): every kind of message reaches the manager, statuses follow our
messages, forged and malformed posts are refused; replies through a local Graph API."""
import json
from pathlib import Path

import pytest
import requests

from crmhub.plugins.api import (
    BadPayload,
    Forbidden,
    MessengerError,
    OutgoingMessage,
    Unauthorized,
    make_request,
)
from crmhub.plugins.conformance import host_for
from crmhub.plugins.whatsapp import WhatsAppConnector, samples
from crmhub.plugins.whatsapp.fake_api import FakeGraphApi

DATA = Path(__file__).parent / "data"
MESSAGES = json.loads((DATA / "pywa_message.json").read_text())
STATUSES = json.loads((DATA / "pywa_message_status.json").read_text())
SETTINGS = {"app_secret": "app-secret", "verify_token": "verify-me", "access_token": "token"}


@pytest.fixture
def host():
    return host_for(WhatsAppConnector, SETTINGS)


def post(host, payload, secret="app-secret"):
    return host.handle(samples.notification_request(secret, payload))[1]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_recorded_message_reaches_the_manager_with_the_senders_number(host, name):
    [(event_type, event)] = post(host, MESSAGES[name]).events
    assert event_type == "message_incoming"
    assert event["chat_id"] == "972987654321" and event["sender"]["phone"] == "+972987654321"
    assert event["sender"]["name"] == "Test Name" and event["account"] == "1122334455667"
    assert event["idempotency_key"] == f"whatsapp:1122334455667:{event['provider_message_id']}"
    assert event["text"] or event["attachments"], f"{name}: nothing to show"


def test_text_media_and_shared_contacts_read_as_the_client_sent_them(host):
    def event(name):
        return post(host, MESSAGES[name]).events[0][1]

    assert event("text")["text"] == "Body Text"
    [image] = event("image")["attachments"]
    assert (image["kind"], image["file_id"], image["mime"]) == ("image", "65463453", "image/jpeg")
    document = event("document")
    assert document["text"] == "caption"
    assert document["attachments"][0]["name"] == "filename.pdf"
    assert event("voice")["attachments"][0]["kind"] == "voice"
    assert event("contacts")["text"].startswith("Shared contacts: Chandler Bing +1 555-555-5555")


@pytest.mark.parametrize("name, status", [("sent", "sent"), ("delivered", "delivered"),
                                          ("read", "read"), ("played", "read"),
                                          ("failed", "failed")])
def test_recorded_statuses_update_our_message(host, name, status):
    [(event_type, event)] = post(host, STATUSES[name]).events
    assert (event_type, event["status"], event["provider_message_id"]) == (
        "message_status", status, "wamid.xyzxyz")
    if status == "failed":
        assert event["error"].startswith("130472: User's number is part of an experiment")


def test_a_redelivered_status_keeps_its_key_and_each_status_has_its_own(host):
    keys = [post(host, STATUSES[name]).events[0][1]["idempotency_key"]
            for name in ("sent", "sent", "delivered")]
    assert keys[0] == keys[1] != keys[2]


def test_the_callback_check_echoes_the_challenge_only_for_our_verify_token(host):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "verify-me"}
    result = host.handle(make_request("GET", "/hooks/whatsapp", query=query))[1]
    assert (result.body, result.content_type) == ("1158201444", "text/plain")
    with pytest.raises(Forbidden, match="verify_token"):
        host.handle(make_request("GET", "/hooks/whatsapp",
                                 query={**query, "hub.verify_token": "guess"}))


def test_forged_and_unsigned_posts_are_refused_before_parsing(host):
    with pytest.raises(Unauthorized, match="does not match"):
        post(host, MESSAGES["text"], secret="not-the-secret")
    with pytest.raises(Unauthorized, match="missing"):
        post(host, MESSAGES["text"], secret=None)
    # A signature over other bytes fails even if the JSON means the same.
    raw = json.dumps(MESSAGES["text"]).encode()
    request = samples.notification_request("app-secret", raw)
    request.body = json.dumps(MESSAGES["text"], indent=1).encode()
    with pytest.raises(Unauthorized):
        host.handle(request)


def test_without_app_secret_nothing_is_accepted():
    with pytest.raises(Forbidden, match="no app_secret"):
        post(host_for(WhatsAppConnector, {}), MESSAGES["text"])


@pytest.mark.parametrize("payload, complaint", [
    (b"{not json", "not valid JSON"),
    ({"object": "page"}, "whatsapp_business_account"),
    (samples.body([{**samples.TEXT, "from": None}]), "from"),
    (samples.body([{**samples.TEXT, "timestamp": "soon"}]), "timestamp"),
    (samples.body(statuses=["sent"]), "statuses[]"),
])
def test_malformed_bodies_say_what_is_wrong(host, payload, complaint):
    with pytest.raises(BadPayload) as caught:
        post(host, payload)
    assert caught.value.status == 400 and complaint in caught.value.message


# -- replies through the Graph API --------------------------------------------------------------

@pytest.fixture
def graph():
    with FakeGraphApi() as fake:
        yield fake


def reply(connector, account="1122334455667"):
    with requests.Session() as api:
        return connector.send_message(api, OutgoingMessage("m1", account, "972987654321", "Hi!"))


def test_a_reply_goes_to_the_numbers_messages_edge_and_gets_a_wamid(graph):
    wamid = reply(WhatsAppConnector(graph.settings()))
    [sent] = graph.sent
    assert (sent.phone_number_id, sent.to, sent.text, sent.wamid) == (
        "1122334455667", "972987654321", "Hi!", wamid)


def test_refusals_are_final_outages_are_retried(graph):
    connector = WhatsAppConnector(graph.settings())
    graph.refuse(400, 131026, "Message undeliverable")
    with pytest.raises(MessengerError) as refused:
        reply(connector)
    assert not refused.value.unavailable
    assert refused.value.message == ("WhatsApp refused the message: Message undeliverable "
                                     "(code 131026)")
    graph.refuse(503, 2, "Service temporarily unavailable")
    with pytest.raises(MessengerError) as busy:
        reply(connector)
    assert busy.value.unavailable
    graph.accept()
    graph.down = True
    with pytest.raises(MessengerError) as down:
        reply(connector)
    assert down.value.unavailable
    bad_token = WhatsAppConnector(graph.settings(access_token="wrong"))
    graph.down = False
    with pytest.raises(MessengerError, match="Invalid OAuth access token"):
        reply(bad_token)


def test_while_the_app_secret_rotates_posts_signed_with_either_are_accepted():
    rotating = host_for(WhatsAppConnector, {**SETTINGS, "app_secret": "new-secret",
                                            "previous_app_secret": "app-secret"})
    for secret in ("new-secret", "app-secret"):
        assert post(rotating, MESSAGES["text"], secret=secret).events
    with pytest.raises(Unauthorized):
        post(rotating, MESSAGES["text"], secret="a-guess")
    done = host_for(WhatsAppConnector, {**SETTINGS, "app_secret": "new-secret"})
    with pytest.raises(Unauthorized):
        post(done, MESSAGES["text"], secret="app-secret")
