"""The hub as users meet it: `crmhub run` in a subprocess on real RabbitMQ and PostgreSQL;
website forms posted over HTTP become client cards read back through the REST API."""
import json
import re
import subprocess
import threading
import uuid

import pytest
import requests
import yaml

from support import INTEGRATOR_KEY, OPERATOR_KEY, REPO, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]


@pytest.fixture
def hub(start_hub, pg_url):
    from support import fresh_schema

    fresh_schema(pg_url, "contacts")
    return start_hub(database_url=pg_url, MAX_BODY_BYTES=4096, CONNECTORS={
        "forms": {"allow_unknown_forms": False, "rate_limit_per_minute": 100000,
                  "forms": {"contact-us": {"title": "Contact us"}}},
        "tilda": {}})


def post_form(hub, form="contact-us", headers=None, **fields):
    return requests.post(f"{hub.base_url}/hooks/forms/{form}", data=fields, headers=headers,
                         timeout=10)


def card_by_phone(hub, phone):
    page = hub.api("GET", "/api/v1/contacts", params={"phone": phone}).json()
    if page.get("total") == 1:
        return hub.api("GET", f"/api/v1/contacts/{page['items'][0]['id']}").json()
    return None


def test_a_submitted_form_becomes_a_card_with_its_timeline_entry(hub):
    resp = post_form(hub, name="Мария Иванова", phone="8 (916) 123-45-67",
                     email="maria@example.com", comment="Перезвоните после 18:00",
                     utm_source="yandex", utm_campaign="winter", yclid="778899",
                     headers={"Idempotency-Key": "sub-1"})
    assert resp.status_code == 200, resp.text
    card = wait_for(lambda: card_by_phone(hub, "+7 916 123-45-67"), message="card readable")
    assert card["name"] == "Мария Иванова"
    assert card["emails"] == ["maria@example.com"]
    assert card["source"]["tracking"]["utm_campaign"] == "winter"
    [entry] = card["timeline"]
    assert entry["kind"] == "form_submitted"
    assert entry["title"] == "Form «Contact us» submitted"
    assert entry["data"]["tracking"]["yclid"] == "778899"
    assert entry["data"]["message"] == "Перезвоните после 18:00"

    # The same submission delivered twice, and a second one written differently.
    assert post_form(hub, name="Мария Иванова", phone="8 (916) 123-45-67",
                     headers={"Idempotency-Key": "sub-1"}).status_code == 200
    assert post_form(hub, phone="79161234567", comment="ещё вопрос").status_code == 200
    card = wait_for(lambda: (c := card_by_phone(hub, "79161234567")) and len(c["timeline"]) == 2
                    and c, message="second entry")
    assert hub.api("GET", "/api/v1/contacts").json()["total"] == 1


