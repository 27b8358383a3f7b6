"""/api/v1/openapi.json: a valid OpenAPI document that documents every route of the gateway."""
import json
import warnings

import pytest
from openapi_spec_validator import validate

from crmhub.contracts import contacts
from crmhub.services.gateway import openapi
from crmhub.services.gateway.service import GatewayService

ROUTES = list(openapi.entrypoints(GatewayService))
API_ROUTES = [r for r in ROUTES if r[2].url.startswith("/api/v1/")]


def route_ids(routes):
    return [f"{ep.method} {ep.url}" for _, _, ep in routes]


@pytest.fixture(scope="module")
def spec():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # apispec warns about renamed schemas
        return openapi.build_spec(GatewayService, "9.8.7")


def openapi_path(url: str) -> str:
    return openapi._path(url)[0]


def test_spec_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["version"] == "9.8.7"
    assert spec["info"]["description"].strip()
    json.dumps(spec)  # plain JSON, as served


def test_the_gateway_has_routes_to_check():
    assert len(API_ROUTES) >= 6 and len(ROUTES) > len(API_ROUTES)


@pytest.mark.parametrize("name, fn, entrypoint", API_ROUTES, ids=route_ids(API_ROUTES))
def test_every_api_route_carries_operation_metadata(name, fn, entrypoint):
    """Add ``@operation(...)`` under the ``@http`` of a new /api/v1 route."""
    how = openapi.documented_by(fn, entrypoint.url)
    assert how in ("operation", "builtin"), (
        f"{entrypoint.method} {entrypoint.url} ({name}) has no @operation(...) metadata")
    if how == "builtin":  # only the document itself may describe itself
        assert entrypoint.url == "/api/v1/openapi.json"


@pytest.mark.parametrize("name, fn, entrypoint", ROUTES, ids=route_ids(ROUTES))
def test_every_route_is_in_the_spec(name, fn, entrypoint, spec):
    if entrypoint.url in openapi.CATCH_ALL:
        assert openapi_path(entrypoint.url) not in spec["paths"]
        return
    how = openapi.documented_by(fn, entrypoint.url)
    assert how, f"{entrypoint.url} is undocumented"
    if how == "page":  # the operator UI's HTML pages are not REST resources
        assert not entrypoint.url.startswith("/api/"), entrypoint.url
        assert openapi_path(entrypoint.url) not in spec["paths"]
        return
    methods = {m.strip().lower() for m in entrypoint.method.split(",")}
    if entrypoint.url == "/hooks/<path:rest>":
        paths = ["/hooks/{connector}", "/hooks/{connector}/{route}"]
    else:
        paths = [openapi_path(entrypoint.url)]
    for path in paths:
        assert methods <= set(spec["paths"][path]), (path, methods)


def test_a_route_without_metadata_is_detected():
    from crmhub.services.gateway.http import http

    class Extended(GatewayService):
        @http("GET", "/api/v1/secrets")
        def secrets(self, request):
            return {}

    undocumented = [ep.url for _, fn, ep in openapi.entrypoints(Extended)
                    if openapi.documented_by(fn, ep.url) is None]
    assert undocumented == ["/api/v1/secrets"]
    assert "/api/v1/secrets" not in openapi.build_spec(Extended, "1")["paths"]


def test_contact_schemas_are_components(spec):
    schemas = spec["components"]["schemas"]
    for cls in (contacts.ContactSchema, contacts.CardSchema, contacts.ContactInputSchema,
                contacts.ContactPatchSchema, contacts.MergeSchema, contacts.ContactPageSchema,
                contacts.PhoneSchema, contacts.TimelineEntrySchema):
        assert cls.__name__.removesuffix("Schema") in schemas
    assert schemas["Contact"]["additionalProperties"] is False
    assert schemas["Contact"]["properties"]["kind"]["enum"] == ["person", "company"]
    assert schemas["Error"]["required"] == ["error", "message"]
    assert schemas["Error"]["properties"]["details"]["type"] == "object"


def test_query_parameters_are_expanded_one_per_field(spec):
    params = {p["name"]: p for p in spec["paths"]["/api/v1/contacts"]["get"]["parameters"]}
    assert set(params) == {"q", "phone", "limit", "offset"}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert params["limit"]["schema"]["maximum"] == 500


def test_bodies_statuses_and_security(spec):
    security = spec["components"]["securitySchemes"]["bearer"]
    assert (security["type"], security["scheme"]) == ("http", "bearer")
    create = spec["paths"]["/api/v1/contacts"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ContactInput"}
    assert "201" in create["responses"] and "200" not in create["responses"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Card"}
    assert "Location" in create["responses"]["201"]["headers"]
    assert create["security"] == [{"bearer": []}]
    assert create["x-permission"] == "contacts:write"
    for code in ("400", "401", "403"):
        assert create["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
    get = spec["paths"]["/api/v1/contacts/{contact_id}"]["get"]
    assert get["parameters"] == [{"name": "contact_id", "in": "path", "required": True,
                                  "schema": {"type": "string"}}]
    assert "404" in get["responses"]
    assert spec["paths"]["/health"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_webhooks_are_documented_generically(spec):
    for path in ("/hooks/{connector}", "/hooks/{connector}/{route}"):
        post = spec["paths"][path]["post"]
        assert post["security"] == []
        assert post["tags"] == ["webhooks"]
        assert {"200", "401", "404", "503"} <= set(post["responses"])
    assert "requestBody" not in spec["paths"]["/hooks/{connector}"]["get"]


def test_operation_ids_are_unique(spec):
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_spec_is_built_once_and_handed_out_as_copies():
    first = openapi.build_spec(GatewayService, "1")
    first["paths"].clear()
    assert openapi.build_spec(GatewayService, "1")["paths"]
