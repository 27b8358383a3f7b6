"""The crmhub services of a compose file, run as local OS processes.

On a machine without a container engine this is how tests and benchmarks check the deployment
itself: each service starts with the command, the environment and the health check that
``deploy/compose.yaml`` gives its container, read from the file (anchors, merge keys and
``${VAR:-default}`` resolved as Compose does). What a container would have that a process
does not is mapped, and only that:

* host names of the compose network (``rabbitmq``, ``postgres``) resolve to 127.0.0.1;
* every container has its own network namespace, so the ports a container listens on
  (``OPS_ADDRESS``, ``GATEWAY_ADDRESS``) get a free local port each, and health checks that
  name a port are pointed at the mapped one; replicas of the gateway share its port
  (SO_REUSEPORT), as replicas behind one published port would;
* volumes under the image's data root become folders of one work directory;
* the image's ``ENV CRMHUB_CONFIG`` points at the repository's ``deploy/config.yaml``, the
  file the image copies, and ``crmhub`` is the one in this interpreter's folder.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import yaml

from crmhub.testing import free_port

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "deploy" / "compose.yaml"
IMAGE_CONFIG = REPO / "deploy" / "config.yaml"   # COPY'd to /etc/crmhub/config.yaml
DATA_ROOT = "/var/lib/crmhub"                     # the image's writable data root
NETWORK_HOSTS = ("rabbitmq", "postgres")
LISTEN_KEYS = ("OPS_ADDRESS", "GATEWAY_ADDRESS")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, variables: dict) -> str:
    """Compose's variable syntax: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or
    empty), ``${VAR-default}`` (unset), ``${VAR:?message}`` / ``${VAR?message}`` (required);
    defaults may hold variables themselves."""
    out, i = [], 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0 or dollar == len(text) - 1:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        following = text[dollar + 1]
        if following == "$":
            out.append("$")
            i = dollar + 2
        elif following == "{":
            depth, end = 1, dollar + 2
            while depth and end < len(text):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            if depth:
                raise ValueError(f"unclosed ${{ in {text!r}")
            out.append(_expand(text[dollar + 2:end - 1], variables))
            i = end
        elif (name := _NAME.match(text, dollar + 1)) is not None:
            out.append(variables.get(name.group(0), ""))
            i = name.end()
        else:
            out.append("$")
            i = dollar + 1
    return "".join(out)


def _expand(expr: str, variables: dict) -> str:
    name, op, rest = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", expr,
                                  re.S).groups()
    value = variables.get(name)
    missing = value is None or (op is not None and op.startswith(":") and value == "")
    if op and op.endswith("-"):
        return interpolate(rest, variables) if missing else value
    if op and op.endswith("?") and missing:
        raise ValueError(f"compose variable {name} is required: {rest}")
    return value or ""


def _interpolate_tree(node, variables: dict):
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, variables) for key, value in node.items()}
    return node


def load_compose(path: Path = COMPOSE_FILE, variables: dict | None = None) -> dict:
    """The compose model with anchors merged and variables resolved from ``variables``."""
    with open(path, encoding="utf-8") as fh:
        model = yaml.safe_load(fh)
    return _interpolate_tree(model, dict(variables or {}))


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _localize_url(value: str) -> str:
    """A URL naming a host of the compose network, pointed at this machine."""
    if "://" not in value:
        return value
    url = urlsplit(value)
    if url.hostname not in NETWORK_HOSTS:
        return value
    userinfo, _, hostport = url.netloc.rpartition("@")
    hostport = "127.0.0.1" + hostport[len(url.hostname):]
    return urlunsplit(url._replace(netloc=f"{userinfo}@{hostport}" if userinfo else hostport))


@dataclass
class ServiceProcess:
    """One container of a compose service, as a process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str] | None
    log_path: Path
    stop_grace: float = 10.0
    ports: dict[str, int] = field(default_factory=dict)  # container port -> local port
    proc: subprocess.Popen | None = None

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[9100]}"

    def start(self) -> "ServiceProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.env.get("HOME"))
        log.close()
        return self

    def healthy(self) -> bool:
        """The compose health check, run as the container would run it."""
        if self.healthcheck:
            return subprocess.run(self.healthcheck, env=self.env, capture_output=True,
                                  timeout=10).returncode == 0
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.ops_url}/health", timeout=2).status_code == 200
        return False

    def wait_healthy(self, timeout: float = 90) -> "ServiceProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-3000:]}")
            if self.healthy():
                return self
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not healthy in {timeout}s:\n"
                           f"{self.log_path.read_text(errors='replace')[-3000:]}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after the service's stop grace period (``docker stop``)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc and self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seconds(value, default: float) -> float:
    """A compose duration (``30s``, ``1m30s``, ``120s``) in seconds."""
    if not value:
        return default
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", str(value)))


