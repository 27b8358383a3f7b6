"""Real mail servers for the email tests and bench, each started on a free port in a temp dir.

* ``Dovecot``: Debian's dovecot (installed by deploy/bootstrap-services.sh) with a config of its
  own: one passwd-file user, Maildir under the temp dir, plaintext login on loopback, no TLS.
  Messages are put in by IMAP APPEND or, for large fills, written as Maildir files directly.
* ``SmtpSink``: an aiosmtpd server in a child process (asyncio and the tests' eventlet
  monkey-patching do not mix in one process) that writes every message it accepts to a
  directory, optionally requires AUTH, and refuses recipients starting with "reject".
  ``stop()`` / ``start()`` on the same port play an outage.

Run as a script, this module is that child process: ``python mailservers.py smtp PORT DIR [USER:PASS]``.
"""
from __future__ import annotations

import imaplib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from crmhub.testing import free_port

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "sales@example.com", "secret"

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# The temp dir is private to the user running the tests: auth reads the passwd-file as root.
service auth {{
  user = root
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def wait_port(port: int, timeout: float = 20.0, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} not {'up' if up else 'down'} within {timeout}s")


def terminate(proc: subprocess.Popen | None) -> None:
    """Stop a server process we started: SIGTERM, then SIGKILL after 10 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Dovecot:
    def __init__(self, root: Path | None = None):
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="crmhub-dovecot-"))
        self.port = free_port()
        self.user, self.password = USER, PASSWORD
        self.proc: subprocess.Popen | None = None

    @property
    def uid(self) -> int:
        # dovecot refuses to keep mail as root: as root, the mail belongs to the "mail" user.
        return pwd.getpwnam("mail").pw_uid if os.getuid() == 0 else os.getuid()

    @property
    def gid(self) -> int:
        return pwd.getpwnam("mail").pw_gid if os.getuid() == 0 else os.getgid()

    def _hand_over(self, path: Path) -> None:
        """Let the mail user reach and own ``path`` (a temp dir is private to its creator)."""
        if os.getuid() != 0:
            return
        for parent in [self.root, *[p for p in path.parents if self.root in p.parents]]:
            os.chmod(parent, 0o711)
        for dirpath, _dirs, files in os.walk(path):
            os.chown(dirpath, self.uid, self.gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid)

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def settings(self, name="sales", **extra) -> dict:
        """A mailbox entry of EMAIL.mailboxes for this server."""
        return {"name": name, "host": "127.0.0.1", "port": self.port, "ssl": False,
                "username": self.user, "password": self.password, "folder": "INBOX",
                "poll_seconds": 1, **extra}

    def start(self) -> Dovecot:
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        conf = self.root / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(root=self.root, port=self.port, uid=self.uid,
                                            gid=self.gid))
        self._hand_over(self.root / "mail")
        self._hand_over(self.root / "home")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except AssertionError:
            self.stop()
            log = (self.root / "dovecot.log")
            raise AssertionError("dovecot did not start: " + (
                log.read_text()[-2000:] if log.exists() else "no log")) from None
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- mail ---------------------------------------------------------------------------------
    def imap(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        imap.login(self.user, self.password)
        return imap

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        imap = self.imap()
        try:
            for raw in messages:
                typ, data = imap.append(folder, None, None, raw)
                assert typ == "OK", data
        finally:
            imap.logout()

    def write_maildir(self, messages, folder: str | None = None) -> int:
        """Drop messages straight into the Maildir (fast for 50k); dovecot gives them UIDs
        on the next SELECT. Returns how many were written."""
        base = self.maildir if not folder else self.maildir / f".{folder}"
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        host, count, stamp = socket.gethostname(), 0, int(time.time())
        for raw in messages:
            (base / "cur" / f"{stamp}.M{count}P{os.getpid()}.{host}:2,").write_bytes(raw)
            count += 1
        self._hand_over(self.root / "mail")
        return count

    def recreate(self, folder: str) -> None:
        """Delete and create a folder again: it gets a new UIDVALIDITY."""
        imap = self.imap()
        try:
            imap.delete(folder)
            typ, data = imap.create(folder)
            assert typ == "OK", data
        finally:
            imap.logout()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        imap = self.imap()
        try:
            typ, data = imap.status(folder, "(UIDVALIDITY)")
            return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))
        finally:
            imap.logout()


class SmtpSink:
    """An SMTP server recording what it accepts (see the module docstring)."""

    def __init__(self, root: Path, auth: tuple[str, str] | None = None):
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.auth = auth
        self.proc: subprocess.Popen | None = None

    def settings(self, **extra) -> dict:
        """EMAIL.smtp for this server."""
        user, password = self.auth or ("", "")
        return {"host": "127.0.0.1", "port": self.port, "tls": "none", "username": user,
                "password": password, "from": "crm@example.com", "timeout": 5, **extra}

    def start(self) -> SmtpSink:
        args = [sys.executable, __file__, "smtp", str(self.port), str(self.dir)]
        if self.auth:
            args.append(":".join(self.auth))
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        wait_port(self.port, up=False)

    def messages(self) -> list[dict]:
        """What was accepted, in order: {mail_from, rcpt_tos, login, content (bytes)}."""
        found = []
        for meta in sorted(self.dir.glob("*.json")):
            entry = json.loads(meta.read_text())
            entry["content"] = meta.with_suffix(".eml").read_bytes()
            found.append(entry)
        return found


def _serve_smtp(port: int, directory: str, auth: str | None) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Recorder:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.lower().startswith("reject"):
                return "550 5.1.1 no such user here"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
            login = session.auth_data.login.decode() if isinstance(
                session.auth_data, LoginPassword) else None
            Path(directory, name + ".eml").write_bytes(envelope.original_content or envelope.content)
            Path(directory, name + ".json").write_text(json.dumps({
                "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "login": login}))
            return "250 2.0.0 accepted"

    kwargs = {}
    if auth:
        user, _, password = auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, auth_data=auth_data)

        kwargs = {"authenticator": authenticator, "auth_required": True,
                  "auth_require_tls": False}
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["smtp"]:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _serve_smtp(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
