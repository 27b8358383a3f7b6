"""Dead letters at the edge, for operators who would rather not open a shell: the REST API
(``GET /api/v1/dead-letters``, ``POST /api/v1/dead-letters/replay``) and the ``/dead-letters``
page, both over the services' dead-letter queues as ``crmhub dlq list|replay`` sees them.

Listing leaves every message where it is; replaying sends it back to the queue it failed in.
"""
from __future__ import annotations

from werkzeug.utils import redirect

from crmhub.contracts import operations as schemas
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import InvalidInput
from crmhub.runtime.registry import SERVICES
from crmhub.services.gateway.http import http, json_body, refuse_unknown_args
from crmhub.services.gateway.openapi import html_page, operation
from crmhub.services.gateway.ui import render, ui_page

READ, REPLAY = "ops:read", "ops:replay"


def chosen_services(value: str | None) -> list[str]:
    if not value:
        return list(SERVICES)
    if value not in SERVICES:
        raise InvalidInput(f"service: one of {', '.join(SERVICES)}",
                           {"service": [f"Unknown service {value!r}."]})
    return [value]


def checked_replay(payload) -> dict:
    request = load_input(schemas.DeadLetterReplaySchema, payload)
    chosen_services(request["service"])
    return request


class DeadLettersApi:
    """Mixed into GatewayService, which provides ``dead_letters`` (crmhub.runtime.dlq behind a
    dependency) and ``_principal``."""

    @http("GET", "/api/v1/dead-letters")
    @operation(summary="Messages parked in the services' dead-letter queues (`?service=`)",
               tags=["operations"], response=schemas.DeadLetterListSchema, permission=READ)
    def list_dead_letters(self, request):
        self._principal(request, READ)
        refuse_unknown_args(request, ("service",))
        letters = self.dead_letters.list(chosen_services(request.args.get("service")))
        return instance(schemas.DeadLetterListSchema).dump(
            {"dead_letters": letters, "total": len(letters)})

    @http("POST", "/api/v1/dead-letters/replay")
    @operation(summary="Send dead letters back to the queue they failed in", tags=["operations"],
               request=schemas.DeadLetterReplaySchema,
               response=schemas.DeadLetterReplayResultSchema, permission=REPLAY,
               description="Name the messages (`message_ids`, as listed) or give `all: true`. "
                            "Fix what made them fail first: a message that fails again is "
                            "retried and parked again.")
    def replay_dead_letters(self, request):
        self._principal(request, REPLAY)
        wanted = checked_replay(json_body(request))
        replayed = self.dead_letters.replay(
            wanted["service"], None if wanted["all"] else wanted["message_ids"])
        return instance(schemas.DeadLetterReplayResultSchema).dump(
            {"service": wanted["service"], "replayed": replayed})

    # -- the page -------------------------------------------------------------------------------
    @http("GET", "/dead-letters")
    @html_page
    @ui_page(permission=READ)
    def ui_dead_letters(self, request, principal):
        service = request.args.get("service") or None
        letters = self.dead_letters.list(chosen_services(service))
        replayed = request.args.get("replayed")
        return render("dead_letters.html", principal=principal, nav="dead-letters",
                      letters=letters, services=list(SERVICES), service=service,
                      replayed=int(replayed) if (replayed or "").isdigit() else None)

    @http("POST", "/ui/dead-letters/replay")
    @html_page
    @ui_page(permission=REPLAY)
    def ui_replay_dead_letters(self, request, principal):
        form = request.form
        wanted = checked_replay({"service": form.get("service", ""),
                                 "message_ids": form.getlist("message_id") or None,
                                 "all": form.get("all") == "true"})
        replayed = self.dead_letters.replay(
            wanted["service"], None if wanted["all"] else wanted["message_ids"])
        return redirect(f"/dead-letters?replayed={replayed}", 303)
