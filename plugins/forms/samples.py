"""Conformance samples of the forms connector: posts as browsers and scripts send them, built
for the connector's own settings (field names, signature secret, allowed origins)."""
from __future__ import annotations

import dataclasses
import json
from io import BytesIO
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from crmhub.plugins.api import Sample, WebhookRequest, make_request
from crmhub.plugins.forms.guards import SIGNATURE_HEADER, sign
from crmhub.plugins.host import HOOK_PREFIX

if TYPE_CHECKING:
    from crmhub.plugins.forms.connector import FormsConnector, FormSettings

VISITOR_ADDR = "203.0.113.7"
PAGE = "https://shop.example/contacts?utm_source=yandex&utm_medium=cpc"
URLENCODED = "application/x-www-form-urlencoded"


def target(connector: FormsConnector) -> FormSettings | None:
    """The form samples post to: the first configured one, else any slug if allowed."""
    if connector.forms:
        return next(iter(connector.forms.values()))
    return connector.form_settings("contact-us") if connector.allow_unknown_forms else None


def post(form: FormSettings, body: bytes, content_type: str, **headers: str) -> WebhookRequest:
    """A post to ``form`` passing its signature and origin checks."""
    headers = {"Content-Type": content_type, **headers}
    if form.secret:
        headers[SIGNATURE_HEADER] = sign(form.secret, body)
    if form.allowed_origins:
        headers["Origin"] = min(form.allowed_origins)
    return make_request(path=f"{HOOK_PREFIX}/forms/{form.slug}", body=body, headers=headers,
                        remote_addr=VISITOR_ADDR)


def contact_fields(form: FormSettings, **values: str) -> dict[str, str]:
    """``values`` keyed by the field names the form's mapping reads for each part."""
    return {form.field_map.names[part][0]: value for part, value in values.items()}


def valid(connector: FormsConnector) -> list[Sample]:
    form = target(connector)
    if form is None:
        return []
    fields = contact_fields(form, name="Мария Иванова", phone="8 (916) 123-45-67",
                            email="maria@example.com", message="Перезвоните после 18:00")
    multipart_values = MultiDict({**fields, "utm_campaign": "spring"})
    multipart_values.add("brief", FileStorage(BytesIO(b"%PDF-1.4"), "brief.pdf",
                                              content_type="application/pdf"))
    boundary, multipart = encode_multipart(multipart_values, boundary="crmhub-sample")
    as_json = {**contact_fields(form, phone="+7 903 555-00-11"), "submission_id": "js-42",
               "interests": ["delivery", "wholesale"]}
    signed = bool(form.secret or form.allowed_origins)
    samples = [
        Sample("urlencoded HTML form with UTM tags and analytics cookies", post(
            form, urlencode({**fields, "utm_source": "yandex", "yclid": "778899"}).encode(),
            URLENCODED, Cookie="_ym_uid=1699999999123; _ga=GA1.2.1.2", Referer=PAGE,
            **{"Idempotency-Key": "sample-urlencoded-1"}), ["form_submitted"], signed),
        Sample("multipart form with a file", post(
            form, multipart, f"multipart/form-data; boundary={boundary}"),
            ["form_submitted"], signed),
        Sample("JSON object posted by a script", post(
            form, json.dumps(as_json).encode(), "application/json"), ["form_submitted"], signed),
    ]
    if connector.honeypot_field:
        samples.append(Sample("a bot filling the honeypot field", post(
            form, urlencode({**fields, connector.honeypot_field: "http://spam.example"}).encode(),
            URLENCODED), [], signed))
    return samples


def forged(connector: FormsConnector, sample: Sample) -> Sample | None:
    """``sample`` with a wrong signature, or else posted from a foreign page."""
    form = target(connector)
    if form is None or not (form.secret or form.allowed_origins):
        return None
    request = sample.request
    headers = dict(request.headers.items())
    if form.secret:
        headers[SIGNATURE_HEADER] = sign(form.secret + "-forged", request.body)
    else:
        headers["Origin"] = "https://attacker.example"
    forged_request = make_request(path=request.path, body=request.body, headers=headers,
                                  remote_addr=request.remote_addr)
    return Sample(f"{sample.name} (forged)", forged_request, [], signed=False)


def bad(connector: FormsConnector) -> list[Sample]:
    form = target(connector)
    if form is None:
        return []
    unreachable = urlencode(contact_fields(form, name="No way to reach me", message="hi"))
    samples = [
        Sample("no phone and no email", post(form, unreachable.encode(), URLENCODED), []),
        Sample("malformed JSON", post(form, b"{broken", "application/json"), []),
        Sample("JSON array instead of an object", post(form, b"[1, 2]", "application/json"),
               []),
        Sample("a body that is not a form", post(form, b"\x00\x01", "application/octet-stream"),
               []),
    ]
    if not connector.allow_unknown_forms:
        unknown = dataclasses.replace(form, slug="no-such-form")
        samples.append(Sample("a form that is not configured", post(
            unknown, urlencode(contact_fields(form, phone="+79161234567")).encode(), URLENCODED),
            []))
    return samples
