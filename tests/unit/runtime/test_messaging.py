"""The JSON decoder crmhub puts into kombu's registry decodes exactly as kombu's own."""
import datetime as dt
import decimal
import json
import os
import uuid

import pytest
from kombu.serialization import dumps, loads
from kombu.utils import json as kombu_json

from crmhub.runtime.messaging import PerBroker, reuse_json_decoder


def test_reused_decoder_gives_kombus_result_for_plain_and_typed_values():
    body = {"name": "Анна", "phones": ["+79161234567"], "n": 3, "ok": True, "none": None,
            "at": dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.timezone.utc),
            "amount": decimal.Decimal("1500.00"), "id": uuid.UUID(int=7)}
    content_type, encoding, data = dumps(body, serializer="json")
    expected = kombu_json.loads(data)
    reuse_json_decoder()
    for wire in (data, data.encode(), bytearray(data.encode()), memoryview(data.encode())):
        assert loads(wire, content_type, encoding) == expected == body


@pytest.mark.parametrize("text", [
    '{"deal": {"amount": "1500.00", "stage": 3, "tags": ["vip"]}, "note": "Анна ☎"}',
    '{"inn": 12345678901234567890123, "big": -99999999999999999999}',  # beyond 64 bits
    '{"ratio": NaN, "top": Infinity}',  # the standard decoder reads these, orjson refuses
    '{"value": {"__type__": "custom", "x": 1}, "escaped": "\\ud83d\\ude00"}',
])
def test_reused_decoder_gives_kombus_result_for_every_wire_text(text):
    expected = kombu_json.loads(text)
    reuse_json_decoder()
    for wire in (text, text.encode()):
        decoded = loads(wire, "application/json", "utf-8")
        assert json.dumps(decoded, sort_keys=True) == json.dumps(expected, sort_keys=True)


# The child only looks its publisher up and exits: eventlet's warning about forking does not
# apply.
@pytest.mark.filterwarnings("ignore:Using fork")
def test_a_forked_child_does_not_publish_on_its_parents_connection():
    """A process forked after publishing (an import worker, a rebuild worker) gets publishers
    of its own: two processes writing on one socket interleave their frames."""
    made = []
    per_broker = PerBroker(lambda uri: made.append(uri) or object())
    parents = per_broker.get("amqp://broker/vhost")
    assert per_broker.get("amqp://broker/vhost") is parents
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        childs = per_broker.get("amqp://broker/vhost")
        os.write(write_end, b"own" if childs is not parents else b"shared")
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 16)
    os.waitpid(pid, 0)
    assert answer == b"own"
