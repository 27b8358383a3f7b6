"""Incremental IMAP sync of one mailbox.

Each sync EXAMINEs the folder (read-only: no \\Seen flags change) and compares its UIDVALIDITY
with the one stored: the same -> only UIDs above the last one stored are fetched (when UIDNEXT
says there are none, nothing is searched or fetched at all); changed -> the mailbox's UIDs mean
other messages now, so it is read again from UID 1 and messages already stored (same Message-ID,
or the same headers when there is none) are skipped.

New messages are fetched in batches (sizes first, then whole bodies of those under the message
cap and headers only of the rest), parsed, threaded and stored one transaction per batch, with
the last UID: a sync cut short resumes where its last batch committed. A delivery status
notification marks the outgoing email it reports as bounced and is not announced as a client's
email; every other new email is announced (email_received), except on a mailbox's first sync
unless ``announce_history`` is set (history should not open a lead per old email).
"""
from __future__ import annotations

import imaplib
import re
import time
from datetime import datetime, timezone

import sqlalchemy as sa
import structlog

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.email import EmailReceivedSchema, EmailSentSchema
from crmhub.runtime.db import insert_ignoring_conflicts, insert_new_rows, new_id, utcnow
from crmhub.services.email import dsn, mime, outgoing, threads
from crmhub.services.email.metrics import BOUNCES, IMAP_MESSAGES, IMAP_SYNC_SECONDS
from crmhub.services.email.models import mailboxes, outgoing_emails, received_emails

log = structlog.get_logger(__name__)

FETCH_BATCH = 500
DEFAULT_ATTACHMENT_BYTES = 10 * 2**20
DEFAULT_MESSAGE_BYTES = 50 * 2**20
UID_IN_FETCH = re.compile(rb"UID (\d+)")
SIZE_IN_FETCH = re.compile(rb"RFC822\.SIZE (\d+)")


class SyncError(Exception):
    """The server refused a command (login, folder, fetch)."""


def uid_set(uids: list[int]) -> str:
    """An IMAP sequence set for sorted UIDs, runs folded into ranges ("1:500,502")."""
    parts, start, prev = [], None, None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if prev != start else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _ok(typ: str, data, what: str):
    if typ != "OK":
        raise SyncError(f"{what}: {b' '.join(d for d in data if isinstance(d, bytes))!r}")
    return data


def connect(settings: dict) -> imaplib.IMAP4:
    host, timeout = settings.get("host") or "127.0.0.1", float(settings.get("timeout") or 60)
    if settings.get("ssl"):
        imap = imaplib.IMAP4_SSL(host, int(settings.get("port") or 993), timeout=timeout)
    else:
        imap = imaplib.IMAP4(host, int(settings.get("port") or 143), timeout=timeout)
    try:
        _ok(*imap.login(settings["username"], settings.get("password") or ""), "LOGIN")
    except imaplib.IMAP4.error as exc:
        imap.shutdown()
        raise SyncError(f"LOGIN refused: {exc}") from exc
    return imap


def _untagged_int(imap, name: str) -> int | None:
    values = imap.untagged_responses.get(name) or [None]
    return int(values[-1]) if values[-1] is not None else None


def fetch(imap, uids: list[int], items: str) -> dict[int, tuple[bytes, bytes | None]]:
    """{uid: (the FETCH line before the literal, the literal)} for the UIDs."""
    data = _ok(*imap.uid("FETCH", uid_set(uids), items), "UID FETCH")
    found = {}
    for item in data:
        head, literal = (item if isinstance(item, tuple) else (item, None))
        if not isinstance(head, bytes):
            continue
        match = UID_IN_FETCH.search(head)
        if match:
            found[int(match.group(1))] = (head, literal)
    return found


def _internal_date(head: bytes):
    parsed = imaplib.Internaldate2tuple(head)
    return datetime.fromtimestamp(time.mktime(parsed), timezone.utc) if parsed else None


