"""Reading real-world email oddities, recognising bounces, threading and templates.

The delivery status notifications below are written for these tests after the examples of
RFC 3464 (section 10, "Appendix - Example Formats": a multipart/report whose
message/delivery-status part has per-recipient Final-Recipient, Action and Status fields),
plus a free-form "Undelivered Mail" reply as common mail servers send without that format."""
import pytest

from crmhub.contracts.errors import InvalidInput
from crmhub.services.email import dsn, mime, templates, threads
from crmhub.services.email.imap_sync import uid_set

RFC3464_STYLE = (
    "From: Mail Delivery Subsystem <postmaster@mx.example.net>\r\n"
    "To: crm@example.com\r\nSubject: Returned mail\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"\r\n\r\n'
    "--RPT\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
    "--RPT\r\nContent-Type: message/delivery-status\r\n\r\n"
    "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
    "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: mailbox unavailable\r\n\r\n"
    "Final-Recipient: rfc822; slow@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
    "--RPT\r\nContent-Type: message/rfc822\r\n\r\n"
    "From: crm@example.com\r\nTo: gone@example.org\r\nSubject: offer\r\n"
    "Message-ID: <abc@example.com>\r\nX-Crmhub-Email-Id: 0123456789abcdef0123456789abcdef\r\n\r\n"
    "hello\r\n--RPT--\r\n").encode()

FREE_FORM = (
    "From: MAILER-DAEMON@mx.example.net\r\nTo: crm@example.com\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n\r\n"
    "This is the mail system at host mx.example.net.\r\n\r\n"
    "<lost@example.org>: host mx.example.org said: 550 5.1.1 User unknown\r\n\r\n"
    "--- original headers ---\r\nMessage-ID: <orig-7@example.com>\r\n"
    "X-Crmhub-Email-Id: fedcba9876543210fedcba9876543210\r\n").encode()


def bounce_of(raw: bytes):
    parsed = mime.parse(raw)
    return dsn.detect(parsed.message, parsed.from_addr, parsed.subject)


def test_an_rfc3464_report_names_the_failed_recipient_and_our_email():
    bounce = bounce_of(RFC3464_STYLE)
    assert bounce.failed and bounce.recipients == ["gone@example.org"]
    assert bounce.original_message_id == "<abc@example.com>"
    assert bounce.email_id == "0123456789abcdef0123456789abcdef"
    assert bounce.reason.startswith("5.1.1 smtp; 550 5.1.1")


def test_a_delay_report_is_no_bounce():
    delayed = RFC3464_STYLE.replace(b"Action: failed", b"Action: delayed")
    bounce = bounce_of(delayed)
    assert bounce is not None and not bounce.failed


def test_a_free_form_bounce_is_recognised():
    bounce = bounce_of(FREE_FORM)
    assert bounce.email_id == "fedcba9876543210fedcba9876543210"
    assert bounce.original_message_id == "<orig-7@example.com>"
    assert bounce.recipients == ["lost@example.org"] and "550 5.1.1" in bounce.reason


def test_a_client_email_is_no_bounce():
    assert bounce_of(b"From: a@example.org\r\nSubject: Undelivered goods?\r\n\r\nWhere?") is None


def test_encoded_headers_and_an_unknown_charset_are_read_with_a_note():
    raw = ("From: =?utf-8?B?0JjQstCw0L0=?= <Ivan@Example.org>\r\n"
           "To: a@x.org, \"B\" <b@x.org>\r\nSubject: =?koi8-r?B?8NLJ18XU?=\r\n"
           "Message-ID: <m1@example.org>\r\nContent-Type: text/plain; charset=x-martian\r\n\r\n"
           "caf\xc3\xa9\r\n").encode("latin-1")
    parsed = mime.parse(raw)
    assert (parsed.from_name, parsed.from_addr) == ("Иван", "ivan@example.org")
    assert parsed.subject == "Привет" and parsed.to_addrs == ["a@x.org", "b@x.org"]
    assert parsed.text_body.strip() == "café"
    assert any("x-martian" in p for p in parsed.problems)


def test_broken_mime_is_kept_with_its_defects_named():
    raw = (b"From: x@example.org\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="never"\r\n\r\njust text, no parts\r\n')
    parsed = mime.parse(raw)
    assert parsed.subject == "broken"
    assert any(p.startswith("malformed MIME") for p in parsed.problems)
    assert parsed.dedupe_key.startswith("sha256:")  # no Message-ID: the content decides


def test_garbage_is_still_a_message():
    parsed = mime.parse(b"\x00\xff\xfe not an email at all")
    assert parsed.from_addr is None and parsed.message_id is None


def test_threads_follow_in_reply_to_then_references_within_a_batch():
    batch = [
        {"id": "a", "message_id": "<1@x>", "in_reply_to": None, "references": []},
        {"id": "b", "message_id": "<2@x>", "in_reply_to": "<1@x>", "references": ["<1@x>"]},
        {"id": "c", "message_id": "<3@x>", "in_reply_to": "<unknown@x>",
         "references": ["<1@x>", "<2@x>", "<unknown@x>"]},
        {"id": "d", "message_id": "<4@x>", "in_reply_to": None, "references": []},
    ]

    class NoRows:
        def execute(self, _query):
            return []

    threads.assign_threads(NoRows(), batch)
    assert [m["thread_id"] for m in batch] == ["a", "a", "a", "d"]


def test_uid_sets_fold_runs():
    assert uid_set([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    assert uid_set([42]) == "42"


CARD = {"id": "c1", "name": "Anna", "emails": ["anna@x.org"], "phones": [],
        "custom_fields": {"city": "Kazan"}}


def test_templates_render_the_card_and_escape_html():
    context = templates.card_context({**CARD, "name": "<b>Anna</b>"}, {"offer": "5%"})
    out = templates.render({"subject": "Hi {{ client.name }}\n", "text_body": "{{ offer }} {{ client.city }}",
                            "html_body": "<p>{{ client.name }}</p>"}, context)
    assert out["subject"] == "Hi <b>Anna</b>" and out["text_body"] == "5% Kazan"
    assert out["html_body"] == "<p>&lt;b&gt;Anna&lt;/b&gt;</p>"


@pytest.mark.parametrize("parts, where", [
    ({"subject": "ok", "text_body": "a\n{{ client.nickname }}"}, "text_body"),
    ({"subject": "{% for %}", "text_body": "x"}, "subject, line 1"),
    ({"subject": "ok", "text_body": "{{ client.__class__.__mro__ }}"}, "text_body"),
])
def test_template_mistakes_name_where(parts, where):
    with pytest.raises(InvalidInput) as caught:
        templates.render(parts, templates.card_context(CARD))
    assert where in caught.value.message
