"""contacts.get_many: many cards in one call (the deals service asks for the clients of the
orders it sends to 1C), merges followed, unknown ids named; on both database backends."""
import pytest
from nameko.testing.services import worker_factory

from crmhub.contracts.errors import InvalidInput
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.contacts import logic
from crmhub.services.contacts.models import metadata
from crmhub.services.contacts.service import ContactsService


@pytest.fixture
def db(database_config):
    engine = make_engine(database_config, "contacts")
    yield ServiceDatabase(engine, metadata, "contacts")
    engine.dispose()


def test_cards_by_id_follow_merges_and_name_the_missing(db):
    with db.transaction() as tx:
        a = logic.create_contact(tx, {"name": "A", "phones": ["+79161230001"]})["id"]
        b = logic.create_contact(tx, {"name": "B", "phones": ["+79161230002"],
                                      "emails": ["b@example.com"]})["id"]
        c = logic.create_contact(tx, {"company": "ООО В", "phones": ["+79161230003"]})["id"]
        logic.merge_contacts(tx, a, b)
        logic.merge_contacts(tx, b, c)  # a -> b -> c
        d = logic.create_contact(tx, {"name": "D", "emails": ["d@example.com"]})["id"]
    with db.connect() as conn:
        found = logic.load_many(conn, [d, a, "ghost", c, d])
    assert [card["id"] for card in found["items"]] == [d, c]
    assert found["resolved"] == {d: d, a: c, c: c}
    assert found["missing"] == ["ghost"]
    card = found["items"][1]
    assert sorted(p["e164"] for p in card["phones"]) == ["+79161230001", "+79161230002", "+79161230003"]
    assert card["emails"] == ["b@example.com"]
    with db.connect() as conn:
        assert logic.load_many(conn, []) == {"items": [], "resolved": {}, "missing": []}


def test_the_rpc_takes_a_list_and_answers_in_wire_form(tmp_path, database_config):
    engine = make_engine(database_config, "contacts")
    worker = worker_factory(ContactsService, config=database_config,
                            db=ServiceDatabase(engine, metadata, "contacts"))
    try:
        card = worker.create({"name": "Анна", "phones": ["8 916 123-45-67"]})
        answer = worker.get_many([card["id"], "nope"])
        assert [c["id"] for c in answer["items"]] == [card["id"]]
        assert isinstance(answer["items"][0]["created_at"], str)
        assert answer["missing"] == ["nope"]
        assert worker.get_many({"ids": [card["id"]]})["resolved"] == {card["id"]: card["id"]}
        with pytest.raises(InvalidInput):
            worker.get_many("not a list")
    finally:
        engine.dispose()
