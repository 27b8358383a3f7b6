"""Telling extensions from clients by the shape of channel names and numbers."""
import pytest

from crmhub.plugins.asterisk.channels import (
    Opening,
    channel_peer,
    classify_call,
    dialed_number,
    dialed_party,
)

INBOUND = ("from-trunk", "from-pstn", "from-external")


@pytest.mark.parametrize("channel, peer", [
    ("PJSIP/101-00000002", "101"),
    ("PJSIP/101-0000001", "101"),
    ("SIP/102-0000a1b2", "102"),
    ("SIP/ddddd-00000000", "ddddd"),
    ("Local/259@default-00000000;1", "259"),
    ("Local/259@default-00000000;1<ZOMBIE>", "259"),
    ("PJSIP/trunk-0000003f", "trunk"),
    ("PJSIP/101", "101"),
    ("", None),
    (None, None),
])
def test_the_peer_of_a_channel(channel, peer):
    assert channel_peer(channel) == peer


@pytest.mark.parametrize("dial_string, number", [
    ("trunk/79161234567", "79161234567"), ("79161234567@trunk", "79161234567"),
    ("101", "101"), ("PJSIP/101&PJSIP/102", "101"), ("uuuuu", None), ("", None)])
def test_the_number_in_a_dial_string(dial_string, number):
    assert dialed_number(dial_string) == number


def test_a_named_peer_is_known_by_its_number_and_a_trunk_reaches_a_client():
    assert dialed_party("SIP/ddddd-00000000", None, "259").extension == "259"
    assert dialed_party("PJSIP/102-00000001", "79161234567").extension == "102"
    client = dialed_party("PJSIP/trunk-00000031", "79161234567", "79161234567")
    assert (client.extension, client.number) == (None, "79161234567")


def test_a_call_entering_an_inbound_context_is_inbound_with_its_did():
    opening = classify_call(context="from-trunk", caller="79161234567",
                            channel="PJSIP/trunk-00000001", exten="74951234567",
                            inbound_contexts=INBOUND)
    assert opening == Opening("inbound", client_number="79161234567", line="74951234567")
    assert classify_call(context="from-pstn", caller="79161234567", channel="SIP/t-00000001",
                         exten="s", inbound_contexts=INBOUND).line is None


def test_extension_to_number_is_outbound_and_extension_to_extension_internal():
    outbound = classify_call(context="from-internal", caller="101", channel="PJSIP/101-00000001",
                             exten="89161234567", inbound_contexts=INBOUND)
    assert outbound == Opening("outbound", client_number="89161234567", own_extension="101")
    internal = classify_call(context="from-internal", caller=None, channel="PJSIP/101-00000001",
                             exten="102", inbound_contexts=INBOUND)
    assert internal == Opening("internal", own_extension="101")


def test_an_originated_channel_leaves_the_direction_open():
    opening = classify_call(context="from-internal", caller="101", channel="PJSIP/101-00000001",
                            exten="s", inbound_contexts=INBOUND)
    assert opening == Opening(own_extension="101")


def test_a_long_caller_outside_the_inbound_contexts_still_comes_in():
    opening = classify_call(context="custom-did", caller="+79161234567", channel="SIP/gw-00000001",
                            exten="4951234567", inbound_contexts=INBOUND)
    assert (opening.direction, opening.client_number) == ("inbound", "+79161234567")
