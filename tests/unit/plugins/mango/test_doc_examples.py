"""Every notification example of Mango's API documentation (data/SOURCE.md), re-signed with
our key and salt and posted as printed: valid JSON is accepted with at most one signal that
keeps its contract; the documentation's broken JSON is refused with a 400 and a message."""
import json
import re
from pathlib import Path

import pytest

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.api import BadPayload

EXAMPLES = Path(__file__).parent / "data" / "MangoOffice_VPBX_API_examples.txt"


def notifications() -> list[tuple[str, str, str]]:
    """(title, path below /hooks/mango, json text) of each example Mango posts to us; the
    others are commands we send to app.mango-office.ru."""
    found = []
    for block in EXAMPLES.read_text(encoding="utf-8").split("\n### ")[1:]:
        title = block.splitlines()[0]
        url = re.search(r"POST (\S+)", block).group(1)
        if "app.mango-office.ru" in url:
            continue
        path = "/" + re.search(r"/((?:events|result)/\S+)$", url).group(1)
        json_text = re.split(r"\n\s*json\s*=\s*", block, maxsplit=1)[1].strip()
        found.append((title, path, json_text))
    return found


def is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


NOTIFICATIONS = notifications()
VALID = [(title, path, text) for title, path, text in NOTIFICATIONS if is_json(text)]
BROKEN = [(title, path, text) for title, path, text in NOTIFICATIONS if not is_json(text)]


def test_the_documentation_gives_valid_and_broken_examples():
    # 56 examples: 12 are our commands, 44 notifications, of which 19 are not JSON.
    assert (len(NOTIFICATIONS), len(VALID), len(BROKEN)) == (44, 25, 19)


@pytest.mark.parametrize("title, path, json_text", VALID, ids=[t for t, _, _ in VALID])
def test_a_valid_example_is_accepted_with_at_most_one_signal(send, title, path, json_text):
    result = send(path, json_text)
    assert (result.status, result.body) == (200, {"success": True})
    assert len(result.events) <= 1
    for event_type, event in result.events:
        assert event_type == "call_signal"
        loaded = CallSignalSchema().load(event)
        assert loaded["call_key"] == "232wc3e3w3s222"


@pytest.mark.parametrize("title, path, json_text", BROKEN, ids=[t for t, _, _ in BROKEN])
def test_an_example_that_is_not_json_is_refused_with_400(send, title, path, json_text):
    with pytest.raises(BadPayload, match="json is not valid JSON") as refused:
        send(path, json_text)
    assert refused.value.status == 400


def test_the_events_of_the_documented_outgoing_call_in_order(send):
    page_46 = [text for title, path, text in VALID if title.endswith("page 46")]
    signals = [send("/events/call", text).events[0][1] for text in page_46]
    assert [(s["kind"], s["direction"], s["extension"], s["client_number"], s["sequence"])
            for s in signals] == [("ringing", "outbound", "1234", "12345678", 1),
                                  ("answered", "outbound", "1234", "12345678", 2),
                                  ("leg_ended", "outbound", "1234", "12345678", 3)]
    assert signals[2]["cause"] == "1120 by callee"
