"""What the browser tests share: the marks that run them with the hub on real RabbitMQ and
PostgreSQL (skipped where Chromium is missing), and running a Playwright session script in a
Python process of its own, which imports no eventlet (see operator_session.py for why)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SESSIONS = Path(__file__).with_name("browser")  # the session scripts
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_MARKS = [
    pytest.mark.browser, pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (`make test` installs it with apt)"),
]


def run_browser_session(script: str, *args: str, passed: str, timeout: float = 180) -> None:
    """Run ``tests/browser/<script>`` with ``args``; it must exit 0 and print ``passed``."""
    session = subprocess.run(
        [sys.executable, str(SESSIONS / script), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert session.returncode == 0, f"{session.stdout}\n{session.stderr}"
    assert passed in session.stdout, session.stdout
