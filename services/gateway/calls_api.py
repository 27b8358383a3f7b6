"""Calls at the edge: the call log, click-to-call, recordings with HTTP Range, extensions, and
the incoming-call popup stream. The REST routes take bearer keys; the operator UI has its own
twins under /ui (its cookie session), as everywhere else in the UI."""
from __future__ import annotations

from urllib.parse import quote

from werkzeug.wrappers import Response

from crmhub.contracts import calls as schemas
from crmhub.contracts.auth import allowed
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from crmhub.services.gateway.auth import authenticate, presented_key, require
from crmhub.services.gateway.deals_api import query_args
from crmhub.services.gateway.http import http, json_body, json_response, refuse_unknown_args
from crmhub.services.gateway.openapi import operation
from crmhub.services.gateway.popups import PopupStream
from crmhub.services.gateway.ui import html_page, ui_json
from crmhub.services.telephony.recordings import (
    RangeNotSatisfiable,
    RecordingNotFound,
    content_range,
    parse_range,
)

STREAM_PARAMS = {"lines", "all"}


def _stream_for(request, principal) -> PopupStream:
    """Whose popups a stream shows: the manager's own extensions; supervisors may add lines
    (``lines=+74951234567,+74957654321``) or every line (``all=1``)."""
    refuse_unknown_args(request, STREAM_PARAMS)
    lines = frozenset(x.strip() for x in (request.args.get("lines") or "").split(",") if x.strip())
    every_line = request.args.get("all") in ("1", "true", "yes")
    if (lines or every_line) and not allowed(principal.role, "calls:supervise"):
        raise PermissionDenied(f"role {principal.role} may not watch lines: only its own "
                               "extensions' calls")
    return PopupStream(principal.name, lines, every_line)


