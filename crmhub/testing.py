"""Run a hub as a subprocess: for end-to-end tests and benchmarks, crmhub's and integrators'."""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml


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
