"""The forms connector as a site owner meets it: posts routed through a real ConnectorHost."""
import json
from io import BytesIO
from urllib.parse import urlencode

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.plugins.api import (
    BadPayload,
    Forbidden,
    TooManyRequests,
    Unauthorized,
    UnknownTarget,
    UnsupportedMediaType,
    make_request,
)
from crmhub.plugins.conformance import host_for
from crmhub.plugins.forms import FormsConnector
from crmhub.plugins.forms.guards import sign

CONTACT_US = {"forms": {"contact-us": {"title": "Contact us"}}}


def forms_host(**settings):
    return host_for(FormsConnector, {**CONTACT_US, **settings})


def post(host, fields=None, *, form="contact-us", json_body=None, body=b"", content_type=None,
         headers=None, query=None, remote_addr="198.51.100.1"):
    if fields is not None:
        body, content_type = urlencode(fields, doseq=True), "application/x-www-form-urlencoded"
    elif json_body is not None:
        body, content_type = json.dumps(json_body), "application/json"
    request = make_request(path=f"/hooks/forms/{form}", body=body, query=query,
                           headers={"Content-Type": content_type or "", **(headers or {})},
                           remote_addr=remote_addr)
    return host.handle(request)[1]


def event_of(result) -> dict:
    [(event_type, event)] = result.events
    assert event_type == "form_submitted"
    FormSubmittedSchema().load(event)  # every emitted event honours its contract
    return event


def test_default_field_names_are_found_whatever_their_case():
    event = event_of(post(forms_host(), {
        "Name": "Мария", "TEL": "8 (916) 123-45-67", "E-mail": "maria@example.com",
        "Comment": "Перезвоните", "Organization": "ООО Ромашка", "extra": "kept"}))
    assert event["contact"] == {"name": "Мария", "company": "ООО Ромашка",
                                "phones": ["8 (916) 123-45-67"], "emails": ["maria@example.com"]}
    assert event["message"] == "Перезвоните"
    assert event["fields"]["extra"] == "kept"
    assert (event["connector"], event["form"], event["form_name"]) == (
        "forms", "contact-us", "Contact us")
    assert event["remote_addr"] == "198.51.100.1" and event["received_at"]


def test_first_and_last_name_make_the_name_when_no_name_field_is_sent():
    event = event_of(post(forms_host(), {"first_name": "Иван", "last_name": "Петров",
                                         "phone": "+79161234567"}))
    assert event["contact"]["name"] == "Иван Петров"


def test_every_phone_and_email_field_is_kept_raw_and_once():
    event = event_of(post(forms_host(), {"phone": ["8 916 123-45-67", "8 916 123-45-67"],
                                         "mobile": "+7 903 555-00-11",
                                         "email": ["a@example.com", "A@example.com"]}))
    assert event["contact"]["phones"] == ["8 916 123-45-67", "+7 903 555-00-11"]
    assert event["contact"]["emails"] == ["a@example.com"]
    assert event["fields"]["phone"] == "8 916 123-45-67, 8 916 123-45-67"


def test_a_form_mapping_replaces_the_default_names():
    host = host_for(FormsConnector, {"forms": {"callback": {"fields": {
        "name": "fio", "phone": ["tel", "tel2"], "email": "mail", "company": "org"}}}})
    event = event_of(post(host, {"fio": "Олег", "name": "Product X", "tel": "89991112233",
                                 "tel2": "+74951234567", "mail": "o@example.com",
                                 "org": "Acme"}, form="callback"))
    assert event["contact"] == {"name": "Олег", "company": "Acme",
                                "phones": ["89991112233", "+74951234567"],
                                "emails": ["o@example.com"]}


def test_a_mapping_of_an_unknown_part_is_refused_at_start_up():
    with pytest.raises(ValueError, match="unknown field mapping"):
        host_for(FormsConnector, {"forms": {"x": {"fields": {"telephone": "tel"}}}})


def test_tracking_comes_from_fields_query_cookies_then_referer():
    event = event_of(post(
        forms_host(), {"phone": "+79161234567", "utm_source": "from-field", "gclid": "g1"},
        query={"utm_source": "from-query", "utm_medium": "cpc", "yclid": "778899"},
        headers={"Cookie": "_ym_uid=1699; _ga=GA1.2.3; roistat_visit=4821; sessionid=secret",
                 "Referer": "https://shop.example/landing?utm_term=sofa"}))
    assert event["tracking"] == {
        "utm_source": "from-field", "gclid": "g1", "utm_medium": "cpc", "yclid": "778899",
        "_ym_uid": "1699", "_ga": "GA1.2.3", "roistat": "4821", "utm_term": "sofa",
        "page_url": "https://shop.example/landing?utm_term=sofa",
        "referer": "https://shop.example/landing?utm_term=sofa"}


