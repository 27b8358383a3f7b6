"""Conformance samples of the Mango connector, signed with the configured key and salt.

The payloads are the examples of Mango's API documentation ("MANGO OFFICE API v1.10
(24.12.2017)", pages noted below) and one real post (the ``mango-vpbx`` Node SDK's README
debug log), as collected in shared/samples/mango. The documentation's summary examples are
invalid JSON (``"from" {``): the valid samples fix that typo, the bad ones keep it.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from crmhub.plugins.api import Sample, make_request
from crmhub.plugins.mango.signing import signed_form
from crmhub.plugins.mango.simulator import HOOK_PATH, SENDER_ADDR, Webhook

if TYPE_CHECKING:
    from crmhub.plugins.mango.connector import MangoConnector

SIGNAL = ["call_signal"]

# Doc p.49: an incoming call enters the IVR.
IVR_APPEARED = {"call_id": "100:500:256", "entry_id": "232wc3e3w3s222", "timestamp": "1399906976",
                "seq": "1", "call_state": "Appeared", "location": "ivr",
                "from": {"number": "79000000000"},
                "to": {"number": "7800123456789", "line_number": "7800123456789"}}
# Doc p.46: employee 1234 calls out; seq comes as a string.
OUTGOING = {"call_id": "100:500:256", "entry_id": "232wc3e3w3s222", "location": "abonent",
            "from": {"extension": "1234", "number": "74955404444"}, "to": {"number": "12345678"}}
OUTGOING_APPEARED = {**OUTGOING, "timestamp": "1399906976", "seq": "1", "call_state": "Appeared",
                     "from": {"extension": "1234"}}
OUTGOING_CONNECTED = {**OUTGOING, "timestamp": "1399906988", "seq": "2", "call_state": "Connected"}
OUTGOING_DISCONNECTED = {**OUTGOING, "timestamp": "1399907008", "seq": "3",
                         "call_state": "Disconnected", "disconnect_reason": "1120"}
# Doc p.54: a leg put on hold.
ON_HOLD = {"entry_id": "232wc3e3w3s222", "call_id": "300:200", "timestamp": 1399956986, "seq": "3",
           "call_state": "OnHold", "from": {"number": "74955404444"},
           "to": {"extension": "333", "number": "44332211"}}
# Doc p.47: a leg of our click-to-call, echoing its command_id.
CALLBACK_LEG = {"call_id": "100:500:251", "entry_id": "232wc3e3w3s222", "timestamp": 1399906971,
                "seq": "1", "location": "abonent", "call_state": "Appeared",
                "from": {"extension": "5555", "number": "74955404444"},
                "to": {"extension": "1234", "number": "12345678"},
                "command_id": "cmd.2.vpbx.12345.external.system.com.net"}
# A real post (mango-vpbx README debug log): the json text exactly as Mango sent it.
REAL_APPEARED = (
    '{"entry_id":"MzUyODbvczg4OTo0MDE=","call_id":"MzUyODbvczg4OTo0MDEMzUyODbvczg4O",'
    '"timestamp":1522347638,"seq":1,"call_state":"Appeared","location":"abonent",'
    '"from":{"number":"74991102914","taken_from_call_id":"MzUyODbvczg4OMzUyODbvczg4OMzUyODbvcg"},'
    '"to":{"extension":"101","number":"sip:example@domain.mangosip.ru",'
    '"line_number":"74952129298","acd_group":"22"},"dct":{"type":0}}')
# Doc p.16 (typo fixed): summaries of an answered incoming and an unanswered outgoing call.
SUMMARY_ANSWERED = {"entry_id": "232wc3e3w3s222", "call_direction": 1,
                    "from": {"number": "7800123635242"},
                    "to": {"extension": "123", "number": "7800123456789"},
                    "line_number": "7800123456789", "create_time": 1399906976,
                    "forward_time": 1399906978, "talk_time": 1399906980, "end_time": 1399906990,
                    "entry_result": 1, "disconnect_reason": 1100}
SUMMARY_OUTGOING_UNANSWERED = {"entry_id": "232wc3e3w3s222", "call_direction": 2,
                               "from": {"extension": "123", "number": "sip:user1@хyz.mangosip.ru"},
                               "to": {"number": "7800123456789"}, "line_number": "74953333357",
                               "create_time": 1399906976, "forward_time": 1399906976,
                               "talk_time": 0, "entry_result": 0, "end_time": 1399906990,
                               "disconnect_reason": 1100}
# Doc p.13: a recording starts; completed with API 1.10's completion_code.
RECORDING_STARTED = {"recording_id": "r100:777:500:256", "recording_state": "Started", "seq": 1,
                     "call_id": "100:500:256", "entry_id": "232wc3e3w3s222", "extension": "1234",
                     "timestamp": "1399906976",
                     "command_id": "cmd.12.vpbx.12345.external.system.com.net"}
RECORDING_COMPLETED = {**RECORDING_STARTED, "recording_state": "Completed", "seq": 2,
                       "timestamp": "1399907010", "completion_code": 1000, "recipient": "Cloud"}
# Doc p.47 and p.23: command results; p.14: a DTMF notification.
CALLBACK_DONE = {"command_id": "cmd.2.vpbx.12345.external.system.com.net", "result": "1000"}
CALLBACK_REFUSED = {"command_id": "cmd.3.vpbx.12345.external.system.com.net", "result": "3102"}
HANGUP_RESULT = {"command_id": "cmd.654.vpbx.12345.external.system.com.net", "result": "4101"}
DTMF = {"seq": 1, "dtmf": "124", "timestamp": "1399906980", "call_id": "100:500:256",
        "entry_id": "232wc3e3w3s222", "location": "ivr.2", "initiator": "79000000000",
        "from_number": "79000000000", "to_number": "7800123456789",
        "line_number": "7800123456789"}

# Verbatim doc text that is not JSON: p.51 (a ';' after a misspelt "locaton") and p.16.
DOC_INVALID_CALL = '''{
        "entry_id": "232wc3e3w3s222",
        "call_id" : "200:514",
        "timestamp" : "1398956978",
        "seq" : "1",
        "locaton": "abonent";
        "call_state" : "Appeared",
        "from" : {
            "number" : "74955404444"
        },
        "to" : {
            "extension" : "123",
            "number" : "12345678"
        }
    }'''
DOC_INVALID_SUMMARY = '''{
        "entry_id": "232wc3e3w3s222",
        "call_direction": 1,
        "from" {
            "number" : "7800123635242"
        },
        "to": {
            "extension": "123",
            "number" : "7800123456789"
        },
        "line_number" : "7800123456789",
        "create_time" : 1399906976,
        "forward_time" : 1399906978,
        "talk_time" : 1399906980,
        "end_time" : 1399906990,
        "entry_result": 1,
        "disconnect_reason" : 1100
    }'''


def post(connector: MangoConnector, path: str, payload: dict | str,
         api_salt: str | None = None) -> Webhook:
    """Mango's post of ``payload`` to ``path``, signed with the connector's key and salt (or
    with another salt, to forge it)."""
    return Webhook(path, signed_form(connector.api_key, api_salt or connector.api_salt, payload))


def valid(connector: MangoConnector) -> list[Sample]:
    unsigned = [
        Sample("connection check, unsigned", make_request(
            path=f"{HOOK_PATH}/ping", body=b"", remote_addr=SENDER_ADDR), [], signed=False),
        Sample("connection check by GET", make_request(
            method="GET", path=f"{HOOK_PATH}/ping", remote_addr=SENDER_ADDR), [], signed=False),
    ]
    if not connector.configured:
        return unsigned
    signed = [
        ("incoming call enters the IVR (doc p.49)", "/events/call", IVR_APPEARED, SIGNAL),
        ("outgoing call rings, seq as text (doc p.46)", "/events/call", OUTGOING_APPEARED, SIGNAL),
        ("outgoing call connected (doc p.46)", "/events/call", OUTGOING_CONNECTED, SIGNAL),
        ("outgoing call disconnected (doc p.46)", "/events/call", OUTGOING_DISCONNECTED, SIGNAL),
        ("leg on hold (doc p.54)", "/events/call", ON_HOLD, []),
        ("click-to-call leg (doc p.47)", "/events/call", CALLBACK_LEG, SIGNAL),
        ("real post: incoming leg rings 101", "/events/call", REAL_APPEARED, SIGNAL),
        ("summary, answered (doc p.16)", "/events/summary", SUMMARY_ANSWERED, SIGNAL),
        ("summary, outgoing unanswered (doc p.16)", "/events/summary",
         SUMMARY_OUTGOING_UNANSWERED, SIGNAL),
        ("recording started (doc p.13)", "/events/recording", RECORDING_STARTED, []),
        ("recording completed", "/events/recording", RECORDING_COMPLETED, SIGNAL),
        ("click-to-call accepted (doc p.47)", "/result/callback", CALLBACK_DONE, []),
        ("click-to-call refused", "/result/callback", CALLBACK_REFUSED, SIGNAL),
        ("hangup result (doc p.23)", "/result/call/hangup", HANGUP_RESULT, []),
        ("DTMF (doc p.14)", "/events/dtmf", DTMF, []),
        ("connection check, signed", "/ping", {}, []),
    ]
    return unsigned + [Sample(name, post(connector, path, payload).request(), expect)
                       for name, path, payload, expect in signed]


def forged(connector: MangoConnector, sample: Sample) -> Sample | None:
    """``sample`` signed with a salt other than the account's."""
    if not sample.signed:
        return None
    path = sample.request.path.removeprefix(HOOK_PATH)
    json_text = sample.request.first(sample.request.form(), "json")
    request = post(connector, path, json_text, api_salt=f"{connector.api_salt}-forged").request()
    return Sample(f"{sample.name} (forged)", request, [], signed=False)


