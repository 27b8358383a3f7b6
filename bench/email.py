"""IMAP sync of a large mailbox on PostgreSQL: the first sync of 50,000 messages (target
<= 300 s) and a sync when nothing changed (target <= 2 s), then one with a few new messages.

A dovecot of its own (tests/mailservers.py) gets the mailbox as Maildir files written directly
(dovecot assigns their UIDs on the first SELECT, which the first sync therefore pays for);
the messages are varied: plain and multipart, Cyrillic encoded headers, replies to earlier
ones, a small attachment every 20th. The sync is the service's own ``MailboxSync`` against a
migrated ``email`` schema, as the timer runs it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import database
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.email.dependencies import attachment_store
from crmhub.services.email.imap_sync import MailboxSync
from crmhub.services.email.models import metadata, received_emails

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mailservers import Dovecot  # noqa: E402 - the tests' server, found through their folder

FIRST_SYNC_TARGET_S = 300
IDLE_SYNC_TARGET_S = 2


def message(n: int) -> bytes:
    headers = (f"From: =?utf-8?B?0JrQu9C40LXQvdGC?= {n} <client{n % 5000}@example.org>\r\n"
               f"To: sales@example.com\r\nSubject: =?utf-8?B?0JfQsNC60LDQtw==?= #{n}\r\n"
               f"Message-ID: <m{n}@example.org>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n")
    if n % 3 == 0 and n > 0:
        headers += f"In-Reply-To: <m{n - 3}@example.org>\r\nReferences: <m{n - 3}@example.org>\r\n"
    text = f"Hello, order number {n}.\r\n" + "Some quoted text of the earlier letter.\r\n" * 30
    if n % 20:
        return (headers + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    return (headers + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--b\r\n"
            'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + "QUJD" * 500 + "\r\n--b--\r\n").encode()


def timed(sync: MailboxSync) -> tuple[float, dict]:
    started = time.perf_counter()
    result = sync.sync()
    return time.perf_counter() - started, result


def run(workdir: Path, messages: int = 50_000) -> dict:
    with database() as db_url, Dovecot() as dovecot:
        config = {"DATABASE_URL": db_url, "DATA_DIR": str(workdir / "var")}
        upgrade(config, "email")
        engine = make_engine(config, "email")
        db = ServiceDatabase(engine, metadata, "email")
        started = time.perf_counter()
        dovecot.write_maildir(message(n) for n in range(messages))
        fill_s = time.perf_counter() - started

        def syncer() -> MailboxSync:
            return MailboxSync(db, "bench", dovecot.settings(), store=attachment_store(config))

        try:
            first_s, first = timed(syncer())
            idle_s, idle = timed(syncer())
            dovecot.append(*(message(messages + n) for n in range(10)))
            new_s, new = timed(syncer())
            with engine.connect() as conn:
                stored = conn.execute(sa.select(sa.func.count()).select_from(received_emails)).scalar()
        finally:
            engine.dispose()
    result = {
        "messages": messages, "fill_s": round(fill_s, 1),
        "first_sync_s": round(first_s, 1), "first_sync_target_s": FIRST_SYNC_TARGET_S,
        "first_sync_msgs_per_s": round(first["stored"] / first_s),
        "idle_sync_s": round(idle_s, 3), "idle_sync_target_s": IDLE_SYNC_TARGET_S,
        "idle_sync_fetched": idle["fetched"], "idle_sync_searched": idle["searched"],
        "ten_new_sync_s": round(new_s, 3), "ten_new_fetched": new["fetched"],
        "stored_rows": stored,
    }
    print(f"email: first sync of {messages} messages {first_s:.1f} s (target <= "
          f"{FIRST_SYNC_TARGET_S} s), no-change sync {idle_s:.3f} s (target <= "
          f"{IDLE_SYNC_TARGET_S} s), 10 new {new_s:.3f} s", flush=True)
    return result
