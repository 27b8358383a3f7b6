"""Dead letters over REST: an admin lists what a service parked (with the error and where it
failed), fixes the cause and replays it, and the parked form becomes a card; other roles and
bad requests are refused."""
import pytest
import requests
from dead_letter_samples import (
    ADMIN,
    card_of_the_parked_client,
    fix_the_cause,
    park_a_form,
)

from support import OPERATOR_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]


def test_an_admin_lists_a_parked_form_fixes_the_cause_and_replays_it(start_hub, pg_url):
    hub, letter = park_a_form(start_hub, pg_url)
    assert letter["service"] == "contacts"
    assert letter["origin"] == "gateway/form_submitted"
    assert letter["queue"] == "evt-gateway-form_submitted--contacts.on_form_submitted"
    assert letter["attempts"] == 3  # the first run and the two configured retries
    assert "timeline" in letter["error"]
    assert letter["body"]["contact"]["phones"] == ["+79167770011"]
    assert letter["request_id"]

    url = f"{hub.base_url}/api/v1/dead-letters"
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    assert requests.get(url, headers=operator, timeout=10).status_code == 403
    refused = requests.post(f"{url}/replay", headers=operator, timeout=10,
                            json={"service": "contacts", "all": True})
    assert refused.status_code == 403
    for body, field in (({"service": "contacts"}, "message_ids"),
                        ({"service": "nowhere", "all": True}, "service"),
                        ({"service": "contacts", "all": True, "extra": 1}, "extra")):
        bad = requests.post(f"{url}/replay", headers=ADMIN, json=body, timeout=10)
        assert bad.status_code == 400 and field in bad.json()["details"], bad.text
    unknown = requests.get(url, headers=ADMIN, params={"service": "nowhere"}, timeout=10)
    assert unknown.status_code == 400 and "service" in unknown.json()["details"]

    fix_the_cause(pg_url)
    replayed = requests.post(f"{url}/replay", headers=ADMIN, timeout=10,
                             json={"service": "contacts", "message_ids": [letter["message_id"]]})
    assert replayed.status_code == 200
    assert replayed.json() == {"service": "contacts", "replayed": 1}
    card_of_the_parked_client(hub)
    assert requests.get(url, headers=ADMIN, timeout=10).json()["total"] == 0
