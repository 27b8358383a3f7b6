"""The operator web UI, served by the gateway at ``/``: sign in with an API key, search client
cards, read a card with its timeline (the sales funnel's pages are in ui_deals.py).

Pages are rendered on the server (Jinja, autoescaped). A little JavaScript adds search as you
type and times in the browser's zone; every page works without it.
The key is kept in an HttpOnly, SameSite=Strict cookie that only these pages read: the REST API
takes bearer keys alone, so another site cannot use the cookie against it. A form posted to a
page, and a write to a JSON endpoint of ui.js, must also name this site as its Origin.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import phonenumbers
import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from nameko.exceptions import RemoteError
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from crmhub.contracts.auth import allowed
from crmhub.contracts.errors import CrmhubError, InvalidInput, PermissionDenied, Unauthenticated
from crmhub.contracts.tracking import TRACKING_KEYS
from crmhub.services.gateway.auth import SESSION_COOKIE, authenticate, presented_key, require
from crmhub.services.gateway.http import http, json_response
from crmhub.services.gateway.openapi import html_page

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 25
# A key left in a shared call-center browser should not outlive a shift.
SESSION_SECONDS = 12 * 3600
PERMISSION = "contacts:read"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
PAGE_HEADERS = {
    # Only our own stylesheet and script: injected markup could not run or load anything.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; media-src 'self'; connect-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Client data must not stay in shared caches after the operator logs out.
    "Cache-Control": "no-store",
}
TRACKING_LABELS = {
    "utm_source": "UTM source", "utm_medium": "UTM medium", "utm_campaign": "UTM campaign",
    "utm_content": "UTM content", "utm_term": "UTM term", "utm_id": "UTM id",
    "yclid": "Yandex click id", "gclid": "Google click id", "fbclid": "Facebook click id",
    "_ym_uid": "Metrika client id", "_ga": "Google Analytics id", "roistat": "Roistat visit",
    "referer": "Referer", "page_url": "Page",
}
# Only phone characters and enough digits for a whole number: worth an exact phone lookup,
# which finds "8 916 123-45-67" stored as "+7 (916) 1234567".
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-]+")


# -- rendering ---------------------------------------------------------------------------------

def pretty_phone(phone: dict) -> str:
    """``+7 916 123-45-67`` for a valid number, the text as given otherwise."""
    if phone.get("e164"):
        try:
            text = phonenumbers.format_number(phonenumbers.parse(phone["e164"]),
                                              phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        except phonenumbers.NumberParseException:
            text = phone["e164"]
    else:
        text = phone.get("raw") or ""
    return f"{text} ext. {phone['extension']}" if phone.get("extension") else text


def card_title(contact: dict) -> str:
    if contact.get("name") or contact.get("company"):
        return contact.get("name") or contact["company"]
    if contact.get("phones"):
        return pretty_phone(contact["phones"][0])
    return (contact.get("emails") or ["Client without a name"])[0]


def parse_time(value) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return None


def time_tag(value, date_only: bool = False):
    """A ``<time>`` in UTC; ui.js rewrites it in the operator's own time zone."""
    when = parse_time(value)
    if when is None:
        return escape(value or "")
    when = when.astimezone(dt.timezone.utc)
    text = when.strftime("%Y-%m-%d") if date_only else when.strftime("%Y-%m-%d %H:%M UTC")
    style = "date" if date_only else "datetime"
    return Markup('<time datetime="{}" data-local="{}">{}</time>').format(
        when.isoformat(), style, text)


def tracking_items(tracking: dict | None) -> list[tuple[str, str]]:
    """(label, value) of the tracking keys that have a value, in a fixed order."""
    tracking = tracking or {}
    keys = [k for k in TRACKING_KEYS if k in tracking] + sorted(set(tracking) - set(TRACKING_KEYS))
    return [(TRACKING_LABELS.get(k, k), str(tracking[k])) for k in keys if tracking[k]]


def source_facts(source: dict) -> list[tuple[str, str]]:
    """Where the client first came from: channel, connector, form, then tracking."""
    facts = [("Channel", source.get("channel")), ("Connector", source.get("connector")),
             ("Form", source.get("form"))]
    return [(k, v) for k, v in facts if v] + tracking_items(source.get("tracking"))


def form_facts(data: dict) -> list[tuple[str, str]]:
    """A form submission of the timeline: the form, who the client said they are, tracking."""
    form, name = data.get("form"), data.get("form_name") or data.get("form")
    given = data.get("contact") or {}
    facts = [("Form", f"{name} ({form})" if form and form != name else name),
             ("Connector", data.get("connector")),
             ("Name given", given.get("name")), ("Company given", given.get("company")),
             ("Phones given", ", ".join(given.get("phones") or [])),
             ("Emails given", ", ".join(given.get("emails") or []))]
    return [(k, v) for k, v in facts if v] + tracking_items(data.get("tracking"))