class LocalCompose:
    """``docker compose up`` of the crmhub services of a compose file, as processes.

    ``variables`` are the compose variables (what an operator puts in ``.env``); RabbitMQ and
    PostgreSQL are the machine's own, reached where the file says ``rabbitmq``/``postgres``.
    """

    def __init__(self, workdir: Path, variables: dict, path: Path = COMPOSE_FILE,
                 database_url: str | None = None):
        self.workdir = Path(workdir)
        self.database_url = database_url  # where the services' tables are, as seen from here
        self.model = load_compose(path, variables)
        self.processes: dict[str, list[ServiceProcess]] = {}
        self._gateway_port: int | None = None
        bin_dir = Path(sys.executable).parent
        self.crmhub = shutil.which("crmhub", path=str(bin_dir)) or "crmhub"
        self.base_env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
                         "HOME": str(self.workdir), "LANG": "C.UTF-8",
                         "CRMHUB_CONFIG": str(IMAGE_CONFIG), "PYTHONUNBUFFERED": "1"}

    @classmethod
    def on_local_servers(cls, workdir: Path, amqp_uri: str, database_url: str,
                         **variables) -> "LocalCompose":
        """The compose file with the variables an operator would put in ``.env`` pointing at a
        vhost of this machine's RabbitMQ and a database of its PostgreSQL (trust auth: any
        password); ``variables`` add or override others."""
        amqp, db = urlsplit(amqp_uri), urlsplit(database_url)
        return cls(workdir, {
            "RABBITMQ_USER": unquote(amqp.username or "guest"),
            "RABBITMQ_PASSWORD": unquote(amqp.password or "guest"),
            "RABBITMQ_VHOST": unquote(amqp.path[1:]) or "/",
            "POSTGRES_USER": unquote(db.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(db.password or "trust"),
            "POSTGRES_DB": db.path[1:], **variables}, database_url=database_url)

    @property
    def services(self) -> dict:
        return self.model["services"]

    def crmhub_services(self) -> list[str]:
        """The long-running services built from the crmhub image, in file order."""
        return [name for name, spec in self.services.items()
                if spec.get("image", "").startswith("crmhub") and spec.get("restart") != "no"]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self._gateway_port}"

    def environment(self, name: str) -> tuple[dict[str, str], dict[int, int]]:
        """A container's environment as a process gets it, and its container->local ports."""
        env = {**self.base_env, **_environment(self.services[name])}
        ports: dict[int, int] = {}
        for key in LISTEN_KEYS:
            if key in env:
                port = int(env[key].rpartition(":")[2])
                if key == "GATEWAY_ADDRESS":
                    self._gateway_port = self._gateway_port or free_port()
                    ports[port] = self._gateway_port
                else:
                    ports[port] = free_port()
                env[key] = f"127.0.0.1:{ports[port]}"
        for key, value in env.items():
            value = _localize_url(value)
            if value.startswith(DATA_ROOT):
                value = str(self.workdir / "volumes") + value[len(DATA_ROOT):]
                Path(value).mkdir(parents=True, exist_ok=True)
            env[key] = value
        return env, ports

    def _argv(self, spec: dict) -> list[str]:
        entrypoint = spec.get("entrypoint") or ["crmhub"]
        command = spec.get("command") or []
        if isinstance(entrypoint, str):
            entrypoint = ["sh", "-c", entrypoint]
        if isinstance(command, str):
            command = command.split()
        argv = list(entrypoint) + list(command)
        return [self.crmhub if arg == "crmhub" else arg for arg in argv]

    def _healthcheck(self, spec: dict, ports: dict[int, int]) -> list[str] | None:
        test = (spec.get("healthcheck") or {}).get("test")
        if not test or test[0] == "NONE":
            return None
        argv = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])
        for inside, local in ports.items():
            argv = [re.sub(rf":{inside}\b", f":{local}", arg) for arg in argv]
        return [sys.executable if arg == "python" else arg for arg in argv]

    def process(self, name: str) -> ServiceProcess:
        spec = self.services[name]
        env, ports = self.environment(name)
        replica = len(self.processes.get(name, [])) + 1
        return ServiceProcess(
            name=f"{name}-{replica}", argv=self._argv(spec), env=env, ports=ports,
            healthcheck=self._healthcheck(spec, ports),
            log_path=self.workdir / f"{name}-{replica}.log",
            stop_grace=_seconds(spec.get("stop_grace_period"), 10.0))

    def run_once(self, name: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A one-shot service (the migration): runs to completion, must exit 0."""
        one = self.process(name)
        done = subprocess.run(one.argv, env=one.env, capture_output=True, text=True,
                              timeout=timeout, cwd=one.env["HOME"])
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def up(self, services=None, scale: dict | None = None) -> "LocalCompose":
        """The one-shot services the crmhub services depend on, then every crmhub service
        (``scale``: replicas per service), each waited for until its health check passes."""
        names = list(services or self.crmhub_services())
        needed = {dep for name in names
                  for dep, cond in (self.services[name].get("depends_on") or {}).items()
                  if (cond or {}).get("condition") == "service_completed_successfully"}
        for dep in needed:
            self.run_once(dep)
        started = []
        for name in names:
            for _ in range((scale or {}).get(name, 1)):
                started.append(self.add(name, wait=False))
        for process in started:
            process.wait_healthy()
        return self

    def add(self, name: str, wait: bool = True) -> ServiceProcess:
        """One more replica of ``name`` (``--scale``)."""
        process = self.process(name).start()
        self.processes.setdefault(name, []).append(process)
        return process.wait_healthy() if wait else process

    def restart(self, name: str) -> None:
        """Each replica of ``name`` in turn: stopped, started again, healthy before the next."""
        for index, old in enumerate(self.processes[name]):
            old.stop()
            new = replace(old, proc=None).start()
            self.processes[name][index] = new
            new.wait_healthy()

    def all_processes(self) -> list[ServiceProcess]:
        return [p for group in self.processes.values() for p in group]

    def down(self) -> None:
        """Every process asked to stop at once, then each waited for (``docker compose down``)."""
        running = [p for p in self.all_processes() if p.proc and p.proc.poll() is None]
        for process in running:
            process.proc.terminate()
        for process in running:
            process.stop()
