"""The marshmallow contracts hold what the catalogs promise: events survive the wire unchanged,
refuse unknown and missing fields by name, and every RPC payload schema tells valid from garbage."""
import contextlib
import json

import pytest
from marshmallow import ValidationError

from crmhub.contracts import events, rpc
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.runtime.registry import SERVICES

EVENTS = sorted(events.CATALOG)
RPC_PARTS = [(key, part) for key, spec in sorted(rpc.CATALOG.items())
             for part in ("request", "response") if getattr(spec, part) is not None]


def required_fields(schema_cls) -> list[str]:
    """Wire names of the fields ``schema_cls`` requires on load."""
    return sorted(field.data_key or name
                  for name, field in instance(schema_cls).fields.items() if field.required)


REQUIRED = [(name, field) for name in EVENTS
            for field in required_fields(events.CATALOG[name].schema)]


def load(name: str, payload: dict) -> dict:
    return instance(events.CATALOG[name].schema).load(payload)


# -- the catalog itself ---------------------------------------------------------------------

@pytest.mark.parametrize("name", EVENTS)
def test_catalog_entry_is_consistent(name):
    spec = events.CATALOG[name]
    assert spec.name == name
    assert spec.owner in SERVICES, f"{name} is owned by {spec.owner!r}, not a known service"
    assert spec.description.strip()
    assert isinstance(spec.schema_version, int) and spec.schema_version >= 1


@pytest.mark.parametrize("name", EVENTS)
def test_new_event_carries_the_catalog_schema_version(name, event_example):
    """Bumping a version in the catalog without changing the schema's default (or the
    reverse) would publish events that claim the wrong version."""
    assert event_example(name)["schema_version"] == events.CATALOG[name].schema_version
    bare = new_event(events.CATALOG[name].schema)  # no body: what the schema itself defaults to
    assert bare["schema_version"] == events.CATALOG[name].schema_version


# -- events round-trip ------------------------------------------------------------------------

@pytest.mark.parametrize("name", EVENTS)
def test_event_round_trips(name, event_example):
    wire = event_example(name)
    schema = instance(events.CATALOG[name].schema)
    assert schema.dump(schema.load(wire)) == wire
    # Only plain JSON types on the wire: nothing that kombu would have to tag.
    assert json.loads(json.dumps(wire)) == wire


@pytest.mark.parametrize("name", EVENTS)
def test_event_refuses_unknown_field(name, event_example):
    with pytest.raises(ValidationError) as info:
        load(name, {**event_example(name), "surprise": 1})
    assert info.value.messages == {"surprise": ["Unknown field."]}


@pytest.mark.parametrize("name, path", [
    (events.FORM_SUBMITTED, ("contact",)),
    (events.FORM_SUBMITTED, ("tracking",)),
    (events.CONTACT_CREATED, ("contact",)),
    (events.CONTACT_UPDATED, ("contact", "source")),
    (events.TIMELINE_ENTRY_ADDED, ("entry",)),
    (events.DEAL_STAGE_CHANGED, ("change",)),
    (events.DEAL_WON, ("deal", "products", 0)),
    (events.TASK_DUE, ("task",)),
])
def test_event_refuses_unknown_nested_field(name, path, event_example):
    wire = event_example(name)
    node = wire
    for key in path:
        node = node[key]
    node["surprise"] = 1
    with pytest.raises(ValidationError) as info:
        load(name, wire)
    messages = info.value.messages
    for key in path:
        messages = messages[key]
    assert messages == {"surprise": ["Unknown field."]}


@pytest.mark.parametrize("name, field", REQUIRED)
def test_event_refuses_missing_required_field(name, field, event_example):
    wire = event_example(name)
    del wire[field]
    with pytest.raises(ValidationError) as info:
        load(name, wire)
    assert info.value.messages == {field: ["Missing data for required field."]}


def test_every_event_requires_the_envelope():
    for name in EVENTS:
        assert {"event_id", "occurred_at"} <= set(required_fields(events.CATALOG[name].schema))