def bad(connector: MangoConnector) -> list[Sample]:
    key, salt = connector.api_key or "key", connector.api_salt or "salt"

    def signed(path: str, payload: dict | str) -> Webhook:
        return Webhook(path, signed_form(key, salt, payload))

    no_json = {k: v for k, v in signed("/events/call", IVR_APPEARED).fields.items() if k != "json"}
    as_json = make_request(path=f"{HOOK_PATH}/events/call", body=json.dumps(IVR_APPEARED),
                           headers={"Content-Type": "application/json"})
    without = {k: v for k, v in IVR_APPEARED.items() if k != "entry_id"}
    return [
        Sample("doc p.51 example, not JSON", signed("/events/call", DOC_INVALID_CALL).request(), []),
        Sample("doc p.16 summary, not JSON", signed("/events/summary", DOC_INVALID_SUMMARY).request(), []),
        Sample("call event without entry_id", signed("/events/call", without).request(), []),
        Sample("json is a list", signed("/events/call", "[1, 2]").request(), []),
        Sample("timestamp is not a time", signed(
            "/events/call", {**IVR_APPEARED, "timestamp": "yesterday"}).request(), []),
        Sample("summary without entry_id", signed("/events/summary", {
            k: v for k, v in SUMMARY_ANSWERED.items() if k != "entry_id"}).request(), []),
        Sample("callback result without result", signed(
            "/result/callback", {"command_id": "c1"}).request(), []),
        Sample("signed form without json", Webhook("/events/call", no_json).request(), []),
        Sample("a JSON body instead of a form", as_json, []),
    ]
