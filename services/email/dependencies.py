"""IO of the email service behind small facades: the attachment store and the mailboxes."""
from __future__ import annotations

import time
from pathlib import Path

from nameko.extensions import DependencyProvider

from crmhub.contracts.errors import NotFound
from crmhub.services.email.imap_sync import (
    DEFAULT_ATTACHMENT_BYTES,
    DEFAULT_MESSAGE_BYTES,
    MailboxSync,
)
from crmhub.services.telephony.recordings import LocalDirectoryStore


def email_settings(config: dict) -> dict:
    return config.get("EMAIL") or {}


def attachment_store(config: dict) -> LocalDirectoryStore:
    """Files outside the database: ``EMAIL.attachments_dir`` (default <DATA_DIR>/email-attachments),
    in the same layout as call recordings."""
    root = email_settings(config).get("attachments_dir") or (
        Path(config.get("DATA_DIR") or "var") / "email-attachments")
    return LocalDirectoryStore(root)


class Mailboxes:
    """The configured mailboxes and when each was last synced by this process."""

    def __init__(self, config: dict):
        settings = email_settings(config)
        self.boxes = {box["name"]: box for box in settings.get("mailboxes") or []}
        self.store = attachment_store(config)
        self.max_attachment_bytes = int(settings.get("max_attachment_bytes")
                                        or DEFAULT_ATTACHMENT_BYTES)
        self.max_message_bytes = int(settings.get("max_message_bytes") or DEFAULT_MESSAGE_BYTES)
        self._last_run: dict[str, float] = {}

    def due(self) -> list[str]:
        now = time.monotonic()
        return [name for name, box in self.boxes.items()
                if now - self._last_run.get(name, float("-inf")) >= float(box.get("poll_seconds") or 60)]

    def syncer(self, db, name: str) -> MailboxSync:
        if name not in self.boxes:
            raise NotFound(f"no mailbox {name!r} configured (EMAIL.mailboxes)")
        self._last_run[name] = time.monotonic()
        return MailboxSync(db, name, self.boxes[name], store=self.store,
                           max_attachment_bytes=self.max_attachment_bytes,
                           max_message_bytes=self.max_message_bytes)


class MailboxesProvider(DependencyProvider):
    def setup(self):
        self.mailboxes = Mailboxes(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.mailboxes