@pytest.mark.parametrize("occurred_at", ["2026-03-14T09:26:53", "yesterday", 1773480413])
def test_event_refuses_naive_or_malformed_time(occurred_at, event_example):
    with pytest.raises(ValidationError) as info:
        load(events.CONTACTS_MERGED, {**event_example(events.CONTACTS_MERGED),
                                      "occurred_at": occurred_at})
    assert set(info.value.messages) == {"occurred_at"}


# -- form_submitted -----------------------------------------------------------------------------

@pytest.mark.parametrize("contact", [
    {"name": "Анна", "phones": [], "emails": []},
    {"name": "Анна"},
    {},
])
def test_form_submission_without_phone_and_email_is_refused(contact, event_example):
    wire = {**event_example(events.FORM_SUBMITTED), "contact": contact}
    with pytest.raises(ValidationError) as info:
        FormSubmittedSchema().load(wire)
    assert info.value.messages == {"contact": ["a submission needs a phone or an email"]}


@pytest.mark.parametrize("contact", [
    {"phones": ["+7 916 123-45-67"]},
    {"emails": ["anna@example.com"]},
])
def test_form_submission_with_phone_or_email_is_accepted(contact, event_example):
    loaded = FormSubmittedSchema().load({**event_example(events.FORM_SUBMITTED),
                                         "contact": contact})
    assert loaded["contact"]["phones"] or loaded["contact"]["emails"]


def test_form_submission_keeps_analytics_ids_under_their_wire_names(event_example):
    wire = event_example(events.FORM_SUBMITTED)
    loaded = FormSubmittedSchema().load(wire)
    assert loaded["tracking"]["_ym_uid"] == "1700000000123456789"
    assert FormSubmittedSchema().dump(loaded)["tracking"]["_ga"] == wire["tracking"]["_ga"]


def test_form_submission_refuses_bad_email(event_example):
    wire = event_example(events.FORM_SUBMITTED)
    wire["contact"]["emails"] = ["not-an-email"]
    with pytest.raises(ValidationError) as info:
        FormSubmittedSchema().load(wire)
    assert set(info.value.messages["contact"]) == {"emails"}


# -- RPC payloads ---------------------------------------------------------------------------

def rpc_schema(key: str, part: str):
    return instance(getattr(rpc.CATALOG[key], part))


def test_rpc_catalog_keys_match_entries():
    for key, spec in rpc.CATALOG.items():
        assert key == f"{spec.service}.{spec.method}"
        assert spec.service in SERVICES
        assert spec.response is not None, f"{key} documents no result"


@pytest.mark.parametrize("key, part", RPC_PARTS)
def test_rpc_payload_loads_a_valid_example(key, part, rpc_example):
    schema = rpc_schema(key, part)
    loaded = schema.load(rpc_example(key, part))
    if part == "response":  # results are dumped by the service: they survive the round trip
        assert schema.dump(loaded) == rpc_example(key, part)


@pytest.mark.parametrize("garbage", ["contacts", 42, None, ["q", "Анна"], {"surprise": 1}],
                         ids=["str", "int", "none", "list", "unknown-field"])
@pytest.mark.parametrize("key, part", RPC_PARTS)
def test_rpc_payload_rejects_garbage(key, part, garbage):
    with pytest.raises(ValidationError):
        rpc_schema(key, part).load(garbage)


@pytest.mark.parametrize("key, part", [(k, p) for k, p in RPC_PARTS
                                       if required_fields(getattr(rpc.CATALOG[k], p))])
def test_rpc_payload_names_its_missing_required_fields(key, part):
    with pytest.raises(ValidationError) as info:
        rpc_schema(key, part).load({})
    expected = required_fields(getattr(rpc.CATALOG[key], part))
    assert sorted(info.value.messages) == expected


# -- the short load path gives marshmallow's own results ------------------------------------

