"""The deployment as ops run it, on a machine without a container engine: every crmhub service
of deploy/compose.yaml as its own OS process, started with the command, environment and health
check the compose file gives its container (crmhub.compose_processes says what is mapped).

* smoke: the migration one-shot, then the eight services; a website form and a PBX call reach
  the client's card;
* scale-out: two contacts processes share its queues, and the result is what one would give;
* rolling restart: every service restarted, one at a time, while forms keep coming: every
  accepted form is on its card exactly once."""
import subprocess
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from crmhub.compose_processes import LocalCompose
from crmhub.runtime.db import sqlalchemy_url
from crmhub.runtime.registry import SERVICES
from crmhub.testing import SteadyForms
from support import fresh_schema, queue_consumers, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]

ADMIN = {"Authorization": "Bearer dev-admin-key"}  # the compose file's default API key


@pytest.fixture
def compose(tmp_path, amqp_uri, pg_url):
    """The compose file with the variables an operator would put in .env pointing at this
    test's vhost and at the test database, every service's schema dropped first (the
    migration one-shot creates them); ``compose.down()`` at the end."""
    for service in SERVICES:
        fresh_schema(pg_url, service)
    local = LocalCompose.on_local_servers(tmp_path, amqp_uri, pg_url,
                                          FORMS_RATE_LIMIT="100000", LOG_LEVEL="WARNING")
    yield local
    local.down()


def contacts_engine(compose):
    return sa.create_engine(sqlalchemy_url(compose.database_url),
                            connect_args={"options": "-csearch_path=contacts"})


def api(compose, path, **params):
    return requests.get(f"{compose.gateway_url}/api/v1{path}", headers=ADMIN, params=params,
                        timeout=10)


def card(compose, phone):
    page = api(compose, "/contacts", phone=phone).json()
    return page["total"] == 1 and api(compose, f"/contacts/{page['items'][0]['id']}").json()


def post_form(compose, submission: str, phone: str, form: str = "contact-us"):
    return requests.post(f"{compose.gateway_url}/hooks/forms/{form}", timeout=10, data={
        "name": f"Client {submission}", "phone": phone, "submission_id": submission,
        "utm_source": "deploy-test"})


def worker_runs(process, entrypoint: str) -> float:
    """How many workers of ``entrypoint`` a process ran, from its own /metrics."""
    text = requests.get(f"{process.ops_url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("crmhub_worker_seconds_count")
               and f'entrypoint="{entrypoint}"' in line)


def test_the_compose_services_as_processes_carry_a_form_and_a_call_to_the_card(compose):
    compose.up()
    assert sorted(compose.processes) == sorted(SERVICES)  # every service has its container
    for process in compose.all_processes():
        assert process.healthy(), f"{process.name}: its compose health check fails"
        assert process.env["QUEUE_TYPE"] == "quorum"

    assert post_form(compose, "smoke-1", "8 (916) 700-00-01").status_code == 200
    form_card = wait_for(lambda: card(compose, "+79167000001"), timeout=20,
                         message="the form's card")
    assert [e["kind"] for e in form_card["timeline"]] == ["form_submitted"]

    # A PBX call, signed with the Mango keys the compose file gives the gateway, played by the
    # simulator as an operator would run it inside the gateway container.
    gateway = compose.processes["gateway"][0]
    played = subprocess.run(
        [compose.crmhub, "simulate", "pbx", "--provider", "mango", "--to", compose.gateway_url,
         "--client", "79167000002", "--scenario", "answered", "--pause", "0.2"],
        env=gateway.env, capture_output=True, text=True, timeout=120)
    assert played.returncode == 0, played.stdout + played.stderr
    call_card = wait_for(lambda: (c := card(compose, "+79167000002"))
                         and any(e["kind"] == "call" for e in c["timeline"]) and c,
                         timeout=30, message="the call on the caller's card")
    call = next(e for e in call_card["timeline"] if e["kind"] == "call")
    assert call["data"]["outcome"] == "answered"

    # Every process reports the lag of its own handler queues.
    contacts_metrics = requests.get(f"{compose.processes['contacts'][0].ops_url}/metrics",
                                    timeout=5).text
    assert 'crmhub_queue_messages{queue="evt-gateway-form_submitted--contacts.' \
           'on_form_submitted",service="contacts"}' in contacts_metrics


def test_two_contacts_processes_share_the_load_with_no_duplicated_effects(compose, amqp_uri):
    compose.up(["gateway", "contacts", "deals"], scale={"contacts": 2})
    # Both replicas attached before the forms come: one attached alone would prefetch them all
    # (the broker's own count, not a health check, says so).
    forms_queue = "evt-gateway-form_submitted--contacts.on_form_submitted"
    wait_for(lambda: queue_consumers(amqp_uri, forms_queue) == 2, timeout=30,
             message="both contacts processes consuming the forms' queue")
    phones = [f"+7916800{n:04d}" for n in range(150)]
    submissions = [(f"scale-{n}-{copy}", phone) for n, phone in enumerate(phones)
                   for copy in range(2)]  # each client fills the form twice

    def send(batch):
        for submission, phone in batch:
            assert post_form(compose, submission, phone).status_code == 200

    threads = [threading.Thread(target=send, args=(submissions[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    engine = contacts_engine(compose)
    try:
        def entries():
            with engine.connect() as conn:
                return conn.execute(sa.text(
                    "SELECT count(*) FROM timeline WHERE source_key LIKE '%scale-%'")).scalar()

        wait_for(lambda: entries() == len(submissions), timeout=60,
                 message="every submission on its card")
        with engine.connect() as conn:
            cards = conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar()
            per_card = conn.execute(sa.text(
                "SELECT count(*) FROM timeline GROUP BY contact_id")).scalars().all()
    finally:
        engine.dispose()
    assert cards == len(phones)           # two processes racing on one phone made one card
    assert sorted(set(per_card)) == [2]   # and both submissions are on it
    shares = [worker_runs(p, "on_form_submitted") for p in compose.processes["contacts"]]
    assert all(share > 0 for share in shares), (
        f"one process did all the work: {shares}; the broker counts "
        f"{queue_consumers(amqp_uri, forms_queue)} consumer(s); logs:\n"
        + "\n".join(p.log_path.read_text(errors="replace")[-2000:]
                    for p in compose.processes["contacts"]))


def test_a_rolling_restart_of_every_service_loses_no_accepted_event(compose):
    compose.up(scale={"gateway": 2})
    sender = SteadyForms(compose.gateway_url, rate=20, prefix="roll-")
    sender.start()
    try:
        time.sleep(2)
        for name in compose.crmhub_services():
            compose.restart(name)
            time.sleep(1)
    finally:
        sender.stopping.set()
        sender.join(30)
    accepted = set(sender.accepted)
    assert len(accepted) > 100

    engine = contacts_engine(compose)
    try:
        def stored():
            with engine.connect() as conn:
                keys = conn.execute(sa.text(
                    "SELECT source_key FROM timeline WHERE source_key LIKE '%roll-%'")).scalars()
                return {key.rsplit(":", 1)[1] for key in keys}

        wait_for(lambda: stored() >= accepted, timeout=90,
                 message=f"all {len(accepted)} accepted forms on their cards")
        with engine.connect() as conn:
            cards = conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar()
    finally:
        engine.dispose()
    assert stored() == accepted
    assert cards == min(500, len(accepted))
