"""JSON Schema (draft 2020-12) of every contract, for consumers that are not Python.

``crmhub contracts --json-schema DIR`` writes, from :data:`crmhub.contracts.events.CATALOG`
and :data:`crmhub.contracts.rpc.CATALOG`::

    DIR/events/<event>.v<version>.json          the body of an event, as published
    DIR/rpc/<service>.<method>.request.json     the payload argument of an RPC method
    DIR/rpc/<service>.<method>.response.json    its result
    DIR/index.json                              every file above, with its catalog entry

The conversion is apispec's marshmallow converter at OpenAPI 3.1.0, whose schema objects are
JSON Schema 2020-12: ``data_key`` names the property, ``required`` and ``allow_none`` (a
``"null"`` type) are kept, ``OneOf`` becomes ``enum``, ``Length``/``Range`` bounds and formats
(``email``, ``date-time``) carry over, and a schema that refuses unknown fields (``RAISE``, every
:class:`~crmhub.contracts.base.Contract`) gets ``additionalProperties: false``. Nested schemas go
into ``$defs``. What marshmallow checks in code (``@validates_schema``) cannot be converted:
each such hook needs its JSON Schema equivalent in :data:`RULES`, and the export refuses a
contract with a validator it cannot express rather than publish a schema laxer than the code.

The output is deterministic (sorted keys, two-space indent, a final newline), so the files
can be committed and a contract change shows up as a diff.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import marshmallow
from marshmallow import Schema, validate

DIALECT = "https://json-schema.org/draft/2020-12/schema"
GENERATOR = "crmhub contracts --json-schema; generated from crmhub.contracts, do not edit"
_COMPONENT_REF = "#/components/schemas/"

#: Validators the converter expresses; ``validate.Email`` only as part of ``fields.Email``
#: (``format: email``).
EXPRESSED_VALIDATORS = (validate.Length, validate.Range, validate.OneOf, validate.Equal,
                        validate.Regexp)


class ContractExportError(Exception):
    """A contract cannot be exported faithfully."""


def schema_name(schema) -> str:
    """The component / ``$defs`` name of a schema: its class name without ``Schema``."""
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema") or cls.__name__


# -- cross-field rules: what @validates_schema hooks check, as JSON Schema -------------------

def _form_submitted_reachable(doc: dict) -> None:
    """``FormSubmittedSchema._reachable``: the contact has a phone or an email."""
    doc["properties"]["contact"]["anyOf"] = [
        {"properties": {"phones": {"minItems": 1}}, "required": ["phones"]},
        {"properties": {"emails": {"minItems": 1}}, "required": ["emails"]},
    ]


def _call_signal_complete(doc: dict) -> None:
    """``CallSignalSchema._complete``: a finished call has its outcome, a recording its ref."""
    doc["allOf"] = [
        {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
         "then": {"properties": {field: {"type": "string", "minLength": 1}},
                  "required": [field]}}
        for kind, field in (("finished", "outcome"), ("recording", "recording_ref"))]


def _place_call_target(doc: dict) -> None:
    """``PlaceCallSchema._target``: a card or a number to call."""
    doc["anyOf"] = [{"properties": {field: {"type": "string", "minLength": 1}},
                     "required": [field]} for field in ("contact_id", "number")]


def _segment_stage_needs_pipeline(doc: dict) -> None:
    """``SegmentSchema._stage_needs_pipeline``: a stage only within a pipeline."""
    doc.setdefault("allOf", []).append(
        {"if": {"properties": {"stage_key": {"type": "string"}}, "required": ["stage_key"]},
         "then": {"properties": {"pipeline_id": {"type": "string", "minLength": 1}},
                  "required": ["pipeline_id"]}})


#: ``(schema class name, hook name)`` -> a function that adds the hook's check to the schema's
#: JSON Schema (in place). Every ``@validates_schema`` / ``@validates`` hook of an exported
#: contract must be listed here.
RULES: dict[tuple[str, str], Callable[[dict], None]] = {
    ("FormSubmittedSchema", "_reachable"): _form_submitted_reachable,
    ("CallSignalSchema", "_complete"): _call_signal_complete,
    ("PlaceCallSchema", "_target"): _place_call_target,
    ("SegmentSchema", "_stage_needs_pipeline"): _segment_stage_needs_pipeline,
}


def _hooks(cls: type[Schema]) -> list[tuple[str, str]]:
    """``(defining class name, hook name)`` of every validation hook of ``cls``, inherited too."""
    hooks = getattr(cls, "_hooks", {})
    names = {name for tag in ("validates_schema", "validates") for name, *_ in hooks.get(tag, ())}
    return sorted((next(c.__name__ for c in cls.__mro__ if name in vars(c)), name)
                  for name in names)


def _validators(field: marshmallow.fields.Field):
    """``(field, validator)`` of ``field`` and of its list items, dict keys and values."""
    for validator in field.validators:
        yield field, validator
    if isinstance(field, marshmallow.fields.List):
        yield from _validators(field.inner)
    if isinstance(field, marshmallow.fields.Dict):
        for sub in (field.key_field, field.value_field):
            if sub is not None:
                yield from _validators(sub)


def inexpressible(cls: type[Schema]) -> list[str]:
    """What of ``cls`` itself (not its nested schemas) the export cannot express."""
    problems = [f"{owner}.{hook}() has no JSON Schema equivalent in "
                "crmhub.contracts.jsonschema.RULES" for owner, hook in _hooks(cls)
                if (owner, hook) not in RULES]
    for name, field in cls._declared_fields.items():
        for owner, validator in _validators(field):
            if isinstance(validator, validate.Email) and isinstance(owner,
                                                                   marshmallow.fields.Email):
                continue
            if not isinstance(validator, EXPRESSED_VALIDATORS):
                problems.append(f"{cls.__name__}.{name}: validator {validator!r} has no JSON "
                                "Schema equivalent")
    return problems


# -- conversion -------------------------------------------------------------------------------

class Converter:
    """Marshmallow schemas -> JSON Schema through apispec (OpenAPI 3.1.0 = JSON Schema 2020-12).

    Schemas are collected as OpenAPI components, named by :func:`schema_name`; two different
    classes with one name are an error (apispec would silently rename one)."""

    def __init__(self, title: str = "crmhub contracts", version: str = "1", **options):
        from apispec import APISpec
        from apispec.ext.marshmallow import MarshmallowPlugin

        self.classes: dict[str, type[Schema]] = {}
        self.spec = APISpec(title=title, version=version, openapi_version="3.1.0",
                            plugins=[MarshmallowPlugin(schema_name_resolver=self._name)],
                            **options)
        self._components: tuple[int, dict] | None = None

    def _name(self, schema) -> str:
        cls = schema if isinstance(schema, type) else type(schema)
        name = schema_name(cls)
        known = self.classes.setdefault(name, cls)
        if known is not cls:
            raise ContractExportError(
                f"{known.__module__}.{known.__qualname__} and {cls.__module__}.{cls.__qualname__}"
                f" would both be named {name!r}; rename one")
        return name

    def add(self, cls: type[Schema]) -> str:
        name = self._name(cls)
        if name not in self.spec.components.schemas:
            self.spec.components.schema(name, schema=cls)
        return name

    def components(self, strict: bool = True) -> dict[str, dict]:
        """Every collected schema as JSON Schema (refs still ``#/components/schemas/...``),
        with the :data:`RULES` applied. ``strict``: raise :class:`ContractExportError` if a
        schema has a check the conversion cannot express."""
        count = len(self.spec.components.schemas)
        if self._components is None or self._components[0] != count:
            schemas = copy.deepcopy(self.spec.to_dict().get("components", {}).get("schemas", {}))
            for name, doc in schemas.items():
                cls = self.classes.get(name)
                if cls is None:  # a component given as a plain dict
                    continue
                for key in _hooks(cls):
                    if key in RULES:
                        RULES[key](doc)
                doc.setdefault("title", name)
                own_doc = vars(cls).get("__doc__")
                if own_doc:
                    doc.setdefault("description", " ".join(own_doc.split()))
            self._components = (count, schemas)
        schemas = self._components[1]
        if strict:
            problems = [p for name in schemas if name in self.classes
                        for p in inexpressible(self.classes[name])]
            if problems:
                raise ContractExportError("cannot export the contracts faithfully:\n  "
                                          + "\n  ".join(problems))
        return copy.deepcopy(schemas)

    def document(self, cls: type[Schema], **head) -> dict:
        """A standalone JSON Schema of ``cls``: its nested schemas in ``$defs``."""
        root = self.add(cls)
        components = self.components()
        body = components[root]
        defs: dict[str, dict] = {}
        pending = _refs(body)
        while pending:
            name = pending.pop()
            if name not in defs:
                defs[name] = components[name]
                pending |= _refs(defs[name])
        doc = {"$schema": DIALECT, **body, **head}
        if defs:
            doc["$defs"] = dict(sorted(defs.items()))
        return _rewrite_refs(doc)


def _refs(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENT_REF):
            found.add(ref[len(_COMPONENT_REF):])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _rewrite_refs(node):
    if isinstance(node, dict):
        return {key: ("#/$defs/" + value[len(_COMPONENT_REF):]
                      if key == "$ref" and isinstance(value, str)
                      and value.startswith(_COMPONENT_REF) else _rewrite_refs(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(value) for value in node]
    return node


# -- the documents ----------------------------------------------------------------------------

def event_id(name: str, version: int) -> str:
    return f"crmhub:event:{name}:v{version}"


def rpc_id(key: str, part: str) -> str:
    return f"crmhub:rpc:{key}:{part}"


def event_path(name: str, version: int) -> str:
    return f"events/{name}.v{version}.json"


def rpc_path(key: str, part: str) -> str:
    return f"rpc/{key}.{part}.json"


def build_documents() -> dict[str, dict]:
    """Every document of the export by relative path, ``index.json`` last."""
    from crmhub.contracts import events, rpc

    converter = Converter()
    documents: dict[str, dict] = {}
    index: dict = {"$comment": GENERATOR, "events": [], "rpc": []}
    for name, spec in sorted(events.CATALOG.items()):
        path = event_path(name, spec.schema_version)
        routing = {"exchange": f"{spec.owner}.events", "routing_key": name}
        documents[path] = converter.document(
            spec.schema, **{
                "$id": event_id(name, spec.schema_version), "$comment": GENERATOR,
                "title": f"{name} v{spec.schema_version}", "description": spec.description,
                "x-event": name, "x-owner": spec.owner, "x-routing": routing,
                "x-schema-version": spec.schema_version})
        index["events"].append({
            "name": name, "owner": spec.owner, "schema_version": spec.schema_version,
            **routing, "$id": event_id(name, spec.schema_version), "file": path,
            "description": spec.description})
    for key, spec in sorted(rpc.CATALOG.items()):
        entry = {"name": key, "service": spec.service, "method": spec.method,
                 "description": spec.description}
        for part, schema in (("request", spec.request), ("response", spec.response)):
            if schema is None:
                entry[part] = None
                continue
            path = rpc_path(key, part)
            documents[path] = converter.document(
                schema, **{
                    "$id": rpc_id(key, part), "$comment": GENERATOR,
                    "title": f"{key} {part}",
                    "description": f"{'Argument' if part == 'request' else 'Result'} of "
                                   f"{key}: {spec.description}",
                    "x-rpc": {"service": spec.service, "method": spec.method, "part": part}})
            entry[part] = {"$id": rpc_id(key, part), "file": path}
        index["rpc"].append(entry)
    documents["index.json"] = index
    return documents


def dumps(document: dict) -> str:
    """The committed text form: sorted keys, two-space indent, UTF-8 as is, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_json_schemas(directory) -> list[Path]:
    """Write every JSON Schema of the contracts under ``directory``; return the path of every
    file of the export (a file whose content is unchanged is left untouched). Files of events or methods that
    left the catalog are not deleted: ``index.json`` lists what is current."""
    out = Path(directory)
    written = []
    for relative, document in build_documents().items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = dumps(document)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