def test_concurrent_forms_with_one_phone_make_one_card(hub):
    formats = ["+7 903 555-00-11", "89035550011", "7 (903) 555 00 11"]
    statuses = []

    def send(i):
        statuses.append(post_form(hub, name=f"Client {i}", phone=formats[i % 3]).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 30
    card = wait_for(lambda: (c := card_by_phone(hub, "+79035550011")) and len(c["timeline"]) == 30
                    and c, timeout=20, message="30 entries on one card")
    assert len(card["phones"]) == 1
    assert hub.api("GET", "/api/v1/contacts").json()["total"] == 1


def test_tilda_handshake_and_submission(hub):
    resp = requests.post(f"{hub.base_url}/hooks/tilda", data={"test": "test"}, timeout=10)
    assert (resp.status_code, resp.text) == (200, "ok")
    fields = {"Name": "Олег", "Phone": "+7 (999) 111-22-33", "tranid": "123456:789",
              "formid": "form123456", "utm_source": "vk"}
    for _ in range(2):  # Tilda retries: the same tranid twice
        assert requests.post(f"{hub.base_url}/hooks/tilda", data=fields, timeout=10).ok
    card = wait_for(lambda: card_by_phone(hub, "89991112233"), message="tilda card")
    assert card["name"] == "Олег"
    assert len(card["timeline"]) == 1


def test_bad_input_gets_a_clear_error_and_stores_nothing(hub):
    cases = [
        (post_form(hub, name="No way to reach me"), 400),
        (post_form(hub, form="no-such-form", phone="+79161234567"), 404),
        (requests.post(f"{hub.base_url}/hooks/forms/contact-us", data="{broken",
                       headers={"Content-Type": "application/json"}, timeout=10), 400),
        (requests.post(f"{hub.base_url}/hooks/forms/contact-us",
                       data={"phone": "+79161234567", "comment": "x" * 5000}, timeout=10), 413),
        (requests.post(f"{hub.base_url}/hooks/forms/contact-us", data=b"\x00\x01",
                       headers={"Content-Type": "application/octet-stream"}, timeout=10), 415),
        (requests.get(f"{hub.base_url}/api/v1/contacts", timeout=10), 401),
        (requests.get(f"{hub.base_url}/api/v1/contacts", timeout=10,
                      headers={"Authorization": "Bearer forged"}), 401),
        (hub.api("POST", "/api/v1/contacts", data="{not json"), 400),
        (hub.api("POST", "/api/v1/contacts", json={"phones": ["+79161234567"], "x": 1}), 400),
        (hub.api("POST", "/api/v1/contacts", json={"emails": ["not-an-email"]}), 400),
        (hub.api("GET", "/api/v1/contacts", params={"phone": "abc"}), 400),
        (hub.api("GET", "/api/v1/contacts", params={"limit": "100000"}), 400),
        (hub.api("GET", "/api/v1/contacts/nope"), 404),
        (hub.api("GET", "/api/v1/nothing-here"), 404),
    ]
    for resp, status in cases:
        assert resp.status_code == status, (resp.request.method, resp.request.url, resp.text)
        body = resp.json()
        assert body["error"] and body["message"], body
    assert hub.api("GET", "/api/v1/contacts").json()["total"] == 0


def test_rest_api_create_update_merge_with_roles(hub):
    created = hub.api("POST", "/api/v1/contacts", json={
        "name": "ООО Ромашка", "kind": "company", "phones": ["+7 495 123-45-67"],
        "tags": ["b2b"], "custom_fields": {"inn": "7701234567"}})
    assert created.status_code == 201, created.text
    company = created.json()
    assert created.headers["Location"] == f"/api/v1/contacts/{company['id']}"
    assert company["phones"][0]["e164"] == "+74951234567"
    assert company["timeline"][0]["title"] == "Card created"

    dup = hub.api("POST", "/api/v1/contacts", json={"phones": ["84951234567"]})
    assert dup.status_code == 409 and dup.json()["details"]["contact_id"] == company["id"]

    patched = hub.api("PATCH", f"/api/v1/contacts/{company['id']}",
                      json={"manager": "olga", "tags": ["b2b", "vip"]}).json()
    assert (patched["manager"], patched["tags"]) == ("olga", ["b2b", "vip"])

    other = hub.api("POST", "/api/v1/contacts", json={"name": "Roma", "emails": ["r@x.ru"]}).json()
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    forbidden = requests.post(f"{hub.base_url}/api/v1/contacts/merge", headers=operator,
                              json={"source_id": other["id"], "target_id": company["id"]})
    assert forbidden.status_code == 403
    assert requests.get(f"{hub.base_url}/api/v1/contacts/{other['id']}", headers=operator,
                        timeout=10).status_code == 200
    merged = hub.api("POST", "/api/v1/contacts/merge",
                     json={"source_id": other["id"], "target_id": company["id"]}).json()
    assert merged["emails"] == ["r@x.ru"] and merged["merged_ids"] == [other["id"]]
    assert hub.api("GET", f"/api/v1/contacts/{other['id']}").json()["id"] == company["id"]
    found = hub.api("GET", "/api/v1/contacts", params={"q": "ромаш"}).json()
    assert [c["id"] for c in found["items"]] == [company["id"]]
    integrator = {"Authorization": f"Bearer {INTEGRATOR_KEY}"}
    assert requests.get(f"{hub.base_url}/api/v1/connectors", headers=integrator,
                        timeout=10).status_code == 403


def test_request_id_health_and_metrics(start_hub, pg_url):
    from support import fresh_schema

    fresh_schema(pg_url, "contacts")
    hub = start_hub(database_url=pg_url, LOG_LEVEL="DEBUG")
    request_id = f"trace-{uuid.uuid4().hex[:8]}"
    resp = requests.post(f"{hub.base_url}/hooks/forms/landing", timeout=10,
                         data={"phone": "+79161234567"}, headers={"X-Request-ID": request_id})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == request_id
    wait_for(lambda: card_by_phone(hub, "+79161234567"))

    def contacts_logged():
        return [line for line in hub.logs() if line.get("request_id") == request_id
                and line.get("service") == "contacts"]

    lines = wait_for(contacts_logged, message="contacts worker logged the gateway's request id")
    assert lines[0]["entrypoint"] == "on_form_submitted"
    health = requests.get(f"{hub.ops_url}/health", timeout=5).json()
    assert health["services"]["contacts"]["checks"] == {"running": True, "database": True}
    live = requests.get(f"{hub.ops_url}/live", timeout=5)
    assert live.status_code == 200 and live.json()["services"]["contacts"] is True
    assert requests.get(f"{hub.base_url}/health", timeout=5).json()["status"] == "ok"
    metrics = requests.get(f"{hub.base_url}/metrics", timeout=5).text
    assert 'crmhub_webhooks_total{connector="forms",status="200"} 1.0' in metrics
    ops_metrics = requests.get(f"{hub.ops_url}/metrics").text
    assert "crmhub_outbox_published_total" in ops_metrics
    # What the process started with is frozen out of collections, and their pauses are shown.
    frozen = re.search(r"^crmhub_gc_frozen_objects (\S+)$", ops_metrics, re.M)
    assert frozen and float(frozen.group(1)) > 10_000
    assert re.search(r'^crmhub_gc_pause_seconds_count\{generation="2"\} [1-9]', ops_metrics, re.M)


def test_connectors_are_listed_and_can_be_disabled(tmp_path):
    cli = [str(REPO / ".venv/bin/crmhub"), "connectors", "--json", "--config"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"LOG_LEVEL": "WARNING"}))
    listed = json.loads(subprocess.run(cli + [str(path)], capture_output=True, text=True,
                                       check=True).stdout)
    assert {c["name"] for c in listed} >= {"forms", "tilda"}
    forms = next(c for c in listed if c["name"] == "forms")
    assert forms["routes"][0]["path"] == "/hooks/forms/<form>"
    path.write_text(yaml.safe_dump({"LOG_LEVEL": "WARNING", "DISABLED_CONNECTORS": ["tilda"]}))
    listed = json.loads(subprocess.run(cli + [str(path)], capture_output=True, text=True,
                                       check=True).stdout)
    assert "tilda" not in {c["name"] for c in listed}


