"""OpenAPI 3.1 description of the gateway's HTTP API, generated from the marshmallow contracts.

Each REST entrypoint carries :func:`operation` metadata; :func:`build_spec` turns it into
OpenAPI operations through apispec's marshmallow plugin (the same conversion as the JSON Schema
export, :mod:`crmhub.contracts.jsonschema`, so component names and rules agree). The routes
that are not REST resources (``/health``, ``/metrics``, this document, the webhooks under
``/hooks``) are described here, in :data:`BUILTIN`, by their URL rule.
"""
from __future__ import annotations

import copy
import functools
import re

#: The catch-all routes that only answer a JSON 404: not documented.
CATCH_ALL = frozenset({"/<path:rest>", "/api/<path:rest>"})

DESCRIPTION = """\
The REST API of crmhub, a CRM integration hub: client cards (contacts) with their timeline,
the sales funnel (pipelines, deals, tasks, managers, lead rules), and the connector plugins
that receive webhooks.

**Authentication.** Every `/api/v1` call except this document needs an API key:
`Authorization: Bearer <key>`. A key has a role; each operation names the permission it needs
and the roles that hold it.

**Errors** are JSON: `{"error": "<code>", "message": "<text>", "details": {...}}`, with
`details` (for example the invalid fields) only when there is something to add. Unknown
fields in a body or the query string are refused with 400.

**Request ids.** Send `X-Request-ID` to have it logged by every service the request reaches;
otherwise one is made. It is returned in the `X-Request-ID` response header.

**Webhooks** (`/hooks/{connector}/...`) are answered by connector plugins, which authenticate
requests with their provider's own scheme (signature, secret, origin), not with API keys;
`GET /api/v1/connectors` lists the routes of the loaded connectors.
"""

TAGS = [
    {"name": "contacts", "description": "Client cards and their timeline"},
    {"name": "pipelines", "description": "Sales pipelines, their stages and templates"},
    {"name": "deals", "description": "Deals and their stage history"},
    {"name": "tasks", "description": "Managers' tasks and their reminders"},
    {"name": "managers", "description": "Managers who receive deals and tasks"},
    {"name": "lead rules", "description": "Which new clients get a deal, in which pipeline"},
    {"name": "connectors", "description": "Connector plugins"},
    {"name": "calls", "description": "The call log, click-to-call, recordings, extensions and "
                                     "the incoming-call popup stream"},
    {"name": "catalog", "description": "Products with prices and stock from 1C, and its imports"},
    {"name": "campaigns", "description": "Email campaigns and clients' consent per channel"},
    {"name": "tracking", "description": "Public links of campaign emails: open pixel, click "
                                        "redirect, unsubscribe (signed tokens, no API key)"},
    {"name": "reports", "description": "Reports built from events (funnel, managers, lead "
                                       "sources, call center, campaigns, churn), managers' "
                                       "plans and ad spend"},
    {"name": "webhooks", "description": "Incoming webhooks, answered by connector plugins"},
    {"name": "ops", "description": "Health, metrics and this document"},
]

_ERROR_STATUS = {
    400: "Invalid input (`invalid_input`): `details` names the offending fields",
    401: "Missing or unknown API key (`unauthenticated`)",
    403: "The key's role lacks the permission (`forbidden`)",
    404: "No such resource (`not_found`)",
    409: "Conflicts with another resource (`conflict`), e.g. a phone or email of another card",
    416: "The range lies beyond the end (`range_not_satisfiable`)",
    502: "A downstream service or the PBX failed (`upstream_error`, `pbx_refused`)",
    503: "A dependency or the PBX is unavailable, retry later (`unavailable`, "
         "`pbx_unavailable`)",
}
_URL_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"},
                    "uuid": {"type": "string", "format": "uuid"}}


def operation(**meta):
    """Describe an HTTP entrypoint for the OpenAPI spec: ``summary``, ``tags``, ``query``
    (schema of the query string), ``request`` and ``response`` (body schemas), ``status``
    (success code), ``permission``; optionally ``description`` and ``errors`` (error statuses
    the operation may answer besides those implied by the rest)."""

    def decorate(fn):
        fn.__openapi__ = meta
        return fn

    return decorate


def entrypoints(service_cls):
    """``(method name, function, http entrypoint)`` of every HTTP entrypoint, by name."""
    for name in sorted(dir(service_cls)):
        fn = getattr(service_cls, name, None)
        for entrypoint in sorted(getattr(fn, "nameko_entrypoints", ()),
                                 key=lambda e: (getattr(e, "url", ""), getattr(e, "method", ""))):
            if hasattr(entrypoint, "url") and hasattr(entrypoint, "method"):
                yield name, fn, entrypoint


