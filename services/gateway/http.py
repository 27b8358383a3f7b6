"""The gateway's HTTP entrypoint: request ids, body limits and JSON errors."""
from __future__ import annotations

import contextlib
import json
import logging
import socket
from functools import partial

import structlog
from eventlet.event import Event
from marshmallow import ValidationError
from nameko.exceptions import RemoteError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response

from crmhub.contracts.base import new_hex_id
from crmhub.contracts.errors import CrmhubError, InvalidInput
from crmhub.plugins.api import WebhookError
from crmhub.runtime.messaging import PublishError
from crmhub.runtime.metrics import HTTP_REQUESTS

log = structlog.get_logger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                    headers=headers, content_type="application/json; charset=utf-8")


def error_body(status: int, code: str, message: str, details=None) -> Response:
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return json_response(body, status)


def refuse_unknown_args(request, known) -> None:
    """A query parameter the route does not take is a 400 naming it: a misspelt filter must
    not silently widen the answer."""
    unknown = sorted(set(request.args) - set(known))
    if unknown:
        raise InvalidInput(f"unknown query parameter(s): {', '.join(unknown)}",
                           {name: ["Unknown field."] for name in unknown})


def json_body(request) -> dict:
    """The request's JSON object body (``{}`` when empty); InvalidInput otherwise."""
    data = request.get_data(cache=True)
    if not data:
        return {}
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object")
    return body


def _request_id(request) -> str:
    given = (request.headers.get(REQUEST_ID_HEADER) or "").strip()
    return given[:100] if given and given.isprintable() else new_hex_id()


class NoDelayWebServer(WebServer):
    """nameko's web server with Nagle's algorithm off on every connection. eventlet's wsgi
    writes the headers, then a body too big for its 16 KiB buffer, as two segments; with
    Nagle on, the body waits for the client's ACK of the headers, which a client delays by up
    to 40 ms: a 20-60 KB answer (a pipeline board) took 60 ms instead of 13."""

    def process_request(self, sock, address):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().process_request(sock, address)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # eventlet formats an access line per request before the logger drops it (nameko's
        # loggers log warnings only, unless LOG_LEVEL is DEBUG): format it only if it shows.
        server.log_output = server.log.isEnabledFor(logging.INFO)
        return server


class JsonHttpHandler(HttpRequestHandler):
    """Like nameko's ``@http``, plus: the request id enters the worker context (and so every
    RPC and event downstream), bodies are capped at ``MAX_BODY_BYTES``, errors are JSON."""

    server = NoDelayWebServer()

    def __init__(self, method, url, body_limit=None, **kwargs):
        """``body_limit``: a function of the config giving this route's own cap (an upload
        route takes larger bodies than the API)."""
        kwargs.setdefault("expected_exceptions", (CrmhubError, WebhookError, ValidationError))
        self.body_limit = body_limit
        super().__init__(method, url, **kwargs)

    def max_body(self) -> int:
        config = self.container.config
        if self.body_limit is not None:
            return int(self.body_limit(config))
        return int(config.get("MAX_BODY_BYTES", 1048576))

    def handle_request(self, request):
        request.shallow = False
        request.max_content_length = self.max_body()
        request_id = _request_id(request)
        try:
            if (request.content_length or 0) > request.max_content_length:
                raise RequestEntityTooLarge()
            # No check_signature: the URL rule already fixes the arguments, and inspecting the
            # method on every request costs more than the rest of routing.
            args, kwargs = self.get_entrypoint_parameters(request)
            done = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data={"request_id": request_id},
                handle_result=partial(self.handle_result, done))
            response = self.response_from_result(done.wait())
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON answer
            response = self.response_from_exception(exc)
        response.headers[REQUEST_ID_HEADER] = request_id
        HTTP_REQUESTS.labels(self.method_name, request.method, str(response.status_code)).inc()
        # werkzeug files the request in its own environ: a cycle (with the body stream and the
        # headers) the garbage collector alone would free, for every request.
        request.environ.pop("werkzeug.request", None)
        return response

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        if isinstance(result, (dict, list)):
            return json_response(result)
        return super().response_from_result(result)

    def response_from_exception(self, exc):
        if isinstance(exc, CrmhubError):
            return json_response(exc.to_json(), exc.status)
        if isinstance(exc, WebhookError):
            return error_body(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, ValidationError):
            return error_body(400, "invalid_input", "invalid input", exc.messages)
        if isinstance(exc, RequestEntityTooLarge):
            return error_body(413, "payload_too_large", f"body larger than {self.max_body()} bytes")
        if isinstance(exc, HTTPException):
            return error_body(exc.code or 400, "http_error", exc.description or exc.name)
        if isinstance(exc, PublishError):
            log.error("event not accepted by the broker", error=str(exc))
            return error_body(503, "unavailable", "could not store the event, retry later")
        if isinstance(exc, RemoteError):
            log.error("downstream service failed", error=str(exc))
            return error_body(502, "upstream_error", "a downstream service failed")
        log.error("unhandled error", exc_info=exc)
        return error_body(500, "internal_error", "internal error")


http = JsonHttpHandler.decorator
