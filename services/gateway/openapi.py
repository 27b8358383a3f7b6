"""OpenAPI 3 description of the REST API, generated from the marshmallow contracts."""
from __future__ import annotations


def operation(**meta):
    """Describe an HTTP entrypoint for the OpenAPI spec: ``summary``, ``tags``, ``query``
    (schema of the query string), ``request`` and ``response`` (body schemas), ``status``
    (success code), ``permission``."""

    def decorate(fn):
        fn.__openapi__ = meta
        return fn

    return decorate


def build_spec(service_cls, version: str) -> dict:
    """The OpenAPI document of every described entrypoint of ``service_cls``."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(title="crmhub API", version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name in dir(service_cls):
        fn = getattr(service_cls, name)
        meta = getattr(fn, "__openapi__", None)
        if meta is None:
            continue
        for entrypoint in getattr(fn, "nameko_entrypoints", ()):
            path, op = _operation(entrypoint.url, meta)
            for method in entrypoint.method.split(","):
                spec.path(path=path, operations={method.lower(): op})
    return spec.to_dict()


def _operation(url: str, meta: dict) -> tuple[str, dict]:
    import re

    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in re.findall(r"<(?:\w+:)?(\w+)>", url)]
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", url)
    op: dict = {"summary": meta.get("summary", ""), "tags": meta.get("tags", []),
                "security": [{"bearer": []}], "parameters": params}
    if meta.get("query"):
        op["parameters"] = params + [{"in": "query", "schema": meta["query"]}]
    if meta.get("request"):
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": meta["request"]}}}
    status = str(meta.get("status", 200))
    op["responses"] = {status: {"description": "OK"}}
    if meta.get("response"):
        op["responses"][status]["content"] = {"application/json": {"schema": meta["response"]}}
    for code, text in (("400", "Invalid input"), ("401", "Missing or unknown API key"),
                       ("403", "Role not allowed"), ("404", "Not found")):
        op["responses"][code] = {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    return path, op
