"""The operator UI's pages without a browser or a broker: a gateway worker (worker_factory) with
a stand-in contacts service, fed werkzeug requests."""
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.services.gateway import openapi, ui
from crmhub.services.gateway.auth import SESSION_COOKIE
from crmhub.services.gateway.service import GatewayService

KEYS = {"op-key": {"name": "Olga", "role": "operator"},
        "admin-key": {"name": "Admin", "role": "admin"},
        "odd-key": {"name": "Nobody", "role": "nobody"}}
NOW = "2026-11-23T15:04:05+00:00"


def contact(**fields):
    return {"id": "c1", "kind": "person", "name": "Мария Иванова", "company": None,
            "phones": [{"e164": "+79161234567", "raw": "8 (916) 123-45-67", "extension": None}],
            "emails": ["maria@example.com"], "source": None, "manager": None, "tags": [],
            "custom_fields": {}, "created_at": NOW, "updated_at": NOW, "merged_ids": [],
            **fields}


def page_of(*contacts, total=None):
    return {"items": list(contacts), "total": len(contacts) if total is None else total,
            "limit": ui.PAGE_SIZE, "offset": 0}


@pytest.fixture
def gateway():
    worker = worker_factory(GatewayService, api_keys=KEYS)
    worker.contacts.search.return_value = page_of()
    # The card also shows the client's deals and tasks (test_ui_deals.py tests them).
    worker.deals.search_deals.return_value = {"items": [], "total": 0, "limit": 50, "offset": 0}
    worker.deals.search_tasks.return_value = {"items": [], "total": 0, "limit": 100, "offset": 0}
    return worker


