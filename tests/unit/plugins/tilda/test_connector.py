"""The Tilda connector: Tilda's posts (PROTOCOLS.md §4.1 field names) through a real host."""
import json
from urllib.parse import quote, urlencode

import pytest

from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.plugins.api import BadPayload, Unauthorized, make_request
from crmhub.plugins.conformance import host_for
from crmhub.plugins.host import MethodNotAllowedError
from crmhub.plugins.tilda import TildaConnector

SUBMISSION = {"Name": "Олег", "Phone": "+7 (999) 111-22-33", "Email": "oleg@example.com",
              "tranid": "6512345:777", "formid": "form512345678"}


def post(host, fields=None, *, json_body=None, headers=None, method="POST"):
    if json_body is not None:
        body, content_type = json.dumps(json_body), "application/json"
    else:
        body, content_type = urlencode(fields or {}, doseq=True), "application/x-www-form-urlencoded"
    request = make_request(method=method, path="/hooks/tilda", body=body,
                           headers={"Content-Type": content_type, **(headers or {})})
    return host.handle(request)[1]


def event_of(result) -> dict:
    [(event_type, event)] = result.events
    assert event_type == "form_submitted"
    FormSubmittedSchema().load(event)
    return event


@pytest.fixture
def host():
    return host_for(TildaConnector, {})


@pytest.fixture
def keyed_host():
    return host_for(TildaConnector, {"api_key": "k-123"})


def test_the_connection_test_is_answered_ok_in_plain_text_without_events(host):
    result = post(host, {"test": "test"})
    assert (result.status, result.body, result.content_type, result.events) == (
        200, "ok", "text/plain", [])


def test_a_submission_becomes_one_event_keyed_by_its_tranid(host):
    result = post(host, {**SUBMISSION, "Textarea": "Перезвоните", "formname": "Заявка"})
    assert (result.status, result.body) == (200, "ok")
    event = event_of(result)
    assert event["idempotency_key"] == "tilda:6512345:777"
    assert (event["connector"], event["form"], event["form_name"]) == (
        "tilda", "form512345678", "Заявка")
    assert event["contact"] == {"name": "Олег", "company": None,
                                "phones": ["+7 (999) 111-22-33"],
                                "emails": ["oleg@example.com"]}
    assert event["message"] == "Перезвоните"
    assert event["remote_addr"] is None  # Tilda's server, not the visitor, posted it
    retried = event_of(post(host, {**SUBMISSION, "Textarea": "Перезвоните"}))
    assert retried["idempotency_key"] == event["idempotency_key"]


def test_form_name_falls_back_to_the_formid(host):
    assert event_of(post(host, SUBMISSION))["form_name"] == "form512345678"


def test_a_submission_without_tranid_is_400(host):
    with pytest.raises(BadPayload, match="tranid"):
        post(host, {k: v for k, v in SUBMISSION.items() if k != "tranid"})


def test_no_phone_and_no_email_is_400(host):
    with pytest.raises(BadPayload, match="no phone and no valid email"):
        post(host, {"Name": "Олег", "tranid": "1:2", "formid": "form1"})


def test_cookies_give_tracking_and_are_not_kept_as_a_field(host):
    cookies = ("_ym_uid=1699999999123; _ga=GA1.2.345.678; roistat_visit=48211; PHPSESSID=s; "
               "TILDAUTM=" + quote("utm_source=vk|||utm_medium=social|||utm_campaign=autumn|||"))
    event = event_of(post(host, {**SUBMISSION, "COOKIES": cookies, "utm_campaign": "hidden"}))
    assert event["tracking"] == {"utm_campaign": "hidden", "_ym_uid": "1699999999123",
                                 "_ga": "GA1.2.345.678", "roistat": "48211",
                                 "utm_source": "vk", "utm_medium": "social"}
    assert "COOKIES" not in event["fields"]
    assert event["fields"]["utm_campaign"] == "hidden"


