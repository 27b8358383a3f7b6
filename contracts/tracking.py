"""Where a client came from: UTM tags, click ids, analytics ids, page and referer."""
from marshmallow import fields

from crmhub.contracts.base import Contract

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_id")
CLICK_ID_KEYS = ("yclid", "gclid", "fbclid")
ANALYTICS_KEYS = ("_ym_uid", "_ga", "roistat")
TRACKING_KEYS = UTM_KEYS + CLICK_ID_KEYS + ANALYTICS_KEYS + ("referer", "page_url")


class TrackingSchema(Contract):
    utm_source = fields.String(allow_none=True)
    utm_medium = fields.String(allow_none=True)
    utm_campaign = fields.String(allow_none=True)
    utm_content = fields.String(allow_none=True)
    utm_term = fields.String(allow_none=True)
    utm_id = fields.String(allow_none=True)
    yclid = fields.String(allow_none=True, metadata={"description": "Yandex Direct click id"})
    gclid = fields.String(allow_none=True, metadata={"description": "Google Ads click id"})
    fbclid = fields.String(allow_none=True)
    _ym_uid = fields.String(allow_none=True, data_key="_ym_uid",
                            metadata={"description": "Yandex Metrika client id"})
    _ga = fields.String(allow_none=True, data_key="_ga")
    roistat = fields.String(allow_none=True)
    referer = fields.String(allow_none=True)
    page_url = fields.String(allow_none=True)


class SourceSchema(Contract):
    """The first contact's origin, kept on the card."""

    channel = fields.String(allow_none=True, metadata={"description": "form, call, messenger, email, api"})
    connector = fields.String(allow_none=True)
    form = fields.String(allow_none=True)
    tracking = fields.Nested(TrackingSchema, load_default=dict, dump_default=dict)