def test_page_url_and_referer_fields_beat_the_referer_header():
    event = event_of(post(forms_host(), {"phone": "+79161234567", "page_url": "https://a.example/p",
                                         "referrer": "https://google.com/"},
                          headers={"Referer": "https://a.example/other"}))
    assert event["tracking"]["page_url"] == "https://a.example/p"
    assert event["tracking"]["referer"] == "https://google.com/"


def test_multipart_forms_are_read_with_files_reported_by_name():
    values = MultiDict({"name": "Анна", "phone": "+79035550011"})
    values.add("attachment", FileStorage(BytesIO(b"%PDF"), "brief.pdf", content_type="application/pdf"))
    boundary, body = encode_multipart(values)
    event = event_of(post(forms_host(), body=body,
                          content_type=f"multipart/form-data; boundary={boundary}"))
    assert event["contact"]["phones"] == ["+79035550011"]
    assert event["fields"] == {"name": "Анна", "phone": "+79035550011",
                               "attachment": "brief.pdf"}


def test_json_objects_are_read_with_string_list_and_number_values():
    event = event_of(post(forms_host(), json_body={
        "phone": 79161234567, "interests": ["delivery", "wholesale"], "agree": True,
        "email": None}))
    assert event["contact"]["phones"] == ["79161234567"]
    assert event["fields"] == {"phone": "79161234567", "interests": "delivery, wholesale",
                               "agree": "true"}


def test_a_filled_honeypot_is_answered_like_a_success_and_publishes_nothing():
    host = forms_host(honeypot_field="website")
    bot = post(host, {"phone": "+79161234567", "website": "http://spam.example"})
    assert (bot.status, bot.body, bot.events) == (200, {"ok": True}, [])
    human = event_of(post(host, {"phone": "+79161234567", "website": ""}))
    assert "website" not in human["fields"]


def test_more_posts_a_minute_than_allowed_from_one_address_get_429():
    host = forms_host(rate_limit_per_minute=3)
    limiter = host.connectors["forms"].instance.rate_limiter
    now = [1000.0]
    limiter.clock = lambda: now[0]
    for _ in range(3):
        post(host, {"phone": "+79161234567"})
    with pytest.raises(TooManyRequests) as refused:
        post(host, {"phone": "+79161234567"})
    assert refused.value.status == 429 and "3 submissions a minute" in refused.value.message
    assert post(host, {"phone": "+79161234567"}, remote_addr="198.51.100.2").events
    now[0] += 61
    assert post(host, {"phone": "+79161234567"}).events


def test_an_unknown_form_is_404_unless_unknown_forms_are_allowed():
    with pytest.raises(UnknownTarget) as refused:
        post(forms_host(), {"phone": "+79161234567"}, form="landing")
    assert refused.value.status == 404 and "contact-us" in refused.value.message
    event = event_of(post(forms_host(allow_unknown_forms=True), {"phone": "+79161234567"},
                          form="landing"))
    assert (event["form"], event["form_name"]) == ("landing", "landing")
    with pytest.raises(UnknownTarget):
        post(forms_host(allow_unknown_forms=True), {"phone": "1"}, form="-" + "x" * 200)


def test_no_phone_and_no_valid_email_is_400_naming_what_is_missing():
    with pytest.raises(BadPayload) as refused:
        post(forms_host(), {"name": "Иван", "email": "ivan-at-example"})
    message = refused.value.message
    assert refused.value.status == 400
    assert "no phone and no valid email" in message and "ivan-at-example" in message
    assert "phone, tel" in message and "email, mail" in message


def test_an_invalid_email_beside_a_phone_stays_in_fields_only():
    event = event_of(post(forms_host(), {"phone": "+79161234567", "email": "not an email"}))
    assert event["contact"]["emails"] == []
    assert event["fields"]["email"] == "not an email"


def test_bodies_that_are_not_forms_are_415_and_broken_json_400():
    with pytest.raises(UnsupportedMediaType) as refused:
        post(forms_host(), body=b"phone=1", content_type="text/plain")
    assert refused.value.status == 415
    with pytest.raises(BadPayload, match="not valid JSON"):
        post(forms_host(), body=b"{broken", content_type="application/json")
    with pytest.raises(BadPayload, match="object"):
        post(forms_host(), body=b'["phone"]', content_type="application/json")


