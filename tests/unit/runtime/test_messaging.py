"""The JSON decoder crmhub puts into kombu's registry decodes exactly as kombu's own."""
import datetime as dt
import decimal
import uuid

from kombu.serialization import dumps, loads
from kombu.utils import json as kombu_json

from crmhub.runtime.messaging import reuse_json_decoder


def test_reused_decoder_gives_kombus_result_for_plain_and_typed_values():
    body = {"name": "Анна", "phones": ["+79161234567"], "n": 3, "ok": True, "none": None,
            "at": dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.timezone.utc),
            "amount": decimal.Decimal("1500.00"), "id": uuid.UUID(int=7)}
    content_type, encoding, data = dumps(body, serializer="json")
    expected = kombu_json.loads(data)
    reuse_json_decoder()
    for wire in (data, data.encode(), bytearray(data.encode()), memoryview(data.encode())):
        assert loads(wire, content_type, encoding) == expected == body
