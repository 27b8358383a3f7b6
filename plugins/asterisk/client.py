"""A blocking AMI client on a plain socket. Under eventlet's monkey patching the socket is green,
so a listener blocks only its own green thread."""
from __future__ import annotations

import itertools
import socket
import time
import uuid
from collections import deque

from crmhub.plugins.asterisk.ami import AmiMessage, AmiParser, format_action

RECV_BYTES = 65536


class AmiError(Exception):
    """The AMI session failed: closed, silent, or not speaking AMI."""


class AmiLoginFailed(AmiError):
    """Asterisk refused our username or secret."""


class Backoff:
    """Delays between reconnection attempts: ``first`` seconds, doubling up to ``limit``;
    ``reset()`` after a success, so the next outage starts short again."""

    def __init__(self, first: float = 0.5, limit: float = 30.0):
        self.first, self.limit = first, max(first, limit)
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.limit)
        return delay

    def reset(self) -> None:
        self._next = self.first


class AmiConnection:
    """One AMI session. ``open`` connects; use it as a context manager so the session always
    ends with a Logoff (when logged in) and a closed socket."""

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.timeout = timeout
        self.logged_in = False
        self._parser = AmiParser()
        self._pending: deque[AmiMessage] = deque()
        self._ids = (f"crmhub-{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count(1))

    @classmethod
    def open(cls, host: str, port: int, timeout: float) -> AmiConnection:
        return cls(socket.create_connection((host, port), timeout=timeout), timeout)

    def __enter__(self) -> AmiConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------
    def next_message(self, wait: float) -> AmiMessage | None:
        """The next message, or None if none came within ``wait`` seconds. Raises AmiError
        when the server closed the connection."""
        if self._pending:
            return self._pending.popleft()
        self.sock.settimeout(max(wait, 0.001))
        try:
            data = self.sock.recv(RECV_BYTES)
        except (socket.timeout, BlockingIOError):
            return None
        if not data:
            raise AmiError("Asterisk closed the connection")
        self._pending.extend(self._parser.feed(data))
        return self._pending.popleft() if self._pending else None

    # -- actions ----------------------------------------------------------------------------
    def send(self, action: str, fields=(), action_id: str | None = None) -> str:
        """Send an action; returns its ActionID (ours unless given)."""
        action_id = action_id or next(self._ids)
        pairs = list(fields.items() if isinstance(fields, dict) else fields)
        self.sock.settimeout(self.timeout)
        self.sock.sendall(format_action(action, [*pairs, ("ActionID", action_id)]))
        return action_id

    def request(self, action: str, fields=(), action_id: str | None = None,
                on_event=None) -> AmiMessage:
        """Send an action and wait (``timeout``) for its response. Events that arrive in the
        meantime go to ``on_event`` (or are dropped)."""
        action_id = self.send(action, fields, action_id)
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = self.next_message(remaining)
            if message is None:
                continue
            if message.response is not None and message.get("ActionID") in (action_id, None):
                return message
            if message.event is not None and on_event is not None:
                on_event(message)
        raise AmiError(f"no answer to {action} within {self.timeout:g} s")

    def login(self, username: str, secret: str, events: bool = True) -> AmiMessage:
        reply = self.request("Login", {"Username": username, "Secret": secret,
                                       "Events": "on" if events else "off"})
        if (reply.response or "").lower() != "success":
            raise AmiLoginFailed(f"login refused: {reply.get('Message') or reply.response}")
        self.logged_in = True
        return reply

    def close(self) -> None:
        """Log off (best effort: the server may be gone) and close the socket."""
        try:
            if self.logged_in:
                self.logged_in = False
                self.send("Logoff")
        except OSError:
            pass
        finally:
            self.sock.close()