def allowed_to(principal, permission: str) -> bool:
    """In a template: whether the signed-in user may do it (buttons they may not use are not shown)."""
    return principal is not None and allowed(principal.role, permission)


def duration_text(seconds) -> str:
    seconds = int(seconds or 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def call_facts(data: dict) -> list[tuple[str, str]]:
    """What a call's timeline entry shows, in the order an operator reads it."""
    facts = [("Direction", data.get("direction")), ("Outcome", data.get("outcome")),
             ("Talk time", duration_text(data["duration_s"]) if data.get("duration_s") else None),
             ("Manager", data.get("manager")),
             ("Extension", data.get("extension")), ("Line", data.get("line")),
             ("Reason", data.get("cause") if data.get("outcome") != "answered" else None)]
    return [(label, str(value)) for label, value in facts if value]


def plain(value) -> str:
    """A value of a timeline entry as text: nested data as compact JSON."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


@functools.lru_cache(maxsize=1)
def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every file under static/, read once: ``{name: (content, version)}``."""
    files = {}
    for path in (HERE / "static").iterdir():
        if path.suffix in STATIC_TYPES and path.is_file():
            content = path.read_bytes()
            files[path.name] = (content, hashlib.sha256(content).hexdigest()[:12])
    return files


def static_file(name: str) -> tuple[bytes, str] | None:
    """(content, version) of a file under static/; None for any other name."""
    return _static_files().get(name)


def static_url(name: str) -> str:
    found = static_file(name)
    return f"/static/{name}?v={found[1]}" if found else f"/static/{name}"


TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"], default=True),
                        trim_blocks=True, lstrip_blocks=True)
TEMPLATES.globals.update(static_url=static_url, card_title=card_title, source_facts=source_facts,
                         form_facts=form_facts, call_facts=call_facts, may=allowed_to)
TEMPLATES.filters.update(phone=pretty_phone, time=time_tag, plain=plain)


def render(template: str, status: int = 200, **context) -> Response:
    html = TEMPLATES.get_template(template).render(**context)
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers.update(PAGE_HEADERS)
    return response


def error_page(status: int, message: str, principal=None) -> Response:
    return render("error.html", status, principal=principal, code=status, message=message)


# -- sessions ----------------------------------------------------------------------------------

def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only. ``//evil.example``,
    ``https://evil.example`` and ``/\\evil.example`` (browsers read a backslash as a slash,
    and drop tabs and newlines) would all leave it."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return value


def _here(request) -> str:
    query = request.query_string.decode("latin-1")
    return quote(request.path) + (f"?{query}" if query else "")


def _to_login(request) -> Response:
    # After signing in, a posted form cannot be replayed: go back to the page it came from.
    here = _here(request) if request.method == "GET" else safe_next(request.form.get("next"))
    response = redirect("/login" if here == "/" else "/login?" + urlencode({"next": here}), 303)
    if SESSION_COOKIE in request.cookies:  # a key that no longer works
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _cross_site(request) -> bool:
    """A form posted from another site: browsers name the page's origin on every POST."""
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def ui_page(fn=None, *, permission: str = PERMISSION):
    """A UI page: signed-in operators only (others go to /login), HTML for every error.
    ``@ui_page(permission=...)`` for a page that needs more than reading cards. A form posted
    to it from another site is refused."""
    if fn is None:
        return functools.partial(ui_page, permission=permission)

    @functools.wraps(fn)
    def handler(self, request, **kwargs):
        try:
            principal = authenticate(self.api_keys, presented_key(request, allow_cookie=True))
        except Unauthenticated:
            return _to_login(request)
        try:
            require(principal, permission)
            if request.method != "GET" and _cross_site(request):
                raise PermissionDenied("Send this form from this site's own pages.")
            return fn(self, request, principal, **kwargs)
        except CrmhubError as exc:
            return error_page(exc.status, exc.message, principal)
        except RemoteError as exc:
            log.error("downstream service failed", error=str(exc))
            return error_page(502, "A service of the hub failed. Try again in a moment.",
                              principal)
        except Exception:  # noqa: BLE001 - an operator gets a page, the log gets the trace
            log.exception("operator page failed")
            return error_page(500, "Something went wrong on our side.", principal)

    return handler


