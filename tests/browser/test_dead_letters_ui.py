"""Dead letters in the operator UI: `crmhub run` with the gateway and contacts on real RabbitMQ
and PostgreSQL; a form parked while the contacts table was away is replayed from the page in
headless Chromium once the cause is fixed, and lands on a card (dead_letters_session.py, in a
process of its own: see operator_session.py for why)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dead_letter_samples import card_of_the_parked_client, fix_the_cause, park_a_form

from support import ADMIN_KEY

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SESSION = Path(__file__).with_name("dead_letters_session.py")

pytestmark = [
    pytest.mark.browser, pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (`make test` installs it with apt)"),
]


def test_an_admin_replays_a_parked_form_from_the_page(start_hub, pg_url):
    hub, letter = park_a_form(start_hub, pg_url)
    fix_the_cause(pg_url)
    session = subprocess.run(
        [sys.executable, str(SESSION), hub.base_url, ADMIN_KEY, letter["message_id"]],
        capture_output=True, text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert session.returncode == 0, f"{session.stdout}\n{session.stderr}"
    assert "dead letters session passed" in session.stdout
    card_of_the_parked_client(hub)
