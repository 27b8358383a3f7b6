"""An email campaign as a marketer runs it: `crmhub run` on real RabbitMQ and PostgreSQL and a
real SMTP server (aiosmtpd). Only the clients of the segment who consented get the email, each
once; the open pixel and a click show in the metrics; the unsubscribe link withdraws consent,
so the next campaign skips that client."""
import email
import re
from email import policy

import pytest
import requests

from mailservers import SmtpSink
from support import fresh_schema, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]
SERVICES = ("contacts", "deals", "email", "gateway")
SALE_URL = "https://shop.example/sale?from=mail&utm_campaign=spring"


@pytest.fixture
def smtp(tmp_path):
    sink = SmtpSink(tmp_path / "smtp").start()
    yield sink
    sink.stop()


@pytest.fixture
def hub(start_hub, pg_url, smtp):
    for service in SERVICES:
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, services=SERVICES, EMAIL={"smtp": smtp.settings()},
                     TRACKING_SECRET="e2e-secret", CAMPAIGN_TICK_S=0.2)


def card(hub, name, tags=("vip",)):
    resp = hub.api("POST", "/api/v1/contacts", json={
        "name": name, "emails": [f"{name.lower()}@client.example"], "tags": list(tags)})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def consent(hub, contact_id, status):
    resp = hub.api("PUT", f"/api/v1/contacts/{contact_id}/consents",
                   json={"channel": "email", "status": status, "source": "form:contact-us"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def campaign(hub, name):
    resp = hub.api("POST", "/api/v1/campaigns", json={
        "name": name, "segment": {"tags_any": ["vip"]}, "rate_per_minute": 600,
        "template": {"subject": "Spring sale, {{ client.name }}",
                     "text": "Dear {{ client.name }}, our sale: " + SALE_URL,
                     "html": f'<p>Dear {{{{ client.name }}}}</p><a href="{SALE_URL}">Sale</a>'}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def send_and_wait(hub, campaign_id):
    resp = hub.api("POST", f"/api/v1/campaigns/{campaign_id}/send")
    assert resp.status_code == 202, resp.text
    return wait_for(lambda: (c := hub.api("GET", f"/api/v1/campaigns/{campaign_id}").json())
                    ["status"] == "done" and c, timeout=30, message="campaign done")


def delivered(smtp, count):
    return wait_for(lambda: len(found := smtp.messages()) >= count and found, timeout=30,
                    message=f"{count} message(s) at the SMTP server")


def parsed(message):
    return email.message_from_bytes(message["content"], policy=policy.default)


def test_a_campaign_reaches_consenting_clients_once_and_tracks_them(hub, smtp):
    anna, boris = card(hub, "Anna"), card(hub, "Boris")
    card(hub, "Carl")  # never consented
    dina = card(hub, "Dina")
    card(hub, "Eva", tags=("wholesale",))  # not in the segment
    for contact_id in (anna, boris, dina):
        consent(hub, contact_id, "granted")
    assert consent(hub, dina, "withdrawn")["consents"][0]["status"] == "withdrawn"

    spring = campaign(hub, "Spring")
    preview = hub.api("POST", f"/api/v1/campaigns/{spring['id']}/preview").json()
    assert (preview["matching"], preview["excluded_no_consent"]) == (2, 2)
    assert preview["sample"]["subject"].startswith("Spring sale, ")
    assert "/t/c/" in preview["sample"]["html"]

    done = send_and_wait(hub, spring["id"])
    assert done["counters"]["recipients"] == 2 and done["counters"]["queued"] == 2
    messages = delivered(smtp, 2)
    assert sorted(m["rcpt_tos"][0] for m in messages) == ["anna@client.example",
                                                          "boris@client.example"]
    # Sent again ("send" twice, a redelivered tick): nothing more goes out.
    assert hub.api("POST", f"/api/v1/campaigns/{spring['id']}/send").status_code == 409
    assert len(smtp.messages()) == 2

    to_anna = parsed(next(m for m in messages if m["rcpt_tos"] == ["anna@client.example"]))
    assert to_anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = to_anna.get_body(("html",)).get_content()
    pixel = re.search(r'src="([^"]+/t/o/[^"]+)"', html).group(1)
    click = re.search(r'href="([^"]+/t/c/[^"]+)"', html).group(1)
    # The client's mail program and browser: no API key.
    loaded = requests.get(pixel, timeout=10)
    assert loaded.status_code == 200 and loaded.headers["Content-Type"] == "image/gif"
    followed = requests.get(click.replace("&amp;", "&"), allow_redirects=False, timeout=10)
    assert followed.status_code == 302 and followed.headers["Location"] == SALE_URL
    forged = click[:-3] + ("xyz" if not click.endswith("xyz") else "abc")
    assert requests.get(forged, allow_redirects=False, timeout=10).status_code == 404

    metrics = wait_for(lambda: (m := hub.api("GET", f"/api/v1/campaigns/{spring['id']}/metrics")
                                .json())["opened"] == 1 and m["clicks"] and m,
                       message="the open and the click in the metrics")
    assert metrics["sent"] == 2 and metrics["open_rate"] == 0.5
    assert metrics["clicks"] == [{"url": SALE_URL, "clicks": 1, "clients": 1}]

    # Anna unsubscribes: the page asks first, the button (or a one-click POST) does it.
    unsubscribe = to_anna["List-Unsubscribe"].strip("<>")
    page = requests.get(unsubscribe, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    done_page = requests.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert done_page.status_code == 200 and "unsubscribed" in done_page.text
    wait_for(lambda: hub.api("GET", f"/api/v1/contacts/{anna}/consents").json()["consents"][0]
             ["status"] == "withdrawn", message="Anna's consent withdrawn")
    history = hub.api("GET", f"/api/v1/contacts/{anna}/consents").json()["history"]
    assert history[0]["source"] == "unsubscribe-link"

    # The next campaign skips her.
    summer = campaign(hub, "Summer")
    send_and_wait(hub, summer["id"])
    later = delivered(smtp, 3)[2:]
    wait_for(lambda: hub.api("GET", f"/api/v1/campaigns/{summer['id']}/metrics").json()
             ["sent"] == 1, message="the second campaign sent")
    assert [m["rcpt_tos"] for m in smtp.messages()[2:]] == [["boris@client.example"]]
    assert later[0]["rcpt_tos"] == ["boris@client.example"]


def test_bad_input_is_a_400_naming_the_field(hub):
    bad = hub.api("POST", "/api/v1/campaigns", json={
        "name": "Broken", "template": {"subject": "Hi", "text": "{{ client.name "}})
    assert bad.status_code == 400 and "text_body" in bad.json()["details"]
    no_pipeline = hub.api("POST", "/api/v1/campaigns", json={
        "name": "Staged", "segment": {"stage_key": "won"},
        "template": {"subject": "Hi", "text": "Hello"}})
    assert no_pipeline.status_code == 400
    assert "stage_key" in no_pipeline.json()["details"]["segment"]
    anna = card(hub, "Anna")
    wrong = hub.api("PUT", f"/api/v1/contacts/{anna}/consents",
                    json={"channel": "pigeon", "status": "granted"})
    assert wrong.status_code == 400 and "channel" in wrong.json()["details"]
    assert hub.api("PUT", "/api/v1/contacts/nobody/consents",
                   json={"channel": "email", "status": "granted"}).status_code == 404
    assert hub.api("GET", "/api/v1/campaigns/nope").status_code == 404


def returned_mail(original) -> bytes:
    """A delivery status notification for ``original`` as a receiving server sends it back
    (RFC 3464 multipart/report, written for this test), with the original's headers."""
    headers = "".join(f"{name}: {original[name]}\r\n"
                      for name in ("From", "To", "Subject", "Message-ID", "X-Crmhub-Email-Id"))
    return (
        "From: Mail Delivery Subsystem <postmaster@mx.client.example>\r\n"
        "To: crm@example.com\r\nSubject: Returned mail: user unknown\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"\r\n\r\n'
        "--DSN\r\nContent-Type: text/plain\r\n\r\nThe mailbox does not exist.\r\n"
        "--DSN\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.client.example\r\n\r\n"
        f"Final-Recipient: rfc822; {original['To']}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\n" + headers + "\r\n--DSN--\r\n"
    ).encode()


def test_a_bounce_in_the_inbox_counts_against_its_campaign(start_hub, pg_url, smtp):
    from mailservers import Dovecot

    with Dovecot() as dovecot:
        for service in SERVICES:
            fresh_schema(pg_url, service)
        hub = start_hub(database_url=pg_url, services=SERVICES, EMAIL={
            "smtp": smtp.settings(), "mailboxes": [dovecot.settings()]},
            TRACKING_SECRET="e2e-secret", CAMPAIGN_TICK_S=0.2, EMAIL_SYNC_CHECK_SECONDS=0.3)
        ids = [card(hub, name) for name in ("Anna", "Boris")]
        for contact_id in ids:
            consent(hub, contact_id, "granted")
        spring = campaign(hub, "Spring")
        send_and_wait(hub, spring["id"])
        to_boris = parsed(next(m for m in delivered(smtp, 2)
                               if m["rcpt_tos"] == ["boris@client.example"]))

        dovecot.append(returned_mail(to_boris))
        metrics = wait_for(lambda: (m := hub.api(
            "GET", f"/api/v1/campaigns/{spring['id']}/metrics").json())["bounced"] and m,
            timeout=30, message="the bounce in the campaign's metrics")
        assert (metrics["sent"], metrics["bounced"], metrics["bounce_rate"]) == (2, 1, 0.5)
        # The returned mail is no client: no card was made for the mail server.
        found = hub.api("GET", "/api/v1/contacts", params={"q": "mx.client.example"}).json()
        assert found["total"] == 0
