"""``crmhub contracts --json-schema DIR``: one valid Draft 2020-12 schema per catalog entry, and
the exported schemas agree with marshmallow on what is a valid payload."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from marshmallow import ValidationError

from crmhub.contracts import events, jsonschema, rpc
from crmhub.contracts.base import instance

CRMHUB = Path(sys.executable).with_name("crmhub")
EVENTS = sorted(events.CATALOG)
RPC_PARTS = [(key, part) for key, spec in sorted(rpc.CATALOG.items())
             for part in ("request", "response") if getattr(spec, part) is not None]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The export, written in-process (the CLI test checks the command writes the same)."""
    directory = tmp_path_factory.mktemp("json-schema")
    jsonschema.export_json_schemas(directory)
    return directory


def read(directory: Path, relative: str) -> dict:
    return json.loads((directory / relative).read_text(encoding="utf-8"))


def validator(directory: Path, relative: str) -> Draft202012Validator:
    return Draft202012Validator(read(directory, relative),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def event_file(name: str) -> str:
    return f"events/{name}.v{events.CATALOG[name].schema_version}.json"


def all_files() -> list[str]:
    return ([event_file(name) for name in EVENTS]
            + [f"rpc/{key}.{part}.json" for key, part in RPC_PARTS] + ["index.json"])


# -- the command ----------------------------------------------------------------------------

def test_cli_exports_every_catalog_entry(tmp_path, exported):
    out = tmp_path / "schemas"
    result = subprocess.run([str(CRMHUB), "contracts", "--json-schema", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"`crmhub contracts --json-schema` failed ({result.returncode}):\n{result.stderr[-2000:]}")
    printed = {Path(line).resolve() for line in result.stdout.split()}
    assert printed == {(out / relative).resolve() for relative in all_files()}
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert written == sorted(all_files())
    for relative in written:  # byte for byte what the exporter writes in-process
        assert (out / relative).read_bytes() == (exported / relative).read_bytes(), relative


def test_export_is_deterministic(tmp_path, exported):
    paths = jsonschema.export_json_schemas(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == all_files()
    for relative in all_files():
        text = (tmp_path / relative).read_text(encoding="utf-8")
        assert text == (exported / relative).read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True,
                                  ensure_ascii=False) + "\n"


def test_export_leaves_unchanged_files_alone(tmp_path):
    first = jsonschema.export_json_schemas(tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in first}
    jsonschema.export_json_schemas(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in first} == mtimes


# -- the files ------------------------------------------------------------------------------

@pytest.mark.parametrize("relative", [f for f in all_files() if f != "index.json"])
def test_every_file_is_a_valid_draft_2020_12_schema(relative, exported):
    document = read(exported, relative)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["title"] and document["description"]
    assert document["type"] == "object"
    assert document["additionalProperties"] is False  # every contract refuses unknown fields
    refs = [ref for ref in json.dumps(document).split('"$ref": ')[1:]]
    assert all(ref.startswith('"#/$defs/') for ref in refs), "refs must stay in the document"


@pytest.mark.parametrize("name", EVENTS)
def test_event_schema_carries_its_catalog_entry(name, exported):
    spec = events.CATALOG[name]
    document = read(exported, event_file(name))
    assert document["$id"] == f"crmhub:event:{name}:v{spec.schema_version}"
    assert document["x-owner"] == spec.owner
    assert document["x-routing"] == {"exchange": f"{spec.owner}.events", "routing_key": name}
    assert document["description"] == spec.description
    assert {"event_id", "occurred_at"} <= set(document["required"])


def test_index_lists_every_file(exported):
    index = read(exported, "index.json")
    assert [e["name"] for e in index["events"]] == EVENTS
    assert {e["file"] for e in index["events"]} == {event_file(n) for n in EVENTS}
    assert [e["name"] for e in index["rpc"]] == sorted(rpc.CATALOG)
    for entry in index["rpc"]:
        spec = rpc.CATALOG[entry["name"]]
        for part in ("request", "response"):
            if getattr(spec, part) is None:
                assert entry[part] is None
            else:
                assert (exported / entry[part]["file"]).is_file()
                assert read(exported, entry[part]["file"])["$id"] == entry[part]["$id"]


def test_conversion_details(exported):
    form = read(exported, event_file(events.FORM_SUBMITTED))
    tracking = form["$defs"]["Tracking"]["properties"]
    assert "_ym_uid" in tracking and "_ga" in tracking  # data_key names
    assert form["properties"]["form_name"]["type"] == ["string", "null"]  # allow_none
    assert form["properties"]["received_at"]["format"] == "date-time"
    assert form["$defs"]["FormContact"]["properties"]["emails"]["items"]["format"] == "email"
    contact = read(exported, event_file(events.CONTACT_CREATED))["$defs"]["Contact"]
    assert contact["properties"]["kind"]["enum"] == ["person", "company"]  # OneOf
    assert contact["properties"]["source"]["anyOf"] == [{"$ref": "#/$defs/Source"},
                                                        {"type": "null"}]
    query = read(exported, "rpc/contacts.search.request.json")["properties"]
    assert (query["limit"]["minimum"], query["limit"]["maximum"]) == (1, 500)


def test_a_check_the_export_cannot_express_is_refused():
    from marshmallow import fields, validates_schema

    from crmhub.contracts.base import Contract

    class OddSchema(Contract):
        even = fields.Integer(validate=lambda n: n % 2 == 0)

        @validates_schema
        def _whatever(self, data, **_):
            pass

    converter = jsonschema.Converter()
    converter.add(OddSchema)
    with pytest.raises(jsonschema.ContractExportError) as info:
        converter.document(OddSchema)
    assert "OddSchema._whatever()" in str(info.value)
    assert "OddSchema.even" in str(info.value)


# -- agreement with marshmallow -------------------------------------------------------------

def test_format_checker_checks_what_the_contracts_use():
    """date-time needs rfc3339-validator (a dependency of openapi-schema-validator)."""
    assert {"date-time", "email"} <= set(Draft202012Validator.FORMAT_CHECKER.checkers)


def verdicts(schema_cls, check: Draft202012Validator, payload) -> tuple[bool, bool]:
    try:
        instance(schema_cls).load(copy.deepcopy(payload))
        marshmallow_ok = True
    except ValidationError:
        marshmallow_ok = False
    return marshmallow_ok, check.is_valid(payload)


def mutate(payload: dict, path: str, value=None, delete=False) -> dict:
    payload = copy.deepcopy(payload)
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return payload


@pytest.mark.parametrize("name", EVENTS)
def test_realistic_event_validates(name, exported, event_example):
    check = validator(exported, event_file(name))
    wire = event_example(name)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in check.iter_errors(wire)]
    assert errors == []


@pytest.mark.parametrize("name", EVENTS)
def test_event_with_unknown_field_does_not_validate(name, exported, event_example):
    payload = {**event_example(name), "surprise": 1}
    assert verdicts(events.CATALOG[name].schema, validator(exported, event_file(name)),
                    payload) == (False, False)


@pytest.mark.parametrize("name, field", [
    (name, field) for name in EVENTS
    for field in sorted(f.data_key or n for n, f in instance(events.CATALOG[name].schema)
                        .fields.items() if f.required)])
def test_event_without_required_field_does_not_validate(name, field, exported, event_example):
    payload = event_example(name)
    del payload[field]
    assert verdicts(events.CATALOG[name].schema, validator(exported, event_file(name)),
                    payload) == (False, False)


MUTATIONS = [
    # (event, path, value or DELETE, valid?)
    (events.FORM_SUBMITTED, "contact.phones", [], True),
    (events.FORM_SUBMITTED, "contact.emails", [], True),
    (events.FORM_SUBMITTED, "contact", {"name": "Анна", "phones": [], "emails": []}, False),
    (events.FORM_SUBMITTED, "contact", {"name": "Анна"}, False),
    (events.FORM_SUBMITTED, "contact", {"emails": ["a@example.com"]}, True),
    (events.FORM_SUBMITTED, "contact.surprise", 1, False),
    (events.FORM_SUBMITTED, "contact.phones", [""], False),
    (events.FORM_SUBMITTED, "form_name", None, True),
    (events.FORM_SUBMITTED, "connector", None, False),
    (events.FORM_SUBMITTED, "tracking", "DELETE", True),
    (events.FORM_SUBMITTED, "tracking._ym_uid", None, True),
    (events.FORM_SUBMITTED, "tracking.ym_uid", "1", False),
    (events.FORM_SUBMITTED, "fields.phone", 79161234567, False),
    (events.FORM_SUBMITTED, "idempotency_key", "ab", False),
    (events.FORM_SUBMITTED, "event_id", "short", False),
    (events.FORM_SUBMITTED, "message", "x" * 20001, False),
    (events.FORM_SUBMITTED, "occurred_at", "yesterday", False),
    (events.FORM_SUBMITTED, "occurred_at", "2026-03-14T09:26:53Z", True),
    (events.FORM_SUBMITTED, "schema_version", "DELETE", True),
    (events.CONTACT_CREATED, "contact.kind", "company", True),
    (events.CONTACT_CREATED, "contact.kind", "robot", False),
    (events.CONTACT_CREATED, "contact.source", None, True),
    (events.CONTACT_CREATED, "contact.source.tracking.utm_source", None, True),
    (events.CONTACT_CREATED, "contact.phones.0.e164", None, True),
    (events.CONTACT_CREATED, "contact.phones.0.raw", "DELETE", False),
    (events.CONTACT_CREATED, "contact.tags", [""], False),
    (events.CONTACT_CREATED, "contact.name", "x" * 301, False),
    (events.CONTACT_CREATED, "contact.emails", ["anna@example.com", "no-at-sign"], False),
    (events.CONTACT_CREATED, "cause", None, True),
    (events.CONTACT_UPDATED, "changed", "DELETE", True),
    (events.CONTACT_UPDATED, "changed", ["name", 3], False),
    (events.CONTACTS_MERGED, "target_id", None, False),
    (events.TIMELINE_ENTRY_ADDED, "entry.id", "forty-two", False),
    (events.TIMELINE_ENTRY_ADDED, "entry.data", {"anything": [1, {"goes": None}]}, True),
    (events.DEAL_CREATED, "deal.amount", None, True),
    (events.DEAL_CREATED, "deal.amount", "-5.00", False),
    (events.DEAL_CREATED, "deal.amount", "1500.5", True),
    (events.DEAL_CREATED, "deal.status", "paused", False),
    (events.DEAL_CREATED, "deal.stage_name", "Подписан договор", True),
    (events.DEAL_STAGE_CHANGED, "change.from_stage_id", None, True),
    (events.DEAL_STAGE_CHANGED, "change.to_stage_id", "DELETE", False),
    (events.DEAL_UPDATED, "deal.products.0.price", "abc", False),
    (events.TASK_DUE, "task.due_at", "2026-03-14T09:26:53", False),
    (events.TASK_DUE, "task.manager", None, True),
]


@pytest.mark.parametrize("name, path, value, valid", MUTATIONS,
                         ids=[f"{n}:{p}={'DELETE' if v == 'DELETE' else type(v).__name__}"
                              for n, p, v, _ in MUTATIONS])
def test_export_agrees_with_marshmallow(name, path, value, valid, exported, event_example):
    payload = mutate(event_example(name), path, value, delete=value == "DELETE")
    assert verdicts(events.CATALOG[name].schema, validator(exported, event_file(name)),
                    payload) == (valid, valid)


@pytest.mark.parametrize("key, part", RPC_PARTS)
def test_rpc_payloads_agree(key, part, exported, rpc_example):
    schema_cls = getattr(rpc.CATALOG[key], part)
    check = validator(exported, f"rpc/{key}.{part}.json")
    assert verdicts(schema_cls, check, rpc_example(key, part)) == (True, True)
    assert verdicts(schema_cls, check, {**rpc_example(key, part), "surprise": 1}) == (False, False)
    assert verdicts(schema_cls, check, ["not", "an", "object"]) == (False, False)
