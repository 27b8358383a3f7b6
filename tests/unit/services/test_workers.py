"""Service classes without a broker: nameko's worker_factory with real SQLite storage, and
the database provider bound to a stand-in container."""
import datetime as dt
import json
from unittest.mock import Mock

import pytest
import sqlalchemy as sa
from nameko.containers import ServiceContainer, WorkerContext
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder

from crmhub.contracts.base import new_event
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.plugins.api import BadPayload, WebhookResult
from crmhub.runtime.db import Database, ServiceDatabase, make_engine
from crmhub.runtime.handlers import Delivery
from crmhub.runtime.migrate import upgrade
from crmhub.services.contacts.models import metadata
from crmhub.services.contacts.service import ContactsService
from crmhub.services.gateway.dependencies import EventPublisher
from crmhub.services.gateway.service import GatewayService


@pytest.fixture
def contacts(tmp_path):
    config = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "", "DEFAULT_REGION": "RU"}
    upgrade(config, "contacts")
    engine = make_engine(config, "contacts")
    yield worker_factory(ContactsService, config=config,
                         db=ServiceDatabase(engine, metadata, "contacts"))
    engine.dispose()


def test_contacts_rpc_dumps_cards_by_contract(contacts):
    card = contacts.create({"name": "Анна", "phones": ["8 916 123 45 67"]})
    assert card["phones"] == [{"e164": "+79161234567", "raw": "8 916 123 45 67",
                               "extension": None}]
    assert isinstance(card["created_at"], str)  # wire form, not a datetime
    assert contacts.get(card["id"])["timeline"][0]["kind"] == "contact_created"
    page = contacts.search({"phone": "+7 916 1234567"})
    assert [c["id"] for c in page["items"]] == [card["id"]]
    updated = contacts.update(card["id"], {"tags": ["vip"]})
    assert updated["tags"] == ["vip"]


def test_a_card_without_its_timeline_follows_merges(contacts):
    """contacts.get_contact: what deals, email and campaigns ask for (a name, phones,
    emails), without the up to 200 timeline entries of contacts.get."""
    kept = contacts.create({"name": "Анна", "phones": ["+79161234567"]})
    gone = contacts.create({"name": "Анна П.", "emails": ["anna@example.com"]})
    contacts.merge({"source_id": gone["id"], "target_id": kept["id"]})
    card = contacts.get_contact(gone["id"])
    assert card["id"] == kept["id"] and card["emails"] == ["anna@example.com"]
    assert card["merged_ids"] == [gone["id"]]
    assert "timeline" not in card
    assert {k: v for k, v in contacts.get(kept["id"]).items() if k != "timeline"} == card
    with pytest.raises(NotFound):
        contacts.get_contact("missing")


def test_contacts_rpc_refuses_bad_input_with_typed_errors(contacts):
    with pytest.raises(InvalidInput) as err:
        contacts.create({"name": "x", "emails": ["nope"]})
    assert "emails" in err.value.details
    with pytest.raises(InvalidInput):
        contacts.search({"limit": 0})
    with pytest.raises(NotFound):
        contacts.get("missing")
    contacts.create({"phones": ["+79161234567"]})
    with pytest.raises(Conflict):
        contacts.create({"phones": ["89161234567"]})


def test_form_handler_ingests_a_batch(contacts):
    now = dt.datetime.now(dt.timezone.utc)
    payloads = [new_event(FormSubmittedSchema, idempotency_key=f"forms:t:{i}", connector="forms",
                          form="t", contact={"phones": ["+79160000000"]}, received_at=now)
                for i in range(3)]
    contacts.on_form_submitted([Delivery(p, f"r{i}") for i, p in enumerate(payloads)])
    [card] = contacts.search({})["items"]
    assert len(contacts.get(card["id"])["timeline"]) == 3


def test_gateway_webhook_publishes_what_the_connector_returns():
    gateway = worker_factory(GatewayService)
    event = ("form_submitted", {"any": "thing"})
    gateway.connectors.handle.return_value = ("forms", WebhookResult(events=[event],
                                                                     body="ok"))
    request = EnvironBuilder(method="POST", path="/hooks/forms/x", data={"phone": "1"}).get_request()
    response = gateway.webhook(request, "forms/x")
    assert response.status_code == 200 and response.get_data(as_text=True) == "ok"
    gateway.events.publish.assert_called_once_with([event])
    sent = gateway.connectors.handle.call_args.args[0]
    assert (sent.method, sent.path, sent.body) == ("POST", "/hooks/forms/x", b"phone=1")


def test_event_publisher_refuses_an_event_that_breaks_its_contract():
    publisher = Mock()
    events = EventPublisher(publisher, "gateway", {"request_id": "r1"})
    with pytest.raises(BadPayload) as err:
        events.publish([("form_submitted", {"connector": "forms"})])
    assert "form_submitted" in err.value.message
    with pytest.raises(BadPayload):
        events.publish([("no_such_event", {})])
    publisher.publish_many.assert_not_called()


def test_database_provider_lifecycle(tmp_path):
    config = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "", "AMQP_URI": "amqp://unused/"}
    container = Mock(spec=ServiceContainer, config=config, service_name="contacts")
    provider = Database(metadata, relay=False).bind(container, "db")
    provider.setup()
    db = provider.get_dependency(Mock(spec=WorkerContext, data={"request_id": "abc"}))
    assert db.context == {"request_id": "abc"}
    metadata.create_all(db.engine)
    with db.transaction() as tx:
        assert tx.claim("k1") and not tx.claim("k1")
        tx.emit("contact_created", {"x": 1})
    with db.connect() as conn:
        row = conn.execute(sa.select(db.outbox)).one()
    assert row.event_type == "contact_created" and json.loads(row.headers)["request_id"] == "abc"
    provider.stop()
