"""Email as a sales team meets it: `crmhub run` on real RabbitMQ and PostgreSQL, a real SMTP
server (aiosmtpd) and a real IMAP server (dovecot).

An email written from a card is rendered from a template with the client's fields, sent once
whatever the retries, and lands on the card's timeline; while the SMTP server is down it waits
in the dead-letter queue and goes out once when replayed; an email from an unknown address
makes a card and a deal; template mistakes are 400s saying where."""
import email
from email import policy

import pytest
import requests

from crmhub.runtime.dlq import list_dead_letters, replay_dead_letters
from crmhub.runtime.topology import dead_letter_queue_name
from mailservers import Dovecot, SmtpSink
from support import ADMIN_KEY, fresh_schema, queue_depth, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]
SERVICES = ("contacts", "deals", "email")


@pytest.fixture
def smtp(tmp_path):
    sink = SmtpSink(tmp_path / "smtp", auth=("crm", "smtp-secret")).start()
    yield sink
    sink.stop()


@pytest.fixture
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture
def hub(start_hub, pg_url, smtp, dovecot):
    for service in SERVICES:
        fresh_schema(pg_url, service)
    hub = start_hub(
        database_url=pg_url,
        LEAD_RULES=[{"connector": "email", "pipeline": "b2b-sales"}],
        EMAIL={"smtp": smtp.settings(), "mailboxes": [dovecot.settings(announce_history=True)]},
        EMAIL_SYNC_CHECK_SECONDS=0.3)
    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Olga"}).status_code == 200
    assert hub.api("POST", "/api/v1/pipelines/templates/b2b-sales").status_code == 201
    assert hub.api("PUT", "/api/v1/pipelines/b2b-sales/managers",
                   json={"managers": ["Olga"]}).status_code == 200
    return hub


