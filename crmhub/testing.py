"""Run a hub as a subprocess: for end-to-end tests and benchmarks, crmhub's and integrators'."""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test or bench starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HubProcess:
    """``crmhub run`` with a config of its own, in ``workdir``; JSON log lines in a file."""

    def __init__(self, workdir: Path, name: str, config: dict, services=(), migrate=False,
                 api_key: str | None = None):
        self.config = config
        self.base_url = f"http://{config['WEB_SERVER_ADDRESS']}"
        self.ops_url = f"http://{config['OPS_ADDRESS']}"
        path = Path(workdir) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        crmhub = shutil.which("crmhub", path=str(Path(sys.executable).parent))
        args = [crmhub] if crmhub else [sys.executable, "-m", "crmhub.cli"]
        args += ["run", "--config", str(path)] + (["--migrate"] if migrate else [])
        for service in services:
            args += ["--service", service]
        self.log_path = Path(workdir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def wait_healthy(self, timeout: float = 60) -> "HubProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.ops_url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"hub not healthy in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.base_url + path, timeout=10, **kwargs)

    def logs(self) -> list[dict]:
        """The JSON log lines written so far."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class LocalHttpServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 in a thread of its own, for the local servers that play a
    vendor's cloud in tests, benchmarks and demos: ``start()``, then ``stop()``.

    It accepts on its socket itself rather than through ``serve_forever``: socketserver binds
    its selector class when imported, which in a test run may be before eventlet's monkey
    patching, and a real poll would then block every green thread."""

    daemon_threads = True
    block_on_close = False
    ACCEPT_POLL = 0.05  # seconds between looks at the stop flag

    def __init__(self, handler, address=("127.0.0.1", 0)):
        super().__init__(address, handler)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self):
        self.socket.settimeout(self.ACCEPT_POLL)
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"{type(self).__name__}:{self.server_port}")
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, address = self.socket.accept()
            except OSError:  # the poll interval passed, or a TLS handshake failed
                continue
            self.process_request(connection, address)  # a (green) thread per connection

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (a timeout test) is no news


class VendorApiHandler(BaseHTTPRequestHandler):
    """A request handler that answers as a vendor's API does: HTTP/1.1 kept alive, with Nagle
    off (or a reply's body waits for the ACK of its headers). An idle connection is dropped
    after ``timeout`` seconds, so a client that stops sending holds no thread for ever."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 10


class SteadyForms(threading.Thread):
    """Website forms posted at ``rate`` per second to ``base_url`` until ``stopping`` is set:
    submission ids ``<prefix><n>``, phones cycling over ``clients`` numbers. A submission the
    hub did not accept (a gateway restarting under it) is sent again with the same id, as a
    website's retry would, so ``accepted`` lists every submission the hub took, once."""

    def __init__(self, base_url: str, rate: float, form: str = "contact-us",
                 prefix: str = "steady-", clients: int = 500):
        super().__init__(daemon=True)
        self.url = f"{base_url.rstrip('/')}/hooks/forms/{form}"
        self.interval, self.prefix, self.clients = 1 / rate, prefix, clients
        self.accepted: list[str] = []
        self.resent = 0
        self.stopping = threading.Event()

    def run(self):
        session = requests.Session()
        n = 0
        while not self.stopping.is_set():
            submission = f"{self.prefix}{n}"
            data = {"name": f"Client {submission}", "phone": f"+7916{n % self.clients:07d}",
                    "submission_id": submission}
            while True:
                try:
                    if session.post(self.url, data=data, timeout=10).status_code == 200:
                        break
                except requests.RequestException:
                    session = requests.Session()
                self.resent += 1
                time.sleep(0.05)
            self.accepted.append(submission)
            n += 1
            time.sleep(self.interval)