def ui_json(permission: str):
    """A JSON endpoint that ui.js calls from the pages: the page's cookie session (or a bearer
    key), answers and errors as JSON (401 once the session ended: the script then stops or
    sends the operator to sign in). A write must come from this site's pages: its Origin is
    checked and its body must be JSON, which a form on another site cannot send (a script
    there would need a CORS preflight, which the gateway never grants)."""

    def decorate(fn):
        @functools.wraps(fn)
        def handler(self, request, **kwargs):
            principal = authenticate(self.api_keys, presented_key(request, allow_cookie=True))
            require(principal, permission)
            if request.method != "GET" and (_cross_site(request)
                                            or request.mimetype != "application/json"):
                raise PermissionDenied("send this from the operator UI's own pages")
            body = fn(self, request, principal, **kwargs)
            return body if isinstance(body, Response) else json_response(
                body, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

        return handler

    return decorate


def _page_number(value) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


# -- pages -------------------------------------------------------------------------------------

class OperatorUi:
    """HTTP entrypoints of the operator UI; mixed into GatewayService.

    Marked ``@html_page``: they are for people, not part of the REST API's OpenAPI document.
    """

    @http("GET", "/login")
    @html_page
    def ui_login_form(self, request):
        next_path = safe_next(request.args.get("next"))
        try:
            authenticate(self.api_keys, presented_key(request, allow_cookie=True))
        except Unauthenticated:
            return render("login.html", next=next_path)
        return redirect(next_path, 303)  # signed in already

    @http("POST", "/login")
    @html_page
    def ui_login(self, request):
        next_path = safe_next(request.form.get("next"))
        if _cross_site(request):
            return render("login.html", 403, next=next_path,
                          error="Sign in from this site's own page.")
        key = (request.form.get("key") or "").strip()
        try:
            principal = authenticate(self.api_keys, key)
            require(principal, PERMISSION)
        except Unauthenticated:
            error = "This API key is not valid." if key else "Enter your API key."
            return render("login.html", 401, next=next_path, error=error)
        except PermissionDenied:
            return render("login.html", 403, next=next_path,
                          error="This API key may not read client cards.")
        log.info("operator signed in", operator=principal.name, role=principal.role)
        response = redirect(next_path, 303)
        response.set_cookie(SESSION_COOKIE, key, max_age=SESSION_SECONDS, path="/",
                            httponly=True, samesite="Strict", secure=request.is_secure)
        return response

    @http("GET,POST", "/logout")
    @html_page
    def ui_logout(self, request):
        response = redirect("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                               secure=request.is_secure)
        return response

    @http("GET", "/")
    @html_page
    @ui_page
    def ui_search(self, request, principal):
        q = (request.args.get("q") or "").strip()[:200]
        number = _page_number(request.args.get("page"))
        found = self._ui_find(q, (number - 1) * PAGE_SIZE)
        total, shown = found["total"], len(found["items"])
        first = (number - 1) * PAGE_SIZE + 1

        def link(n):
            return "/?" + urlencode({k: v for k, v in (("q", q), ("page", n)) if v and v != 1})

        pager = {"first": first, "last": first + shown - 1, "total": total,
                 "prev": link(number - 1) if number > 1 else None,
                 "next": link(number + 1) if first + shown - 1 < total else None,
                 "restart": link(1) if not shown and number > 1 else None}
        return render("search.html", principal=principal, q=q, contacts=found["items"],
                      pager=pager, live_search=True, nav="clients")

    def _ui_find(self, q: str, offset: int) -> dict:
        query = {"limit": PAGE_SIZE, "offset": offset}
        if _PHONE_LIKE.fullmatch(q) and len(re.sub(r"\D", "", q)) >= 7:
            try:
                found = self.contacts.search({**query, "phone": q})
            except InvalidInput:  # not a whole number: a fragment, matched as text below
                found = None
            if found and found["total"]:
                return found
        return self.contacts.search({**query, "q": q or None})

    @http("GET", "/contacts/<string:contact_id>")
    @html_page
    @ui_page
    def ui_card(self, request, principal, contact_id):
        card = self.contacts.get(contact_id)
        if card["id"] != contact_id:
            # A merged id: show the surviving card at its own address.
            return redirect(f"/contacts/{quote(card['id'])}?"
                            + urlencode({"merged_from": contact_id}), 302)
        merged_from = request.args.get("merged_from")
        # The timeline comes newest first (CardSchema); deals and tasks: SalesUi.
        return render("card.html", principal=principal, card=card, timeline=card["timeline"],
                      merged_from=merged_from if merged_from in card["merged_ids"] else None,
                      nav="clients", **self._ui_card_sales(principal, card["id"]),
                      messenger=self._ui_card_conversations(principal, card),
                      emails=self._ui_card_emails(principal, card))

    @http("GET", "/static/<string:name>")
    @html_page
    def ui_static(self, request, name):
        found = static_file(name)
        if found is None:
            return error_page(404, "No such file.")
        content, version = found
        response = Response(content, content_type=STATIC_TYPES[Path(name).suffix])
        # Pages ask for /static/<name>?v=<content hash>: a new version is a new URL.
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if request.args.get("v") == version
            else "no-cache")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