class CallsApi:
    """HTTP entrypoints of telephony; mixed into GatewayService (which provides ``telephony``,
    ``popups``, ``recordings``, ``api_keys`` and ``_principal``)."""

    # -- the call log ----------------------------------------------------------------------------
    @http("GET", "/api/v1/calls")
    @operation(summary="The call log: newest first, by card, manager, status or outcome",
               tags=["calls"], query=schemas.CallQuerySchema, response=schemas.CallPageSchema,
               permission="calls:read")
    def list_calls(self, request):
        self._principal(request, "calls:read")
        return self.telephony.search_calls(query_args(request, schemas.CallQuerySchema))

    @http("POST", "/api/v1/calls")
    @operation(summary="Click-to-call: the PBX rings the manager's extension, then the client",
               tags=["calls"], status=201, request=schemas.PlaceCallSchema,
               response=schemas.CallSchema, permission="calls:place", errors=[502, 503],
               description="Without `extension` or `manager`, the caller's own extension rings "
                           "(the API key's name is the manager). The call is returned in status "
                           "`dialing` and follows the PBX's events from there. A PBX that "
                           "refuses answers 502, one that cannot be reached 503, each with the "
                           "PBX's reason in `message`.")
    def place_call(self, request):
        principal = self._principal(request, "calls:place")
        call = self.telephony.place_call(json_body(request), principal.name)
        return json_response(call, 201, {"Location": f"/api/v1/calls/{call['id']}"})

    @http("GET", "/api/v1/calls/stream")
    @operation(summary="The incoming-call popup stream (Server-Sent Events)", tags=["calls"],
               permission="calls:read",
               description="`call_ringing` when one of the caller's extensions rings, with the "
                           "client's card summary; then `call_answered`, `call_finished` or "
                           "`call_missed` of the calls shown. A `ready` event opens the stream; "
                           "a comment line every 15 s keeps it alive. Supervisors add "
                           "`lines=<DID>,…` or `all=1`.")
    def call_stream(self, request):
        principal = self._principal(request, "calls:read")
        return self.popups.response(request, _stream_for(request, principal))

    @http("GET", "/api/v1/calls/<string:call_id>")
    @operation(summary="A call with its legs and recording", tags=["calls"],
               response=schemas.CallSchema, permission="calls:read")
    def get_call(self, request, call_id):
        self._principal(request, "calls:read")
        return self.telephony.get_call(call_id)

    @http("GET", "/api/v1/calls/<string:call_id>/recording")
    @operation(summary="A call's recording (HTTP Range for seeking)", tags=["calls"],
               permission="calls:listen", errors=[416],
               description="The audio as the PBX recorded it; `Range: bytes=…` answers 206 with "
                           "that part.")
    def call_recording(self, request, call_id):
        self._principal(request, "calls:listen")
        return self._recording_response(request, call_id)

    def _recording_response(self, request, call_id) -> Response:
        info = self.telephony.recording_file(call_id)
        try:
            reader = self.recordings.open(info["key"])
        except RecordingNotFound:
            raise NotFound(f"the recording of call {call_id} is missing from the store "
                           "(is RECORDINGS_DIR shared with the telephony service?)") from None
        size = reader.size
        # The type came from the PBX's server: only audio plays inline, and never sniffed.
        content_type = reader.content_type or info["content_type"]
        playable = content_type.startswith("audio/")
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600",
                   "X-Content-Type-Options": "nosniff",
                   "Content-Disposition": f'{"inline" if playable else "attachment"}; '
                                          f'filename="call-{info["call_id"]}"'}
        try:
            wanted = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            reader.close()
            return json_response({"error": "range_not_satisfiable",
                                  "message": f"the recording has {size} bytes"}, 416,
                                 {**headers, "Content-Range": f"bytes */{size}"})
        start, end = wanted if wanted else (0, size - 1)
        if wanted:
            headers["Content-Range"] = content_range(start, end, size)
        response = Response(reader.read_range(start, end) if size else iter(()),
                            status=206 if wanted else 200, headers=headers,
                            content_type=content_type if playable else "application/octet-stream",
                            direct_passthrough=True)
        response.content_length = end - start + 1 if size else 0
        response.call_on_close(reader.close)
        return response

    # -- extensions ------------------------------------------------------------------------------
    @http("GET", "/api/v1/extensions")
    @operation(summary="Extensions and their managers", tags=["calls"],
               response=schemas.ExtensionListSchema, permission="calls:read")
    def list_extensions(self, request):
        self._principal(request, "calls:read")
        return self.telephony.list_extensions()

    @http("PUT", "/api/v1/extensions/<string:extension>")
    @operation(summary="Seat a manager at an extension", tags=["calls"],
               request=schemas.ExtensionInputSchema, response=schemas.ExtensionSchema,
               permission="telephony:configure")
    def put_extension(self, request, extension):
        self._principal(request, "telephony:configure")
        return self.telephony.put_extension(extension, json_body(request))

    @http("DELETE", "/api/v1/extensions/<string:extension>")
    @operation(summary="Free an extension", tags=["calls"], status=204,
               permission="telephony:configure")
    def delete_extension(self, request, extension):
        self._principal(request, "telephony:configure")
        self.telephony.delete_extension(extension)
        return Response(status=204)

    # -- the operator UI's twins (cookie session) ------------------------------------------------
    @http("GET", "/ui/calls/stream")
    @html_page
    def ui_call_stream(self, request):
        principal = authenticate(self.api_keys, presented_key(request, allow_cookie=True))
        require(principal, "calls:read")
        return self.popups.response(request, _stream_for(request, principal))

    @http("GET", "/ui/calls/<string:call_id>/recording")
    @html_page
    def ui_call_recording(self, request, call_id):
        principal = authenticate(self.api_keys, presented_key(request, allow_cookie=True))
        require(principal, "calls:listen")
        return self._recording_response(request, call_id)

    @http("POST", "/ui/calls")
    @html_page
    @ui_json("calls:place")
    def ui_place_call(self, request, principal):
        """The call button next to a phone on the card (ui.js): the operator's own extension
        rings, then the client's; an error comes back as the PBX's reason."""
        body = json_body(request)
        request_body = {key: body[key] for key in ("contact_id", "number", "extension")
                        if isinstance(body.get(key), str) and body[key]}
        call = self.telephony.place_call(request_body, principal.name)
        return {"call": {"id": call["id"], "status": call["status"],
                         "client_number": call["client_number"],
                         "extension": call["extension"]}}

    @http("POST", "/ui/contacts")
    @html_page
    @ui_json("contacts:write")
    def ui_create_caller_card(self, request, principal):
        """"Create a card" in the popup of an unknown number: a card with that phone (or the
        card that has it already, if another operator was quicker); answers its page."""
        phone = json_body(request).get("phone")
        if not isinstance(phone, str) or not phone.strip():
            raise InvalidInput("phone: give the caller's number", {"phone": ["required"]})
        found = self.contacts.search({"phone": phone, "limit": 1})["items"]
        if not found:
            try:
                found = [self.contacts.create({"phones": [phone], "source": {
                    "channel": "call", "connector": None, "form": None, "tracking": {}}})]
            except Conflict:  # created meanwhile
                found = self.contacts.search({"phone": phone, "limit": 1})["items"]
        return {"url": f"/contacts/{quote(found[0]['id'])}"}
