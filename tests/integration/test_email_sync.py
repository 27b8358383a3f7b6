"""IMAP sync against a real dovecot, on SQLite and PostgreSQL: the first sync reads the mailbox,
a sync with nothing new fetches nothing, new mail is fetched alone, a changed UIDVALIDITY
reads the mailbox again without storing anything twice; replies join their thread and a
bounce marks the outgoing email it reports."""
import pytest
import sqlalchemy as sa

from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.email import outgoing
from crmhub.services.email.dependencies import attachment_store
from crmhub.services.email.imap_sync import MailboxSync
from crmhub.services.email.models import mailboxes, metadata, outgoing_emails, received_emails
from mailservers import Dovecot

pytestmark = pytest.mark.postgres


def message(n: int, *, sender="client@example.org", reply_to=None, extra=b"") -> bytes:
    headers = [f"From: Client {n} <{sender}>", "To: sales@example.com",
               f"Subject: question {n}", f"Message-ID: <q{n}@example.org>",
               "Date: Mon, 02 Mar 2026 10:00:00 +0000"]
    if reply_to:
        headers += [f"In-Reply-To: {reply_to}", f"References: {reply_to}"]
    return ("\r\n".join(headers) + "\r\n").encode() + extra + f"\r\nbody {n}\r\n".encode()


@pytest.fixture
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture
def email_db(migrated_database):
    config = migrated_database("email")
    engine = make_engine(config, "email")
    yield config, ServiceDatabase(engine, metadata, "email")
    engine.dispose()


def syncer(email_db, dovecot, **settings):
    config, db = email_db
    return MailboxSync(db, "sales", dovecot.settings(**settings), store=attachment_store(config),
                       max_attachment_bytes=1000)


def stored(db) -> list:
    with db.connect() as conn:
        return conn.execute(sa.select(received_emails).order_by(received_emails.c.uid)).all()


def test_first_sync_then_nothing_then_only_the_new_mail(email_db, dovecot):
    _, db = email_db
    dovecot.append(*(message(n) for n in range(1, 6)))
    first = syncer(email_db, dovecot).sync()
    assert first["fetched"] == 5 and first["stored"] == 5
    assert [r.subject for r in stored(db)] == [f"question {n}" for n in range(1, 6)]

    idle = syncer(email_db, dovecot).sync()
    assert idle == {"fetched": 0, "stored": 0, "bounces": 0, "resynced": False,
                    "searched": False}

    dovecot.append(message(6))
    again = syncer(email_db, dovecot).sync()
    assert again["fetched"] == 1 and again["stored"] == 1
    with db.connect() as conn:
        state = conn.execute(sa.select(mailboxes)).one()
    assert state.last_uid == 6 and state.messages == 6 and state.last_error is None


def test_a_changed_uidvalidity_reads_the_folder_again_storing_nothing_twice(email_db, dovecot):
    _, db = email_db
    dovecot.recreate("Leads")
    dovecot.append(message(1), message(2), folder="Leads")
    assert syncer(email_db, dovecot, folder="Leads").sync()["stored"] == 2
    old = dovecot.uidvalidity("Leads")
    dovecot.recreate("Leads")
    dovecot.append(message(1), message(2), message(3), folder="Leads")
    assert dovecot.uidvalidity("Leads") != old
    result = syncer(email_db, dovecot, folder="Leads").sync()
    assert result["resynced"] and result["fetched"] == 3 and result["stored"] == 1
    assert sorted(r.subject for r in stored(db)) == ["question 1", "question 2", "question 3"]
    with db.connect() as conn:
        assert conn.execute(sa.select(mailboxes.c.resyncs)).scalar() == 1


def test_replies_join_their_thread_and_a_bounce_marks_the_sent_email(email_db, dovecot):
    _, db = email_db
    with db.transaction() as tx:
        sent = outgoing.queue_email(tx, to_addr="client@example.org", subject="offer",
                                    text_body="hello", idempotency_key="t-1",
                                    from_addr="crm@example.com")
        lost = outgoing.queue_email(tx, to_addr="nobody@example.org", subject="offer",
                                    text_body="hello", idempotency_key="t-2",
                                    from_addr="crm@example.com")
        tx.execute(outgoing_emails.update().values(status="sent", sent_at=sa.func.now()))
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: crm@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce1@mx.example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {lost['message_id']}\r\nTo: nobody@example.org\r\nSubject: offer\r\n\r\n"
        "--B--\r\n").encode()
    dovecot.append(message(1, reply_to=sent["message_id"]),
                   message(2, reply_to="<q1@example.org>"), message(3), dsn)
    result = syncer(email_db, dovecot).sync()
    assert result["stored"] == 4 and result["bounces"] == 1
    rows = stored(db)
    assert rows[0].thread_id == rows[1].thread_id == sent["thread_id"]
    assert rows[2].thread_id not in (sent["thread_id"], None)
    assert rows[3].kind == "bounce"
    with db.connect() as conn:
        bounced = outgoing.load(conn, lost["id"])
        still_sent = outgoing.load(conn, sent["id"])
    assert bounced["status"] == "bounced" and "5.1.1" in bounced["bounce_reason"]
    assert bounced["bounced_at"] is not None and still_sent["status"] == "sent"


def test_odd_messages_are_stored_with_their_problems_and_big_attachments_skipped(
        email_db, dovecot):
    config, db = email_db
    attachment = b"A" * 3000
    import base64
    big = (
        "From: odd@example.org\r\nTo: sales@example.com\r\nSubject: =?utf-8?B?0J/RgNC40LLQtdGC?=\r\n"
        "Message-ID: <odd1@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="X"\r\n\r\n'
        "--X\r\nContent-Type: text/plain; charset=x-unknown-8\r\n\r\nhello there\r\n"
        "--X\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        'filename="big.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes(attachment).decode() + "\r\n"
        "--X\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
        'filename="small.txt"\r\n\r\nsmall file\r\n--X--\r\n').encode()
    broken = (b"From: broken@example.org\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n")
    dovecot.append(big, broken)
    assert syncer(email_db, dovecot).sync()["stored"] == 2
    odd, bad = stored(db)
    assert odd.subject == "Привет" and odd.text_body.strip() == "hello there"
    assert any("x-unknown-8" in p for p in odd.problems)
    big_file, small_file = odd.attachments
    assert big_file["skipped"] and big_file["key"] is None and big_file["size"] == 3000
    assert small_file["key"] and attachment_store(config).exists(small_file["key"])
    assert bad.subject == "broken" and any("malformed MIME" in p for p in bad.problems)
