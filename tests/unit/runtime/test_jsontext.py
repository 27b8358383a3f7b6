"""JSON text written for the broker and the outbox: what any JSON reader gets back equals the
payload, including what orjson alone would refuse (integers beyond 64 bits)."""
import json

import pytest

from crmhub.runtime.jsontext import read_json, write_json


@pytest.mark.parametrize("payload", [
    {"name": "Анна Петрова", "phones": ["+79161234567"], "amount": "1500.00", "n": 3.5},
    {"fields": {"inn": 12345678901234567890123, "ok": True, "none": None}},  # beyond 64 bits
    {"counts": [1, 2, {"deep": [[]]}], "emoji": "☎"},
])
def test_a_payload_reads_back_as_written(payload):
    text = write_json(payload)
    assert isinstance(text, bytes)
    assert json.loads(text) == payload
    assert read_json(text.decode()) == payload