class MailboxSync:
    def __init__(self, db, name: str, settings: dict, *, store=None,
                 max_attachment_bytes: int = DEFAULT_ATTACHMENT_BYTES,
                 max_message_bytes: int = DEFAULT_MESSAGE_BYTES):
        self.db = db
        self.name = name
        self.settings = settings
        self.store = store
        self.max_attachment_bytes = max_attachment_bytes
        self.max_message_bytes = max_message_bytes

    # -- state ------------------------------------------------------------------------------------
    def _state(self, conn) -> dict:
        row = conn.execute(sa.select(mailboxes).where(mailboxes.c.name == self.name)).first()
        return dict(row._mapping) if row else {"uidvalidity": None, "last_uid": 0, "messages": 0,
                                               "resyncs": 0, "synced_at": None}

    def _save_state(self, tx, **values) -> None:
        if not insert_ignoring_conflicts(tx.conn, mailboxes, [{"name": self.name, **values}],
                                         ["name"]):
            tx.execute(mailboxes.update().where(mailboxes.c.name == self.name).values(**values))

    # -- sync -------------------------------------------------------------------------------------
    def sync(self) -> dict:
        """Fetch what is new; returns {fetched, stored, bounces, resynced, searched}."""
        started, outcome = time.perf_counter(), "error"
        try:
            imap = connect(self.settings)
            try:
                result = self._sync(imap)
            finally:
                try:
                    imap.logout()
                except (OSError, imaplib.IMAP4.error):
                    pass
            outcome = "ok"
            return result
        except (OSError, imaplib.IMAP4.error, SyncError) as exc:
            with self.db.transaction() as tx:
                self._save_state(tx, last_error=f"{exc.__class__.__name__}: {exc}"[:2000])
            raise
        finally:
            IMAP_SYNC_SECONDS.labels(self.name, outcome).observe(time.perf_counter() - started)

    def _sync(self, imap) -> dict:
        folder = self.settings.get("folder") or "INBOX"
        _ok(*imap.select(f'"{folder}"', readonly=True), f"EXAMINE {folder}")
        uidvalidity = _untagged_int(imap, "UIDVALIDITY")
        uidnext = _untagged_int(imap, "UIDNEXT")
        with self.db.connect() as conn:
            state = self._state(conn)
        result = {"fetched": 0, "stored": 0, "bounces": 0, "resynced": False, "searched": False}
        first_sync = state["synced_at"] is None
        last_uid = int(state["last_uid"] or 0)
        if state["uidvalidity"] is not None and state["uidvalidity"] != uidvalidity:
            log.warning("mailbox UIDVALIDITY changed: reading it again", mailbox=self.name,
                        old=state["uidvalidity"], new=uidvalidity)
            last_uid, result["resynced"] = 0, True
            with self.db.transaction() as tx:
                self._save_state(tx, uidvalidity=uidvalidity, last_uid=0,
                                 resyncs=int(state["resyncs"] or 0) + 1)
        if uidnext is not None and uidnext <= last_uid + 1:
            with self.db.transaction() as tx:
                self._save_state(tx, uidvalidity=uidvalidity, synced_at=utcnow(), last_error=None)
            return result
        result["searched"] = True
        data = _ok(*imap.uid("SEARCH", None, f"UID {last_uid + 1}:*"), "UID SEARCH")
        uids = sorted(int(u) for u in b" ".join(data).split() if int(u) > last_uid)
        announce = not first_sync or bool(self.settings.get("announce_history"))
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start:start + FETCH_BATCH]
            fetched = self._fetch_batch(imap, batch)
            result["fetched"] += len(fetched)
            stored, bounces = self._store_batch(fetched, uidvalidity, max(batch), announce)
            result["stored"] += stored
            result["bounces"] += bounces
        with self.db.transaction() as tx:
            self._save_state(tx, uidvalidity=uidvalidity, synced_at=utcnow(), last_error=None)
        log.info("mailbox synced", mailbox=self.name, **result)
        return result

    def _fetch_batch(self, imap, uids: list[int]) -> list[tuple[int, bytes, object, list[str]]]:
        """[(uid, raw, internal date, notes)]: whole messages under the cap, headers of the rest."""
        sizes = {uid: int(m.group(1)) for uid, (head, _) in fetch(imap, uids, "(UID RFC822.SIZE)").items()
                 if (m := SIZE_IN_FETCH.search(head))}
        small = [u for u in uids if sizes.get(u, 0) <= self.max_message_bytes]
        large = [u for u in uids if sizes.get(u, 0) > self.max_message_bytes]
        found = []
        if small:
            for uid, (head, raw) in fetch(imap, small, "(UID INTERNALDATE BODY.PEEK[])").items():
                found.append((uid, raw or b"", _internal_date(head), []))
        if large:
            for uid, (head, raw) in fetch(imap, large, "(UID INTERNALDATE BODY.PEEK[HEADER])").items():
                found.append((uid, raw or b"", _internal_date(head), [
                    f"message of {sizes[uid]} bytes over the {self.max_message_bytes}-byte cap: "
                    "headers only"]))
        return sorted(found, key=lambda item: item[0])

    def _parse(self, uid: int, raw: bytes, internal_date, notes: list[str], uidvalidity: int):
        parsed = mime.parse(raw, max_attachment_bytes=self.max_attachment_bytes, store=self.store)
        bounce = dsn.detect(parsed.message, parsed.from_addr, parsed.subject)
        row = {
            "id": new_id(), "mailbox": self.name, "uidvalidity": uidvalidity, "uid": uid,
            "dedupe_key": parsed.dedupe_key[:300], "message_id": parsed.message_id,
            "in_reply_to": parsed.in_reply_to, "references": " ".join(parsed.references) or None,
            "from_addr": parsed.from_addr, "from_name": (parsed.from_name or "")[:300] or None,
            "to_addrs": parsed.to_addrs, "subject": parsed.subject, "sent_date": parsed.sent_date,
            "received_at": internal_date or parsed.sent_date or utcnow(),
            "text_body": parsed.text_body, "html_body": parsed.html_body,
            "attachments": parsed.attachments, "problems": notes + parsed.problems,
            "kind": "bounce" if bounce else "message",
        }
        return row, parsed, bounce

    def _store_batch(self, fetched, uidvalidity: int, last_uid: int, announce: bool):
        items, seen = [], set()
        for uid, raw, internal_date, notes in fetched:
            row, parsed, bounce = self._parse(uid, raw, internal_date, notes, uidvalidity)
            if row["dedupe_key"] in seen:
                continue
            seen.add(row["dedupe_key"])
            items.append((row, parsed, bounce))
        bounces = 0
        with self.db.transaction() as tx:
            rows = [row for row, _, _ in items]
            self._thread(tx.conn, rows, items)
            new_ids = {r.id for r in insert_new_rows(
                tx.conn, received_emails, rows, ["mailbox", "dedupe_key"], received_emails.c.id)
            } if rows else set()
            for row, parsed, bounce in items:
                if row["id"] not in new_ids:
                    continue
                IMAP_MESSAGES.labels(self.name, row["kind"]).inc()
                if bounce is not None:
                    bounces += record_bounce(tx, bounce)
                elif announce:
                    tx.emit(ev.EMAIL_RECEIVED, new_event(EmailReceivedSchema,
                                                         email=received_summary(row, parsed)))
            self._save_state(tx, uidvalidity=uidvalidity, last_uid=last_uid,
                             messages=self._count(tx.conn))
        return len(new_ids), bounces

    @staticmethod
    def _thread(conn, rows, items) -> None:
        messages = [{**row, "references": parsed.references} for row, parsed, _ in items]
        threads.assign_threads(conn, messages)
        for row, message in zip(rows, messages):
            row["thread_id"] = message["thread_id"]

    def _count(self, conn) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(received_emails)
                            .where(received_emails.c.mailbox == self.name)).scalar()