def test_a_disabled_connector_answers_404(start_hub):
    hub = start_hub(DISABLED_CONNECTORS=["tilda"])
    resp = requests.post(f"{hub.base_url}/hooks/tilda", data={"test": "test"}, timeout=10)
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    names = [c["name"] for c in hub.api("GET", "/api/v1/connectors").json()["items"]]
    assert "forms" in names and "tilda" not in names


def test_a_call_to_a_stopped_service_does_not_fail_calls_to_the_running_ones(start_hub, pg_url):
    """With deals not running, its request goes unanswered: after RPC_TIMEOUT_SECONDS the
    gateway says so (503, JSON); its next calls to contacts, on the same pooled channel, still
    succeed, and the unanswered calls hold no worker (more of them than the gateway has
    workers are all answered)."""
    from support import fresh_schema

    fresh_schema(pg_url, "contacts")
    hub = start_hub(database_url=pg_url, services=("gateway", "contacts"),
                    RPC_TIMEOUT_SECONDS=0.5, max_workers=4)
    for _ in range(6):
        waited = hub.api("GET", "/api/v1/deals")
        assert waited.status_code == 503
        assert waited.json()["message"] == \
            "the deals service did not answer search_deals within 0.5 s"
        listed = hub.api("GET", "/api/v1/contacts")
        assert listed.status_code == 200, listed.text