def html_page(fn):
    """Mark an HTTP entrypoint as a page of the operator UI: HTML for people, not part of the
    REST API, so the OpenAPI document leaves it out on purpose."""
    fn.__html_page__ = True
    return fn


def documented_by(fn, url: str) -> str | None:
    """How a route is documented: ``"operation"`` (its metadata), ``"builtin"`` (described
    in :data:`BUILTIN`), ``"catch-all"``, ``"page"`` (an HTML page, see :func:`html_page`)
    or None (undocumented)."""
    if getattr(fn, "__openapi__", None) is not None:
        return "operation"
    if getattr(fn, "__html_page__", False):
        return "page"
    if url in BUILTIN:
        return "builtin"
    if url in CATCH_ALL:
        return "catch-all"
    return None


def build_spec(service_cls, version: str) -> dict:
    """The OpenAPI document of every described entrypoint of ``service_cls``."""
    return copy.deepcopy(_build_spec(service_cls, version))


@functools.lru_cache(maxsize=8)
def _build_spec(service_cls, version: str) -> dict:
    from crmhub.contracts.jsonschema import Converter

    converter = Converter(
        title="crmhub API", version=version,
        info={"description": DESCRIPTION,
              "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        tags=TAGS)
    spec = converter.spec
    spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer <key>`"})
    spec.components.schema("Error", {
        "type": "object", "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Machine-readable code",
                      "examples": ["invalid_input"]},
            "message": {"type": "string", "description": "What went wrong, for humans"},
            "details": {"type": "object", "additionalProperties": True,
                        "description": "More about the error, e.g. the invalid fields "
                                       "and their messages"},
        }})
    spec.components.header("X-Request-ID", {
        "description": "The request id (the one sent, or a new one)",
        "schema": {"type": "string"}})

    paths: dict[str, dict[str, dict]] = {}
    for name, fn, entrypoint in entrypoints(service_cls):
        url, methods = entrypoint.url, [m.strip().lower() for m in entrypoint.method.split(",")]
        how = documented_by(fn, url)
        if how == "operation":
            path, op = _operation(url, fn.__openapi__)
            for method in methods:
                paths.setdefault(path, {})[method] = dict(
                    op, operationId=name if len(methods) == 1 else f"{name}_{method}")
        elif how == "builtin":
            for path, ops in BUILTIN[url](url, name, methods).items():
                paths.setdefault(path, {}).update(ops)
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])

    document = spec.to_dict()
    # The components through the shared conversion: titles, descriptions, cross-field rules.
    document["components"]["schemas"] = dict(sorted(
        {**document["components"]["schemas"], **converter.components(strict=False)}.items()))
    return document


# -- REST operations --------------------------------------------------------------------------

def _path(url: str) -> tuple[str, list[dict]]:
    """The OpenAPI path of a werkzeug rule and its path parameters."""
    params = [{"name": arg, "in": "path", "required": True,
               "schema": dict(_CONVERTER_TYPES.get(conv or "", {"type": "string"}))}
              for conv, arg in _URL_ARG.findall(url)]
    return _URL_ARG.sub(r"{\2}", url), params


def _error(status: int, text: str | None = None) -> dict:
    return {"description": text or _ERROR_STATUS[status],
            "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _operation(url: str, meta: dict) -> tuple[str, dict]:
    from crmhub.contracts.auth import PERMISSIONS

    path, params = _path(url)
    op: dict = {"summary": meta.get("summary", ""), "tags": list(meta.get("tags", [])),
                "parameters": params}
    description = [meta["description"]] if meta.get("description") else []
    errors = {400} if (meta.get("query") or meta.get("request") or params) else set()
    errors |= set(meta.get("errors", ()))
    if params:
        errors.add(404)
    permission = meta.get("permission")
    if permission:
        roles = ", ".join(sorted(PERMISSIONS.get(permission, ()))) or "none"
        description.append(f"Needs the permission `{permission}` (roles: {roles}).")
        op["security"] = [{"bearer": []}]
        op["x-permission"] = permission
        errors |= {401, 403}
    else:
        op["security"] = []
    if description:
        op["description"] = "\n\n".join(description)
    if meta.get("query"):
        # apispec expands this into one query parameter per field of the schema.
        op["parameters"] = params + [{"in": "query", "schema": meta["query"]}]
    if meta.get("request"):
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": meta["request"]}}}
    status = int(meta.get("status", 200))
    success: dict = {"description": {201: "Created", 204: "No content"}.get(status, "OK"),
                     "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}}
    if status == 201:
        success["headers"]["Location"] = {"description": "URL of the new resource",
                                          "schema": {"type": "string"}}
    if meta.get("response"):
        success["content"] = {"application/json": {"schema": meta["response"]}}
    op["responses"] = {str(status): success}
    for code in sorted(errors):
        op["responses"][str(code)] = _error(code)
    op["responses"]["default"] = _error(500, "Any other error (502 upstream error, "
                                             "503 unavailable, 500 internal error)")
    return path, op


# -- routes described here --------------------------------------------------------------------

def _plain(summary: str, tag: str, response: dict, description: str = ""):
    def describe(url: str, name: str, methods: list[str]) -> dict:
        op = {"summary": summary, "tags": [tag], "security": [], "responses": {"200": {
            "description": "OK", **response,
            "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}}}}
        if description:
            op["description"] = description
        return {_path(url)[0]: {m: dict(op, operationId=name if len(methods) == 1 else f"{name}_{m}")
                                for m in methods}}

    return describe


def _webhooks(url: str, name: str, methods: list[str]) -> dict:
    """``/hooks/<path:rest>``: one generic description for every connector route."""
    connector = {"name": "connector", "in": "path", "required": True,
                 "schema": {"type": "string"},
                 "description": "Name of the connector plugin (`forms`, `tilda`, ...)"}
    route = {"name": "route", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The rest of the connector's route; may contain slashes "
                            "(e.g. a form slug)"}
    body = {"required": False, "content": {
        "application/json": {"schema": {}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}}}}
    responses = {
        "200": {"description": "Accepted: the events it produced are stored. The body is the "
                               "connector's answer (`{\"ok\": true}` unless the provider "
                               "expects something else)",
                "content": {"application/json": {"schema": {}},
                            "text/plain": {"schema": {"type": "string"}}}},
        "303": {"description": "Accepted, and the browser is sent on (a form's redirect)",
                "headers": {"Location": {"schema": {"type": "string"}}}},
        "400": _error(400, "Malformed payload (`bad_payload`)"),
        "401": _error(401, "Signature or secret missing or wrong (`unauthorized`)"),
        "403": _error(403, "Refused by the connector, e.g. origin not allowed (`forbidden`)"),
        "404": _error(404, "No loaded connector has this route (`not_found`)"),
        "405": _error(405, "The route does not accept this method (`method_not_allowed`)"),
        "413": _error(413, "Body too large (`payload_too_large`)"),
        "415": _error(415, "Content type not accepted (`unsupported_media_type`)"),
        "429": _error(429, "Rate limited (`too_many_requests`)"),
        "503": _error(503, "The event could not be stored, the provider should retry "
                           "(`unavailable`)"),
    }
    out = {}
    for path, params in (("/hooks/{connector}", [connector]),
                         ("/hooks/{connector}/{route}", [connector, route])):
        suffix = "_root" if path == "/hooks/{connector}" else ""
        out[path] = {}
        for method in methods:
            op = {"summary": "A webhook for a connector plugin", "tags": ["webhooks"],
                  "operationId": f"{name}{suffix}_{method}",
                  "description": "Verified, normalized into events and published by the "
                                 "connector `{connector}` (see `GET /api/v1/connectors` for "
                                 "the routes of each connector). No API key: the connector "
                                 "checks the provider's own signature or secret.",
                  "security": [], "parameters": params, "responses": responses}
            if method in ("post", "put", "patch"):
                op["requestBody"] = body
            out[path][method] = op
    return out


#: werkzeug rule -> ``describe(rule, method name, methods) -> {path: {method: operation}}``
#: for the routes that carry no :func:`operation` metadata.
BUILTIN = {
    "/health": _plain("Liveness of the gateway", "ops", {"content": {"application/json": {
        "schema": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["ok"]}, "service": {"type": "string"},
            "version": {"type": "string"}}}}}}),
    "/metrics": _plain("Prometheus metrics", "ops", {"content": {
        "text/plain": {"schema": {"type": "string"}}}}),
    "/api/v1/openapi.json": _plain("This OpenAPI document", "ops", {"content": {
        "application/json": {"schema": {"type": "object"}}}}, "No API key needed."),
    "/hooks/<path:rest>": _webhooks,
    "/hooks/1c/exchange": _plain(
        "The 1C exchange (CommerceML 2): catalog upload and orders", "webhooks",
        {"content": {"text/plain": {"schema": {"type": "string"}},
                     "application/xml": {"schema": {"type": "string"}}}},
        "1C drives it with `type` (`catalog`, `sale`) and `mode` (`checkauth` with HTTP Basic, "
        "`init`, `file` with the file as the body, `import`, `query`, `success`). Answers are "
        "text/plain in windows-1251: `success`, `progress` (ask again) or `failure` and a "
        "reason on the next line (with a 4xx status); `type=sale&mode=query` answers the open "
        "orders as a CommerceML document. See docs/onec.md."),
}
