"""SMTP transport: builds the MIME message of an outgoing row and hands it to the server.

Errors are sorted for the sender: ``SmtpRefused`` (5xx, the server will never take it: the row
fails) and ``SmtpUnavailable`` (down, timeout, 4xx: retried with backoff).
"""
from __future__ import annotations

import smtplib
import ssl
import time
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate

import structlog
from nameko.extensions import DependencyProvider

from crmhub.services.email.metrics import EMAIL_SMTP_SECONDS

log = structlog.get_logger(__name__)
EMAIL_ID_HEADER = "X-Crmhub-Email-Id"


class SmtpUnavailable(Exception):
    """The server could not be reached or answered 4xx: try again later."""


class SmtpRefused(Exception):
    """The server refused this message for good (5xx)."""


def build_message(email: dict, from_addr: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = email.get("from_addr") or from_addr
    msg["To"] = email["to_addr"]
    msg["Subject"] = email["subject"]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = email["message_id"]
    if email.get("in_reply_to"):
        msg["In-Reply-To"] = email["in_reply_to"]
        msg["References"] = email["in_reply_to"]
    # Bounces that drop the original headers still name the recipient and often this header.
    msg[EMAIL_ID_HEADER] = email["id"]
    for name, value in (email.get("headers") or {}).items():
        msg[name] = value
    msg.set_content(email["text_body"])
    if email.get("html_body"):
        msg.add_alternative(email["html_body"], subtype="html")
    return msg


class SmtpSession:
    """One connection to the server, opened on the first message and reused for the rest."""

    def __init__(self, settings: dict):
        self.settings = settings
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        host, port = s.get("host") or "127.0.0.1", int(s.get("port") or 25)
        timeout = float(s.get("timeout") or 30)
        tls = (s.get("tls") or "none").lower()
        if tls == "ssl":
            conn = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
            if tls == "starttls":
                conn.starttls(context=ssl.create_default_context())
        if s.get("username"):
            conn.login(s["username"], s.get("password") or "")
        return conn

    def send(self, msg: EmailMessage) -> None:
        started = time.perf_counter()
        outcome = "error"
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._conn.send_message(msg)
            outcome = "sent"
        except smtplib.SMTPResponseException as exc:
            self._drop()
            code = exc.smtp_code
            text = exc.smtp_error.decode(errors="replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            outcome = "refused" if 500 <= code < 600 else "unavailable"
            error = SmtpRefused if outcome == "refused" else SmtpUnavailable
            raise error(f"SMTP {code}: {text}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            outcome = "refused"
            codes = {code for code, _ in exc.recipients.values()}
            detail = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}"
                               for rcpt, (code, text) in exc.recipients.items())
            if all(500 <= code < 600 for code in codes):
                raise SmtpRefused(f"recipient refused: {detail}") from exc
            outcome = "unavailable"
            raise SmtpUnavailable(f"recipient deferred: {detail}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            outcome = "unavailable"
            raise SmtpUnavailable(f"SMTP server unavailable: {exc!r}") from exc
        finally:
            EMAIL_SMTP_SECONDS.labels(outcome).observe(time.perf_counter() - started)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
        self._drop()


class Mailer:
    def __init__(self, settings: dict):
        self.settings = settings
        self.from_addr = settings.get("from") or "crmhub@crmhub.local"

    @contextmanager
    def session(self):
        session = SmtpSession(self.settings)
        try:
            yield session
        finally:
            session.close()


class Smtp(DependencyProvider):
    """The SMTP server of ``EMAIL.smtp`` (host, port, tls: none|starttls|ssl, username,
    password, from, timeout)."""

    def setup(self):
        settings = (self.container.config.get("EMAIL") or {}).get("smtp") or {}
        self.mailer = Mailer(settings)

    def get_dependency(self, worker_ctx):
        return self.mailer