def received_summary(row: dict, parsed: mime.ParsedEmail) -> dict:
    return {key: row[key] for key in (
        "id", "mailbox", "message_id", "in_reply_to", "thread_id", "from_addr", "from_name",
        "to_addrs", "subject", "sent_date", "received_at", "attachments", "problems")
    } | {"snippet": parsed.snippet}


def record_bounce(tx, bounce: dsn.Bounce) -> int:
    """Mark the outgoing email a bounce reports; 1 if one was found, else 0."""
    if not bounce.failed:
        return 0
    table = outgoing_emails
    query = None
    if bounce.email_id:
        query = table.c.id == bounce.email_id
    elif bounce.original_message_id:
        query = table.c.message_id == bounce.original_message_id
    email_id = tx.execute(sa.select(table.c.id).where(query)).scalar() if query is not None else None
    if email_id is None and bounce.recipients:
        email_id = tx.execute(
            sa.select(table.c.id).where(table.c.to_addr.in_(bounce.recipients),
                                        table.c.status == "sent")
            .order_by(table.c.sent_at.desc()).limit(1)).scalar()
    BOUNCES.labels("yes" if email_id else "no").inc()
    if email_id is None:
        log.warning("bounce for no email of ours", recipients=bounce.recipients,
                    message_id=bounce.original_message_id)
        return 0
    bounced_at = utcnow()
    changed = tx.execute(table.update().where(table.c.id == email_id, table.c.status != "bounced")
                         .values(status="bounced", bounced_at=bounced_at,
                                 bounce_reason=bounce.reason[:2000] or "undeliverable")).rowcount
    if changed:
        email = outgoing.load(tx.conn, email_id)
        tx.emit(ev.EMAIL_BOUNCED, new_event(EmailSentSchema, email=outgoing.summary(email)))
    return 1
