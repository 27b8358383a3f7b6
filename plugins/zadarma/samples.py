"""Conformance samples of the Zadarma connector, built by the simulator from the fields and
signed strings of Zadarma's official PHP SDK, signed with the configured ``api_secret`` and
sent from an address ``allowed_ips`` lets in. No recorded Zadarma traffic was found to replay.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from typing import TYPE_CHECKING

from crmhub.plugins.api import Sample, make_request
from crmhub.plugins.zadarma import simulator
from crmhub.plugins.zadarma.signing import SIGNED_FIELDS

if TYPE_CHECKING:
    from crmhub.plugins.zadarma.connector import ZadarmaConnector

START = dt.datetime(2024, 5, 14, 10, 30, 5)  # account-local, as Zadarma writes call_start
CALL = {"call_start": "2024-05-14 10:30:05", "pbx_call_id": "in_5e1f0c2a9d7b4e6f8a1b2c3d4e5f6a7b",
        "caller_id": "79161234567", "called_did": "74951234567"}


def source_address(connector: ZadarmaConnector) -> str:
    """Zadarma's documented address, or the first one ``allowed_ips`` lets in."""
    networks = connector.allowed_networks
    if not networks or any(ipaddress.ip_address(simulator.ZADARMA_ADDRESS) in n for n in networks):
        return simulator.ZADARMA_ADDRESS
    return str(networks[0].network_address)


def _sample(connector, name, notification, expect, signed=True) -> Sample:
    return Sample(name, notification.request(source_address(connector)), expect, signed)


def valid(connector: ZadarmaConnector) -> list[Sample]:
    echo = _sample(connector, "URL check (zd_echo)", simulator.echo_check("a1b2c3"), [], False)
    secret = connector.api_secret
    if not secret:
        return [echo]  # nothing else can be authenticated
    scenarios = {
        "answered": simulator.answered_incoming(secret=secret, pbx_call_id=CALL["pbx_call_id"],
                                                start=START, call_id_with_rec="1715671805.4411"),
        "missed": simulator.missed_incoming(secret=secret, pbx_call_id="in_missed01", start=START,
                                            disposition="cancel"),
        "outgoing": simulator.outgoing(secret=secret, pbx_call_id="out_0a1b2c", start=START,
                                       recorded=True, call_id_with_rec="1715671805.4412"),
    }
    samples = [echo]
    for scenario, notifications in scenarios.items():
        for number, notification in enumerate(notifications, 1):
            event = _event_of(notification)
            samples.append(_sample(connector, f"{scenario} call #{number}: {event}", notification,
                                   ["call_signal"]))
    ivr = simulator.notification("NOTIFY_IVR", {**CALL, "wait_dtmf[name]": "menu",
                                                "wait_dtmf[digits]": "2",
                                                "wait_dtmf[default_behaviour]": "0"}, secret=secret)
    samples.append(_sample(connector, "NOTIFY_IVR with a DTMF choice", ivr, ["call_signal"]))
    sms = simulator.notification("NOTIFY_SMS", {"caller_id": "79161234567", "text": "hi"},
                                 secret=secret)
    samples.append(_sample(connector, "an event type not mapped (NOTIFY_SMS)", sms, []))
    return samples


def forged(connector: ZadarmaConnector, sample: Sample) -> Sample | None:
    """A mapped event signed with another secret; an unmapped one (whose signature cannot be
    checked) without its Signature header."""
    if not sample.signed:
        return None
    request = sample.request
    fields = {key: values[0] for key, values in request.form().items()}
    event = fields.pop("event")
    secret = f"not-{connector.api_secret}" if event in SIGNED_FIELDS else None
    notification = simulator.notification(event, fields, secret=secret)
    return Sample(f"{sample.name} (forged)", notification.request(request.remote_addr), [],
                  signed=False)


def bad(connector: ZadarmaConnector) -> list[Sample]:
    secret = connector.api_secret or "unset"
    end = {**CALL, "internal": "101", "duration": "12", "disposition": "answered",
           "status_code": "16", "is_recorded": "0", "call_id_with_rec": ""}
    without = {
        "NOTIFY_END without disposition": ("NOTIFY_END", {k: v for k, v in end.items()
                                                          if k != "disposition"}),
        "NOTIFY_INTERNAL without internal": ("NOTIFY_INTERNAL", CALL),
        "NOTIFY_START without pbx_call_id": ("NOTIFY_START", {k: v for k, v in CALL.items()
                                                              if k != "pbx_call_id"}),
        "call_start that is no time": ("NOTIFY_START", {**CALL, "call_start": "yesterday"}),
        "duration that is no number": ("NOTIFY_END", {**end, "duration": "long"}),
        "a post without event": ("", CALL),
    }
    samples = [_sample(connector, name, simulator.notification(event, fields, secret=secret), [])
               for name, (event, fields) in without.items()]
    address = source_address(connector)
    samples += [
        Sample("GET without zd_echo", make_request("GET", simulator.HOOK_PATH,
                                                   remote_addr=address), []),
        Sample("a JSON body", make_request(path=simulator.HOOK_PATH, body=b'{"event": "NOTIFY_START"}',
                                           headers={"Content-Type": "application/json"},
                                           remote_addr=address), []),
    ]
    return samples


def _event_of(notification: simulator.Notification) -> str:
    return notification.request().form()["event"][0]