def new_card(hub, name="Anna Petrova", address="anna@client.example"):
    resp = hub.api("POST", "/api/v1/contacts", json={
        "name": name, "emails": [address], "custom_fields": {"city": "Kazan"}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def received(smtp, count):
    return wait_for(lambda: len(found := smtp.messages()) >= count and found, timeout=20,
                    message=f"{count} message(s) at the SMTP server")


def test_an_email_from_a_template_is_sent_once_and_lands_on_the_timeline(hub, smtp):
    card = new_card(hub)
    resp = hub.api("PUT", "/api/v1/email-templates/welcome", json={
        "subject": "Hello, {{ client.name }}",
        "text_body": "Dear {{ client.name }} from {{ client.city }}, {{ offer }}.",
        "html_body": "<p>Dear {{ client.name }}</p>"})
    assert resp.status_code == 200, resp.text
    send = {"template": "welcome", "variables": {"offer": "10% off"},
            "idempotency_key": "first-offer-1"}
    first = hub.api("POST", f"/api/v1/contacts/{card['id']}/emails", json=send)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queued"
    again = hub.api("POST", f"/api/v1/contacts/{card['id']}/emails", json=send)
    assert again.json()["id"] == first.json()["id"]

    [got] = received(smtp, 1)
    message = email.message_from_bytes(got["content"], policy=policy.default)
    assert got["rcpt_tos"] == ["anna@client.example"] and got["login"] == "crm"
    assert message["Subject"] == "Hello, Anna Petrova"
    assert message["X-Crmhub-Email-Id"] == first.json()["id"]
    assert "Dear Anna Petrova from Kazan, 10% off." in message.get_body(("plain",)).get_content()
    entries = wait_for(lambda: [e for e in hub.api("GET", f"/api/v1/contacts/{card['id']}")
                                .json()["timeline"] if e["kind"] == "email"],
                       message="the email on the timeline")
    assert entries[0]["title"] == "Email sent: Hello, Anna Petrova"
    [thread] = hub.api("GET", f"/api/v1/contacts/{card['id']}/emails").json()["items"]
    assert thread["messages"][0]["status"] == "sent"
    assert len(smtp.messages()) == 1

    # The card page shows the thread and sends from its form.
    browser = requests.Session()
    browser.headers["Origin"] = hub.base_url
    assert browser.post(f"{hub.base_url}/login", data={"key": ADMIN_KEY}, timeout=10).ok
    page = browser.get(f"{hub.base_url}/contacts/{card['id']}", timeout=10)
    assert page.status_code == 200 and 'id="emails"' in page.text
    assert "Hello, Anna Petrova" in page.text and "email-form" in page.text
    sent = browser.post(f"{hub.base_url}/contacts/{card['id']}/emails", timeout=10, data={
        "to": "anna@client.example", "subject": "From the card", "text_body": "Hi {{ client.city }}",
        "idempotency_key": "card-form-0001"}, allow_redirects=False)
    assert sent.status_code == 303, sent.text
    assert b"Hi Kazan" in received(smtp, 2)[1]["content"]


def test_template_mistakes_are_400s_saying_where(hub):
    card = new_card(hub)
    broken = hub.api("PUT", "/api/v1/email-templates/broken", json={
        "subject": "Hi", "text_body": "line one\n{% if client.name %}never closed"})
    assert broken.status_code == 400
    assert "text_body, line 2" in broken.json()["message"]
    missing = hub.api("POST", f"/api/v1/contacts/{card['id']}/emails", json={
        "subject": "Hi {{ client.nickname }}", "text_body": "x", "idempotency_key": "k-123456"})
    assert missing.status_code == 400
    assert "subject" in missing.json()["message"] and "nickname" in missing.json()["message"]
    nobody = hub.api("POST", "/api/v1/contacts/no-such-card/emails", json={
        "subject": "Hi", "text_body": "x", "idempotency_key": "k-123456"})
    assert nobody.status_code == 404


def test_an_smtp_outage_parks_the_email_and_a_replay_sends_it_once(hub, smtp, amqp_uri):
    card = new_card(hub)
    smtp.stop()
    resp = hub.api("POST", f"/api/v1/contacts/{card['id']}/emails", json={
        "subject": "Invoice", "text_body": "Your invoice", "idempotency_key": "invoice-0001"})
    assert resp.status_code == 202, resp.text
    dlq = dead_letter_queue_name("email")
    wait_for(lambda: queue_depth(amqp_uri, dlq) == 1, timeout=30, message="parked email")
    [letter] = list_dead_letters(amqp_uri, ["email"])
    assert letter["attempts"] == 3 and "SMTP server unavailable" in letter["error"]
    waiting = hub.api("GET", f"/api/v1/emails/{resp.json()['id']}").json()
    assert waiting["status"] == "queued" and "unavailable" in waiting["last_error"]

    smtp.start()
    assert replay_dead_letters(amqp_uri, "email") == 1
    [got] = received(smtp, 1)
    assert b"Your invoice" in got["content"]
    wait_for(lambda: hub.api("GET", f"/api/v1/emails/{resp.json()['id']}").json()["status"]
             == "sent", message="sent after the replay")
    # The same event once more (a redelivery): the email is not sent again.
    from crmhub.contracts.base import new_event
    from crmhub.contracts.email import EmailsQueuedSchema
    from crmhub.runtime.messaging import get_publisher
    get_publisher(amqp_uri).publish_json("email.events", "emails_queued", new_event(
        EmailsQueuedSchema, email_ids=[resp.json()["id"]]))
    second = hub.api("POST", f"/api/v1/contacts/{card['id']}/emails", json={
        "subject": "Receipt", "text_body": "Your receipt", "idempotency_key": "receipt-0001"})
    received(smtp, 2)
    assert [b"Your invoice" in m["content"] for m in smtp.messages()] == [True, False]
    assert second.json()["id"] != resp.json()["id"]


def test_an_email_from_an_unknown_address_makes_a_card_and_a_deal_and_replies_thread(
        hub, dovecot):
    dovecot.append(
        b"From: Ivan Sidorov <ivan@newclient.example>\r\nTo: sales@example.com\r\n"
        b"Subject: Need a quote\r\nMessage-ID: <quote-1@newclient.example>\r\n"
        b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHow much for 100 units?\r\n")
    card = wait_for(lambda: (p := hub.api("GET", "/api/v1/contacts",
                                          params={"q": "ivan@newclient.example"}).json())["total"]
                    and p["items"][0], timeout=20, message="a card for the sender")
    assert card["name"] == "Ivan Sidorov"
    assert (card["source"]["channel"], card["source"]["connector"]) == ("email", "email")
    page = wait_for(lambda: (p := hub.api("GET", "/api/v1/deals",
                                          params={"contact_id": card["id"]}).json())["total"]
                    and p, timeout=15, message="a deal for the new card")
    assert page["items"][0]["pipeline_id"] == "b2b-sales"
    entries = hub.api("GET", f"/api/v1/contacts/{card['id']}").json()["timeline"]
    assert any(e["title"] == "Email received: Need a quote" for e in entries)
    reply = hub.api("POST", f"/api/v1/contacts/{card['id']}/emails", json={
        "subject": "Re: Need a quote", "text_body": "1000 EUR",
        "in_reply_to": "<quote-1@newclient.example>", "idempotency_key": "quote-reply-1"})
    assert reply.status_code == 202, reply.text
    [thread] = hub.api("GET", f"/api/v1/contacts/{card['id']}/emails").json()["items"]
    assert [m["direction"] for m in thread["messages"]] == ["in", "out"]
