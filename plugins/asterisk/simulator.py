"""A local AMI server for tests and demos: enough of Asterisk's manager to log in, originate,
and replay a script of events (by default the real capture in this package, see
:mod:`.scenarios`).

    with AmiServer(scenarios.answered_incoming()) as pbx:
        connector = AsteriskConnector(pbx.connector_settings())
        ...

The script is one stream, as a PBX has one: a client that reconnects gets the events after
the last one sent, and ``drop_after`` closes the connection after that many events to make it
reconnect. ``push`` sends more events to every logged-in session.
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Mapping

from crmhub.plugins.asterisk.ami import AmiMessage, AmiParser, format_message
from crmhub.plugins.asterisk.scenarios import capture_events

BANNER = "Asterisk Call Manager/5.0.1"
POLL_SECONDS = 0.05


class _Session:
    """One client connection; its socket is written by the reader and the replay thread."""

    def __init__(self, conn: socket.socket, line_end: str):
        self.conn, self.line_end = conn, line_end
        self.logged_in = self.events_on = False
        self.open = True
        self._lock = threading.Lock()

    def send(self, fields: Mapping | Iterable) -> None:
        with self._lock:
            if self.open:
                self.conn.sendall(format_message(fields, self.line_end))

    def close(self) -> None:
        with self._lock:
            if self.open:
                self.open = False
                try:
                    self.conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.conn.close()


class AmiServer:
    """Listens on 127.0.0.1 and a free port until ``stop()``.

    ``originate_error``: answer Originate with ``Response: Error`` and this message.
    ``drop_after``: event counts (positions in the script) after which the connection is
    dropped, once each. ``interval``: seconds between replayed events. ``port``: 0 for a free
    one.
    Observed: ``logins``, ``failed_logins``, ``connections``, ``actions`` (every action
    received), ``sent`` (script events sent).
    """

    def __init__(self, script: Iterable[Mapping] | None = None, *, username: str = "crmhub",
                 secret: str = "secret", originate_error: str | None = None,
                 drop_after: Iterable[int] = (), interval: float = 0.0,
                 line_end: str = "\r\n", port: int = 0):
        self.script = list(capture_events() if script is None else script)
        self.username, self.secret = username, secret
        self.originate_error = originate_error
        self.interval, self.line_end = interval, line_end
        self.logins = self.failed_logins = self.connections = self.sent = 0
        self.actions: list[AmiMessage] = []
        self._drops = sorted(drop_after)
        self._cursor_lock = threading.Lock()
        self._sessions: list[_Session] = []
        self._threads: list[threading.Thread] = []
        self._running = False
        self._listener: socket.socket | None = None
        self.host, self.port = "127.0.0.1", port

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> AmiServer:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port))
        self._listener.listen(8)
        self._listener.settimeout(POLL_SECONDS)
        self.port = self._listener.getsockname()[1]
        self._running = True
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._running = False
        for session in list(self._sessions):
            session.close()
        for thread in self._threads:
            thread.join(timeout=2)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> AmiServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def connector_settings(self, **overrides) -> dict:
        """Settings of an AsteriskConnector that talks to this server."""
        return {"host": self.host, "port": self.port, "username": self.username,
                "secret": self.secret, "timeout": 2, **overrides}

    def wait_for(self, condition, timeout: float = 5.0) -> bool:
        """Poll ``condition()`` until it is true or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def push(self, *events: Mapping) -> None:
        """Send events (not from the script) to every session that asked for events."""
        for session in list(self._sessions):
            if session.events_on:
                for event in events:
                    session.send(event)

    def drop_connections(self) -> None:
        for session in list(self._sessions):
            session.close()

    # -- serving ----------------------------------------------------------------------------
    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while self._running:
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            self.connections += 1
            session = _Session(conn, self.line_end)
            self._sessions.append(session)
            self._spawn(self._serve, session)

    def _serve(self, session: _Session) -> None:
        parser = AmiParser()
        session.conn.settimeout(POLL_SECONDS)
        try:
            session.conn.sendall(f"{BANNER}{self.line_end}".encode())
            while self._running and session.open:
                try:
                    data = session.conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                for action in parser.feed(data):
                    self.actions.append(action)
                    self._answer(session, action)
        except OSError:
            pass
        finally:
            session.close()
            self._sessions.remove(session)

    def _answer(self, session: _Session, action: AmiMessage) -> None:
        name = (action.get("Action") or "").lower()
        reply = {"Response": "Success", "ActionID": action.get("ActionID", "")}
        if name == "login":
            if (action.get("Username"), action.get("Secret")) != (self.username, self.secret):
                self.failed_logins += 1
                session.send({**reply, "Response": "Error", "Message": "Authentication failed"})
                session.close()  # as Asterisk does
                return
            self.logins += 1
            session.logged_in = True
            session.send({**reply, "Message": "Authentication accepted"})
            if (action.get("Events") or "on").lower() != "off":
                session.events_on = True
                self._spawn(self._replay, session)
        elif not session.logged_in:
            session.send({**reply, "Response": "Error", "Message": "Permission denied"})
        elif name == "originate" and self.originate_error:
            session.send({**reply, "Response": "Error", "Message": self.originate_error})
        elif name == "originate":
            session.send({**reply, "Message": "Originate successfully queued"})
        elif name == "ping":
            session.send({**reply, "Ping": "Pong", "Timestamp": f"{time.time():.6f}"})
        elif name == "logoff":
            session.send({**reply, "Response": "Goodbye", "Message": "Thanks for all the fish."})
            session.close()
        else:
            session.send({**reply, "Response": "Error", "Message": "Invalid/unknown command"})

    def _replay(self, session: _Session) -> None:
        """Send the rest of the script to ``session``; drop it at the next drop point."""
        while self._running and session.open:
            with self._cursor_lock:
                if self.sent >= len(self.script):
                    return
                if self._drops and self.sent >= self._drops[0]:
                    self._drops.pop(0)
                    event = None
                else:
                    event = self.script[self.sent]
                    self.sent += 1
            if event is None:
                session.close()
                return
            try:
                session.send(event)
            except OSError:
                return
            if self.interval:
                time.sleep(self.interval)


def main(argv=None) -> None:
    """``python -m crmhub.plugins.asterisk.simulator --port 5038 answered_incoming outgoing``:
    a fake PBX for a demo hub (CONNECTORS.asterisk pointed at it), until Ctrl-C."""
    import argparse

    from crmhub.plugins.asterisk.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("scenarios", nargs="*", help=f"of {', '.join(SCENARIOS)} (default: capture)")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--username", default="crmhub")
    parser.add_argument("--secret", default="secret")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between events")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    script = [event for name in args.scenarios or ["capture"] for event in SCENARIOS[name]()]
    with AmiServer(script, username=args.username, secret=args.secret, port=args.port,
                   interval=args.interval) as server:
        print(f"AMI on {server.host}:{server.port}, {len(script)} events; Ctrl-C to stop")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
