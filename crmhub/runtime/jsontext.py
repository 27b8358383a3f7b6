"""JSON text in and out by orjson, falling back to the standard library where orjson would
change a value: the standard encoder and parser were a sixth of a busy service's CPU (the
gateway's publishes, every outbox row, the reporting journal)."""
import json
import re

import orjson

# A run of 19 digits may be an integer beyond 64 bits, which orjson reads as a float.
_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def read_json(text: str | bytes):
    """Parse JSON text (or its UTF-8 bytes); a text holding a number that could lose digits
    goes to the standard parser."""
    pattern = _LONG_NUMBER_BYTES if isinstance(text, bytes) else _LONG_NUMBER
    if pattern.search(text):
        return json.loads(text)
    return orjson.loads(text)


def write_json(value) -> bytes:
    """UTF-8 JSON of a payload (compact; dict keys that are numbers written as text). An
    integer beyond 64 bits, which orjson refuses, goes to the standard encoder."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def write_json_text(value) -> str:
    """``write_json`` as text (SQLAlchemy's JSON columns)."""
    return write_json(value).decode()

