"""A form whose handling fails until an operator fixes the cause: the contacts service's
timeline table is renamed away, so the form is retried and parked in crmhub.dlq.contacts;
renaming it back is the fix, after which a replay lands the form on a card. Shared by the
REST and browser tests of dead letters."""
import requests
import sqlalchemy as sa

from crmhub.runtime.db import sqlalchemy_url
from support import ADMIN_KEY, fresh_schema, wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PHONE = "+79167770011"


def rename_timeline(pg_url: str, old: str, new: str) -> None:
    engine = sa.create_engine(sqlalchemy_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f'ALTER TABLE contacts."{old}" RENAME TO "{new}"'))
    engine.dispose()


def park_a_form(start_hub, pg_url):
    """A hub (gateway + contacts) with one form parked in the contacts dead-letter queue;
    returns the hub and the dead letter as the API lists it."""
    fresh_schema(pg_url, "contacts")
    hub = start_hub(database_url=pg_url, services=("gateway", "contacts"))
    rename_timeline(pg_url, "timeline", "timeline_away")
    accepted = requests.post(f"{hub.base_url}/hooks/forms/contact-us", timeout=10,
                             data={"name": "Parked Client", "phone": PHONE})
    assert accepted.status_code == 200

    def parked():
        page = requests.get(f"{hub.base_url}/api/v1/dead-letters", headers=ADMIN,
                            params={"service": "contacts"}, timeout=10).json()
        return page["total"] == 1 and page["dead_letters"][0]

    letter = wait_for(parked, timeout=30, interval=0.3, message="the form parked")
    return hub, letter


def fix_the_cause(pg_url: str) -> None:
    rename_timeline(pg_url, "timeline_away", "timeline")


def card_of_the_parked_client(hub):
    def found():
        page = hub.api("GET", "/api/v1/contacts", params={"phone": PHONE})
        assert page.status_code == 200, page.text
        return page.json()["total"] == 1

    return wait_for(found, timeout=20, message="the replayed form's card")