@contextlib.contextmanager
def marshmallow_path(method: str):
    """Contracts run marshmallow's own ``method`` (``_deserialize``, ``_serialize``) instead
    of their short path: the reference the short path must match."""
    from marshmallow import Schema

    from crmhub.contracts.base import Contract

    short = Contract.__dict__[method]
    setattr(Contract, method, getattr(Schema, method))
    try:
        yield
    finally:
        setattr(Contract, method, short)


def outcome(schema, method: str, value):
    """What ``schema.load`` or ``schema.dump`` of ``value`` gives: a result, marshmallow's
    refusal with its messages, or another failure."""
    try:
        return "done", getattr(schema, method)(value)
    except ValidationError as exc:
        return "refused", exc.messages
    except Exception as exc:  # noqa: BLE001 - the same failure, whatever it is
        return "failed", type(exc).__name__, str(exc)


def marshmallow_outcome(schema, method: str, value):
    with marshmallow_path({"load": "_deserialize", "dump": "_serialize"}[method]):
        return outcome(schema, method, value)


def variants(payload: dict):
    """The payload, and versions of it broken or bent the ways senders do."""
    yield payload
    for key, value in payload.items():
        rest = {k: v for k, v in payload.items() if k != key}
        yield rest                                      # a field missing
        yield {**payload, key: None}                    # null
        yield {**payload, key: 12345}                   # a number where text may be
        yield {**payload, key: "text"}                  # text where a number may be
        yield {**payload, key: [value]}                 # wrapped in a list
        if isinstance(value, dict) and value:
            yield {**payload, key: {**value, "surprise": 1}}
            inner = next(iter(value))
            yield {**payload, key: {k: v for k, v in value.items() if k != inner}}
        if isinstance(value, list) and value and isinstance(value[0], dict):
            yield {**payload, key: [{**value[0], "surprise": 1}, *value[1:]]}
    yield {**payload, "surprise": 1}


@pytest.mark.parametrize("name", EVENTS)
def test_an_event_loads_as_marshmallow_alone_would_load_it(name, event_example):
    """Valid or not, every variant of every event gets the same result or the same error
    messages from a contract's short load path as from marshmallow's own."""
    schema = instance(events.CATALOG[name].schema)
    for payload in variants(event_example(name)):
        assert outcome(schema, "load", payload) == \
            marshmallow_outcome(schema, "load", payload), payload


@pytest.mark.parametrize("key, part", RPC_PARTS)
def test_an_rpc_payload_loads_as_marshmallow_alone_would_load_it(key, part, rpc_example):
    schema = rpc_schema(key, part)
    example = rpc_example(key, part)
    for payload in variants(example) if isinstance(example, dict) else [example]:
        assert outcome(schema, "load", payload) == \
            marshmallow_outcome(schema, "load", payload), payload


# -- the short dump path gives marshmallow's own results ------------------------------------

def dump_variants(loaded: dict):
    """What a service dumps (a loaded payload), and it with each field missing or None."""
    yield loaded
    for key in loaded:
        yield {k: v for k, v in loaded.items() if k != key}
        yield {**loaded, key: None}


@pytest.mark.parametrize("name", sorted(events.CATALOG))
def test_an_event_dumps_as_marshmallow_alone_would_dump_it(name, event_example):
    schema = instance(events.CATALOG[name].schema)
    for obj in dump_variants(schema.load(event_example(name))):
        assert outcome(schema, "dump", obj) == marshmallow_outcome(schema, "dump", obj), obj


@pytest.mark.parametrize("key, part", RPC_PARTS)
def test_an_rpc_payload_dumps_as_marshmallow_alone_would_dump_it(key, part, rpc_example):
    schema = rpc_schema(key, part)
    loaded = schema.load(rpc_example(key, part))
    for obj in dump_variants(loaded) if isinstance(loaded, dict) else [loaded]:
        assert outcome(schema, "dump", obj) == marshmallow_outcome(schema, "dump", obj), obj
