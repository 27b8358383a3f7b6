"""JSON text written for the broker, the outbox and JSON columns: what any JSON reader gets back equals the
payload, including what orjson alone would refuse (integers beyond 64 bits)."""
import json

import pytest
import sqlalchemy as sa

from crmhub.runtime.db import make_engine
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



def test_a_json_column_keeps_what_orjson_alone_would_change(database_config):
    """The services' JSON columns are written by ``write_json`` and read by ``read_json``:
    a custom field holding a 23-digit number keeps every digit, on either database."""
    engine = make_engine(database_config, "contacts")
    probe = sa.Table("json_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("doc", sa.JSON))
    stored = {"inn": 12345678901234567890123, "name": "Анна", "n": 3.5, "none": None, 7: "seven"}
    try:
        with engine.begin() as conn:
            probe.create(conn)
            conn.execute(probe.insert(), [{"id": 1, "doc": stored}])
        with engine.connect() as conn:
            doc = conn.execute(sa.select(probe.c.doc)).scalar_one()
        assert doc == {**{k: v for k, v in stored.items() if k != 7}, "7": "seven"}
        assert isinstance(doc["inn"], int)
    finally:
        with engine.begin() as conn:
            probe.drop(conn)
        engine.dispose()