def test_a_cart_order_goes_into_fields_and_sums_up_as_the_message(host):
    payment = {"orderid": "1782049373", "amount": "3200", "products": [
        {"name": "Кофе", "quantity": 2, "price": "1200", "amount": 2400},
        {"name": "Фильтры", "quantity": 1, "price": "800", "amount": 800}]}
    raw = json.dumps(payment, ensure_ascii=False)
    event = event_of(post(host, {**SUBMISSION, "payment": raw}))
    assert event["message"] == "Order 1782049373: Кофе × 2; Фильтры × 1. Total: 3200"
    assert event["fields"]["payment"] == raw
    assert event["fields"]["payment_amount"] == "3200"
    assert json.loads(event["fields"]["payment_products"]) == payment["products"]


def test_a_comment_wins_over_the_order_summary_and_a_broken_order_keeps_the_lead(host):
    with_comment = event_of(post(host, {**SUBMISSION, "Textarea": "Домофон не работает",
                                        "payment": '{"amount": "10", "products": ["Чай"]}'}))
    assert with_comment["message"] == "Домофон не работает"
    broken = event_of(post(host, {**SUBMISSION, "payment": "{not json"}))
    assert broken["message"] is None and broken["fields"]["payment"] == "{not json"
    legacy = event_of(post(host, {**SUBMISSION, "payment": '{"products": ["Чай - 1x100"]}'}))
    assert legacy["message"] == "Order: Чай - 1x100"


def test_json_posts_and_checkbox_groups_are_read(host):
    event = event_of(post(host, json_body={**SUBMISSION, "Services": ["Доставка", "Сборка"]}))
    assert event["fields"]["Services"] == "Доставка, Сборка"
    assert event["idempotency_key"] == "tilda:6512345:777"


def test_field_mapping_applies_to_tilda_variable_names():
    host = host_for(TildaConnector, {"fields": {"phone": "Mobile", "name": "FIO"}})
    event = event_of(post(host, {"FIO": "Анна", "Mobile": "89035550011", "Phone": "ignored",
                                 "tranid": "1:1", "formid": "form1"}))
    assert event["contact"]["name"] == "Анна"
    assert event["contact"]["phones"] == ["89035550011"]


def test_a_configured_api_key_is_required_in_the_header_or_a_field(keyed_host):
    assert post(keyed_host, SUBMISSION, headers={"X-Tilda-Api-Key": "k-123"}).events
    as_field = event_of(post(keyed_host, {**SUBMISSION, "X-Tilda-Api-Key": "k-123"}))
    assert "X-Tilda-Api-Key" not in as_field["fields"]  # the secret never reaches an event
    for headers in ({}, {"X-Tilda-Api-Key": "wrong"}, {"X-Tilda-Api-Key": ""}):
        with pytest.raises(Unauthorized) as refused:
            post(keyed_host, SUBMISSION, headers=headers)
        assert refused.value.status == 401 and "X-Tilda-Api-Key" in refused.value.message


def test_the_connection_test_passes_without_a_key_but_not_with_a_wrong_one(keyed_host):
    assert post(keyed_host, {"test": "test"}).body == "ok"
    assert post(keyed_host, {"test": "test"}, headers={"X-Tilda-Api-Key": "k-123"}).body == "ok"
    with pytest.raises(Unauthorized):
        post(keyed_host, {"test": "test"}, headers={"X-Tilda-Api-Key": "wrong"})


def test_the_api_key_name_is_configurable():
    host = host_for(TildaConnector, {"api_key": "k", "api_key_name": "api_key"})
    assert event_of(post(host, {**SUBMISSION, "api_key": "k"}))
    with pytest.raises(Unauthorized):
        post(host, SUBMISSION, headers={"X-Tilda-Api-Key": "k"})


def test_without_a_configured_key_a_sent_key_is_still_dropped_from_fields(host):
    event = event_of(post(host, {**SUBMISSION, "X-Tilda-Api-Key": "whatever"}))
    assert "X-Tilda-Api-Key" not in event["fields"]


def test_get_is_refused_with_a_clear_405(host):
    with pytest.raises(MethodNotAllowedError) as refused:
        post(host, {}, method="GET")
    assert refused.value.status == 405 and "POST" in refused.value.message