def request(path="/", method="GET", key=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if key:
        headers["Cookie"] = f"{SESSION_COOKIE}={key}"
    return EnvironBuilder(path=path, method=method, headers=headers, **kwargs).get_request()


def html(response) -> str:
    assert response.content_type == "text/html; charset=utf-8"
    return response.get_data(as_text=True)


# -- routes ---------------------------------------------------------------------------------

def test_ui_routes_win_over_the_catch_all():
    rules = Map([Rule(ep.url, methods=ep.method.split(","), endpoint=name)
                 for name, _, ep in openapi.entrypoints(GatewayService)]).bind("hub")
    assert rules.match("/", "GET")[0] == "ui_search"
    assert rules.match("/login", "GET")[0] == "ui_login_form"
    assert rules.match("/login", "POST")[0] == "ui_login"
    assert rules.match("/logout", "POST")[0] == "ui_logout"
    assert rules.match("/contacts/abc", "GET") == ("ui_card", {"contact_id": "abc"})
    assert rules.match("/static/ui.css", "GET")[0] == "ui_static"
    assert rules.match("/contacts/a/b", "GET")[0] == "not_found"
    assert rules.match("/api/v1/contacts/abc", "GET")[0] == "get_contact"


# -- signing in and out -----------------------------------------------------------------------

def test_login_sets_a_strict_httponly_cookie_and_goes_on(gateway):
    response = gateway.ui_login(request("/login", "POST",
                                        data={"key": "op-key", "next": "/contacts/c1?x=1"}))
    assert response.status_code == 303
    assert response.headers["Location"] == "/contacts/c1?x=1"
    [header] = response.headers.getlist("Set-Cookie")
    cookie = SimpleCookie(header)[SESSION_COOKIE]
    assert cookie.value == "op-key"
    assert cookie["httponly"] and cookie["path"] == "/"
    assert cookie["samesite"] == "Strict"
    assert int(cookie["max-age"]) == ui.SESSION_SECONDS


@pytest.mark.parametrize("key, status, message", [
    ("wrong", 401, "not valid"), ("", 401, "Enter your API key"),
    ("odd-key", 403, "may not read client cards")])
def test_a_bad_key_shows_the_form_again(gateway, key, status, message):
    response = gateway.ui_login(request("/login", "POST", data={"key": key, "next": "/x"}))
    assert response.status_code == status
    body = html(response)
    assert message in body and 'name="next" value="/x"' in body
    assert "Set-Cookie" not in response.headers


def test_login_from_another_site_is_refused(gateway):
    response = gateway.ui_login(request("/login", "POST", data={"key": "op-key"},
                                        headers={"Origin": "https://evil.example"}))
    assert response.status_code == 403 and "Set-Cookie" not in response.headers
    same_site = gateway.ui_login(request("/login", "POST", data={"key": "op-key"},
                                         headers={"Origin": "http://localhost"}))
    assert same_site.status_code == 303


@pytest.mark.parametrize("target", [
    "//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example",
    "javascript:alert(1)", "evil.example", "", "/login", "/logout"])
def test_login_never_sends_the_operator_off_site(gateway, target):
    response = gateway.ui_login(request("/login", "POST", data={"key": "op-key", "next": target}))
    assert response.headers["Location"] == "/"


def test_a_signed_in_visit_to_the_form_goes_on(gateway):
    response = gateway.ui_login_form(request("/login?next=/contacts/c1", key="op-key"))
    assert (response.status_code, response.headers["Location"]) == (303, "/contacts/c1")
    assert 'type="password"' in html(gateway.ui_login_form(request("/login")))


def test_logout_forgets_the_cookie(gateway):
    response = gateway.ui_logout(request("/logout", "POST", key="op-key"))
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    cookie = SimpleCookie(response.headers["Set-Cookie"])[SESSION_COOKIE]
    assert cookie.value == "" and cookie["max-age"] == "0"


def test_pages_send_strangers_to_the_login_with_their_way_back(gateway):
    response = gateway.ui_card(request("/contacts/c1?merged_from=x"), contact_id="c1")
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/contacts/c1?merged_from=x"]}
    assert gateway.ui_search(request("/")).headers["Location"] == "/login"
    stale = gateway.ui_search(request("/", key="revoked-key"))
    assert stale.headers["Location"] == "/login" and "Set-Cookie" in stale.headers
    gateway.contacts.get.assert_not_called()


def test_the_rest_api_does_not_take_the_cookie(gateway):
    from crmhub.contracts.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        gateway.list_contacts(request("/api/v1/contacts", key="op-key"))


# -- search -----------------------------------------------------------------------------------

def test_search_lists_cards_and_escapes_what_clients_typed(gateway):
    gateway.contacts.search.return_value = page_of(
        contact(name="<script>alert(1)</script>", company="ООО «Ромашка»", manager="olga"))
    response = gateway.ui_search(request("/?q=script", key="op-key"))
    body = html(response)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body
    assert "ООО «Ромашка»" in body and "+7 916 123-45-67" in body and "maria@example.com" in body
    assert 'href="/contacts/c1"' in body and "Olga" in body
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    gateway.contacts.search.assert_called_once_with({"limit": ui.PAGE_SIZE, "offset": 0,
                                                     "q": "script"})


def test_a_phone_in_any_format_is_looked_up_as_a_number(gateway):
    gateway.contacts.search.side_effect = [page_of(contact())]
    body = html(gateway.ui_search(request("/?q=8 916 123-45-67", key="op-key")))
    assert "Мария Иванова" in body
    gateway.contacts.search.assert_called_once_with({"limit": ui.PAGE_SIZE, "offset": 0,
                                                     "phone": "8 916 123-45-67"})


def test_a_phone_fragment_falls_back_to_the_text_search(gateway):
    gateway.contacts.search.side_effect = [InvalidInput("not a phone"), page_of(contact())]
    assert "Мария Иванова" in html(gateway.ui_search(request("/?q=916 123 45", key="op-key")))
    assert gateway.contacts.search.call_args.args[0]["q"] == "916 123 45"


def test_search_pages(gateway):
    gateway.contacts.search.return_value = {**page_of(*[contact(id=f"c{i}") for i in range(25)],
                                                      total=60), "offset": 25}
    body = html(gateway.ui_search(request("/?q=ivan&page=2", key="op-key")))
    assert "26–50 of 60" in body
    assert 'href="/?q=ivan"' in body and 'href="/?q=ivan&amp;page=3"' in body
    assert gateway.contacts.search.call_args.args[0]["offset"] == 25
    gateway.ui_search(request("/?page=nonsense", key="op-key"))
    assert gateway.contacts.search.call_args.args[0]["offset"] == 0


# -- the card ---------------------------------------------------------------------------------

def form_entry():
    return {"id": 7, "contact_id": "c1", "kind": "form_submitted", "occurred_at": NOW,
            "title": "Form «Contact us» submitted", "source_key": "form:forms:1",
            "data": {"connector": "forms", "form": "contact-us", "form_name": "Contact us",
                     "message": "Перезвоните после 18:00\n<b>срочно</b>",
                     "fields": {"name": "Мария", "comment": "Перезвоните"},
                     "tracking": {"utm_source": "yandex", "utm_campaign": "winter",
                                  "page_url": "javascript:alert(1)"},
                     "contact": {"name": "Мария", "phones": ["8 (916) 123-45-67"]}}}


def test_the_card_shows_contacts_source_and_timeline(gateway):
    gateway.contacts.get.return_value = contact(
        company="Ромашка", manager="olga", tags=["vip"], custom_fields={"inn": "7701"},
        source={"channel": "form", "connector": "forms", "form": "contact-us",
                "tracking": {"utm_source": "yandex"}},
        timeline=[form_entry(),  # newest first, as the contacts service sends it
                  {"id": 1, "contact_id": "c1", "kind": "contact_created",
                   "occurred_at": "2026-11-01T10:00:00+00:00", "title": "Card created",
                   "source_key": "created:c1", "data": {"cause": "api"}}])
    body = html(gateway.ui_card(request("/contacts/c1", key="op-key"), contact_id="c1"))
    assert "<h1>Мария Иванова</h1>" in body
    assert 'href="tel:+79161234567"' in body and "as written: 8 (916) 123-45-67" in body
    assert "UTM source</dt><dd>yandex" in body and "UTM campaign</dt><dd>winter" in body
    assert "olga" in body and "vip" in body and "7701" in body
    # the message as text, a tracked URL never a link
    assert body.index("Form «Contact us» submitted") < body.index("Card created")
    assert "Перезвоните после 18:00\n&lt;b&gt;срочно&lt;/b&gt;" in body
    assert 'href="javascript' not in body
    assert '<time datetime="2026-11-23T15:04:05+00:00" data-local="datetime">' in body


def test_a_merged_id_redirects_to_the_surviving_card(gateway):
    gateway.contacts.get.return_value = contact(id="c2", merged_ids=["c1"], timeline=[])
    response = gateway.ui_card(request("/contacts/c1", key="op-key"), contact_id="c1")
    assert (response.status_code, response.headers["Location"]) == (
        302, "/contacts/c2?merged_from=c1")
    body = html(gateway.ui_card(request("/contacts/c2?merged_from=c1", key="op-key"),
                                contact_id="c2"))
    assert "<code>c1</code> was merged into this one" in body


def test_errors_are_pages_not_json(gateway):
    gateway.contacts.get.side_effect = NotFound("contact nope not found")
    response = gateway.ui_card(request("/contacts/nope", key="op-key"), contact_id="nope")
    assert response.status_code == 404 and "contact nope not found" in html(response)
    gateway.contacts.get.side_effect = RemoteError("OperationalError", "db down")
    response = gateway.ui_card(request("/contacts/c1", key="op-key"), contact_id="c1")
    assert response.status_code == 502 and "db down" not in html(response)


# -- static files -----------------------------------------------------------------------------

def test_static_files_are_served_and_versioned(gateway):
    css = gateway.ui_static(request("/static/ui.css"), name="ui.css")
    assert css.content_type == "text/css; charset=utf-8" and b".topbar" in css.get_data()
    assert css.headers["Cache-Control"] == "no-cache"
    url = ui.static_url("ui.js")
    versioned = gateway.ui_static(request(url), name="ui.js")
    assert "immutable" in versioned.headers["Cache-Control"]
    for name in ("..", "ui.py", "missing.css", "..css"):
        assert gateway.ui_static(request(f"/static/{name}"), name=name).status_code == 404
