"""Who gets which popup: a stream shows the calls ringing at its manager's extensions (a
supervisor's also the lines it watches), then how those calls went, and nothing else."""
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from crmhub.contracts.errors import InvalidInput, PermissionDenied
from crmhub.services.gateway.auth import Principal
from crmhub.services.gateway.calls_api import _stream_for
from crmhub.services.gateway.popups import PopupHub, PopupStream


def ringing(call_id="k1", managers=("olga",), line="+74951234567"):
    return {"event_id": f"e-{call_id}", "call": {"id": call_id, "line": line},
            "extensions": ["101"], "managers": list(managers),
            "caller": {"contact_id": None, "known": False}}


def frames(stream) -> list[tuple[str, dict]]:
    got = []
    while not stream.queue.empty():
        head, data = stream.queue.get().decode().split("\ndata: ")
        got.append((head.split("\n")[0].removeprefix("event: "), json.loads(data)))
    return got


def test_a_ringing_call_reaches_its_managers_and_the_supervisors_of_its_line():
    hub = PopupHub()
    olga, pavel = PopupStream("olga"), PopupStream("pavel")
    line_boss, all_boss = PopupStream("irina", frozenset({"+74951234567"})), PopupStream(
        "boss", every_line=True)
    other_line = PopupStream("nina", frozenset({"+74950000000"}))
    hub.streams |= {olga, pavel, line_boss, all_boss, other_line}
    assert hub.publish("call_ringing", ringing()) == 3
    assert [kind for kind, _ in frames(olga)] == ["call_ringing"]
    assert frames(pavel) == [] and frames(other_line) == []
    assert [d["call"]["id"] for _, d in frames(line_boss)] == ["k1"]


def test_only_streams_that_showed_a_call_hear_how_it_went():
    hub = PopupHub()
    olga, pavel = PopupStream("olga"), PopupStream("pavel")
    hub.streams |= {olga, pavel}
    hub.publish("call_ringing", ringing())
    hub.publish("call_answered", {"event_id": "e2", "call": {"id": "k1"}})
    hub.publish("call_missed", {"event_id": "e3", "call": {"id": "k-other"}})
    assert [kind for kind, _ in frames(olga)] == ["call_ringing", "call_answered"]
    assert frames(pavel) == []


def test_a_tab_that_stopped_reading_loses_popups_instead_of_holding_memory():
    hub = PopupHub()
    stuck = PopupStream("olga")
    hub.streams.add(stuck)
    for i in range(stuck.queue.maxsize + 50):
        hub.publish("call_ringing", ringing(f"k{i}"))
    assert stuck.queue.qsize() == stuck.queue.maxsize


def request(query=""):
    return Request(EnvironBuilder(path="/api/v1/calls/stream", query_string=query).get_environ())


def test_only_supervisors_may_watch_lines():
    stream = _stream_for(request("lines=%2B74951234567,%2B74957654321"), Principal("irina", "manager"))
    assert stream.lines == {"+74951234567", "+74957654321"} and not stream.every_line
    assert _stream_for(request("all=1"), Principal("boss", "admin")).every_line
    with pytest.raises(PermissionDenied):
        _stream_for(request("all=1"), Principal("olga", "operator"))
    with pytest.raises(InvalidInput):
        _stream_for(request("extension=101"), Principal("olga", "operator"))
