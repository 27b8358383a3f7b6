"""Dead letters in the operator UI: `crmhub run` with the gateway and contacts on real RabbitMQ
and PostgreSQL; a form parked while the contacts table was away is replayed from the page in
headless Chromium once the cause is fixed, and lands on a card (dead_letters_session.py, in a
process of its own: see operator_session.py for why)."""

from browser_runs import BROWSER_MARKS, run_browser_session
from dead_letter_samples import card_of_the_parked_client, fix_the_cause, park_a_form

from support import ADMIN_KEY

pytestmark = BROWSER_MARKS


def test_an_admin_replays_a_parked_form_from_the_page(start_hub, pg_url):
    hub, letter = park_a_form(start_hub, pg_url)
    fix_the_cause(pg_url)
    run_browser_session("dead_letters_session.py", hub.base_url, ADMIN_KEY, letter["message_id"],
                        passed="dead letters session passed")
    card_of_the_parked_client(hub)