def test_a_form_with_a_secret_requires_the_hmac_of_the_raw_body():
    host = host_for(FormsConnector, {"forms": {"contact-us": {"secret": "s3cret"}}})
    body = urlencode({"phone": "+79161234567"})
    good = sign("s3cret", body.encode())
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert post(host, body=body, content_type="application/x-www-form-urlencoded",
                headers={"X-Crmhub-Signature": good}).events
    for headers in ({}, {"X-Crmhub-Signature": sign("other", body.encode())},
                    {"X-Crmhub-Signature": good.upper()}):
        with pytest.raises(Unauthorized) as refused:
            post(host, body=body, content_type="application/x-www-form-urlencoded",
                 headers=headers)
        assert refused.value.status == 401
    with pytest.raises(Unauthorized, match="does not match"):
        post(host, body=body + "&utm_source=tampered",
             content_type="application/x-www-form-urlencoded",
             headers={"X-Crmhub-Signature": good})


def test_allowed_origins_are_checked_on_origin_then_referer():
    host = host_for(FormsConnector, {"forms": {"contact-us": {
        "allowed_origins": ["https://shop.example/"]}}})
    fields = {"phone": "+79161234567"}
    assert post(host, fields, headers={"Origin": "https://SHOP.example"}).events
    assert post(host, fields, headers={"Referer": "https://shop.example/p?x=1"}).events
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {},
                    {"Referer": "https://shop.example.evil.example/"}):
        with pytest.raises(Forbidden) as refused:
            post(host, fields, headers=headers)
        assert refused.value.status == 403


def test_an_allowed_origin_that_is_not_a_url_is_refused_at_start_up():
    with pytest.raises(ValueError, match="allowed_origins"):
        host_for(FormsConnector, {"forms": {"x": {"allowed_origins": ["shop.example"]}}})


def test_a_redirect_sends_html_forms_on_with_303_and_scripts_get_json():
    host = host_for(FormsConnector, {"forms": {"contact-us": {
        "redirect": "https://shop.example/thanks"}}})
    html = post(host, {"phone": "+79161234567"})
    assert (html.status, html.headers) == (303, {"Location": "https://shop.example/thanks"})
    assert html.events
    script = post(host, json_body={"phone": "+79161234567"})
    assert (script.status, script.body, script.headers) == (200, {"ok": True}, {})


def test_idempotency_key_comes_from_the_header_then_submission_id():
    host = forms_host()
    keyed = event_of(post(host, {"phone": "+79161234567", "submission_id": "s-1"},
                          headers={"Idempotency-Key": "click-7"}))
    assert keyed["idempotency_key"] == "forms:contact-us:click-7"
    assert event_of(post(host, {"phone": "+79161234567", "submission_id": "s-1"})
                    )["idempotency_key"] == "forms:contact-us:s-1"
    long_key = event_of(post(host, {"phone": "1"}, headers={"Idempotency-Key": "k" * 500}))
    assert len(long_key["idempotency_key"]) < 300


def test_a_double_click_posts_once_but_another_visitor_or_a_later_post_does_not():
    host = forms_host(honeypot_field="website")
    connector = host.connectors["forms"].instance
    connector.clock = lambda: 6000.0

    def key(fields, remote_addr="198.51.100.1"):
        return event_of(post(host, fields, remote_addr=remote_addr))["idempotency_key"]

    first = key({"phone": "+79161234567", "name": "Анна"})
    assert first.startswith("forms:contact-us:")
    assert key({"name": "Анна", "phone": "+79161234567", "website": ""}) == first
    assert key({"phone": "+79161234567", "name": "Анна"}, "198.51.100.9") != first
    assert key({"phone": "+79161234567", "name": "Анна Петровна"}) != first
    connector.clock = lambda: 6000.0 + 600
    assert key({"phone": "+79161234567", "name": "Анна"}) != first


def test_overlong_texts_are_fitted_to_the_contract_but_kept_in_fields():
    event = event_of(post(forms_host(), {"phone": ["+79161234567", "9" * 70],
                                         "name": "Я" * 400, "message": "x" * 25000}))
    assert len(event["contact"]["name"]) == 300 and len(event["message"]) == 20000
    assert event["contact"]["phones"] == ["+79161234567"]  # 70 digits are no phone number
    assert len(event["fields"]["name"]) == 400 and "9" * 70 in event["fields"]["phone"]
