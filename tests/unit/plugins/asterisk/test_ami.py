"""The AMI wire format: the real Asterisk 11 capture (panoramisk, see plugins/asterisk/
SOURCES.md), the banner, both line ends, and actions that cannot smuggle a second action."""
from collections import Counter

import pytest

from crmhub.plugins.asterisk.ami import (
    AmiParser,
    AmiProtocolError,
    format_action,
    format_message,
    parse,
)
from crmhub.plugins.asterisk.scenarios import CAPTURE, capture_events


def test_the_capture_parses_into_its_action_response_and_748_events():
    messages = parse(CAPTURE.read_bytes())
    assert messages[0]["Action"] == "Originate"
    assert (messages[1].response, messages[1]["Message"]) == (
        "Success", "Originate successfully queued")
    events = [m for m in messages if m.event]
    assert len(events) == 748 == len(messages) - 2
    counts = Counter(m.event for m in events)
    assert (counts["Newchannel"], counts["Dial"], counts["Bridge"], counts["Hangup"]) == (
        4, 4, 6, 4)


def test_capture_fields_keep_values_with_colons_and_empty_values():
    events = capture_events()
    newchannel = events[0]
    assert newchannel["CallerIDNum"] == "" and newchannel.text("CallerIDNum") is None
    assert newchannel["Channel"] == "Local/259@default-00000000;1"
    hangup = next(m for m in events if m.event == "Hangup")
    assert (hangup["Cause"], hangup["Cause-txt"]) == ("16", "Normal Clearing")
    app_data = [m["AppData"] for m in events if "AppData" in m]
    assert "filename call recording: none" in app_data
    assert ("User,CHANNEL: Local/259@default-00000000;2,XIVO_USERID: ,XIVO_SRCNUM: ,"
            "XIVO_CALLORIGIN: intern,XIVO_DSTID: 148") in app_data


def test_keys_are_looked_up_regardless_of_case():
    dial = next(m for m in capture_events() if m.event == "Dial")
    assert dial["UniqueID"] == dial["uniqueid"] == dial.get("Uniqueid") == "1414510600.1"
    assert "DESTUNIQUEID" in dial


def test_the_banner_is_no_message_and_crlf_and_lf_both_end_lines():
    parser = AmiParser()
    stream = (b"Asterisk Call Manager/5.0.1\r\n"
              b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n"
              b"Event: FullyBooted\nPrivilege: system,all\nStatus: Fully Booted\n\n")
    messages = parser.feed(stream)
    assert parser.banner == "Asterisk Call Manager/5.0.1"
    assert [dict(m) for m in messages] == [
        {"Response": "Success", "Message": "Authentication accepted"},
        {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}]


def test_messages_split_anywhere_across_reads_are_put_together():
    data = format_message({"Event": "Hangup", "Uniqueid": "1.1", "Cause": "16"}) * 3
    parser = AmiParser()
    messages = [m for byte in range(len(data)) for m in parser.feed(data[byte:byte + 1])]
    assert [m["Uniqueid"] for m in messages] == ["1.1"] * 3


def test_lines_without_a_key_are_kept_aside():
    [message] = parse(b"Response: Follows\r\nPrivilege: Command\r\nName/username   Host\r\n"
                      b"--END COMMAND--\r\n\r\n")
    assert message.response == "Follows"
    assert message.lines == ["Name/username   Host", "--END COMMAND--"]


def test_endless_lines_are_a_protocol_error():
    with pytest.raises(AmiProtocolError):
        AmiParser().feed(b"Event: " + b"x" * 100_000)


def test_actions_are_serialized_with_crlf_and_repeated_keys():
    data = format_action("Originate", [("Channel", "PJSIP/101"), ("Variable", "A=1"),
                                       ("Variable", "B=2"), ("ActionID", "c-1")])
    assert data == (b"Action: Originate\r\nChannel: PJSIP/101\r\nVariable: A=1\r\n"
                    b"Variable: B=2\r\nActionID: c-1\r\n\r\n")
    assert format_action("Ping", {"Variable": ["A=1", "B=2"]}).count(b"Variable") == 2
    [parsed] = parse(data)
    assert parsed.pairs[2:4] == [("Variable", "A=1"), ("Variable", "B=2")]


@pytest.mark.parametrize("value", ["101\r\nAction: Command", "x\nCommand: core stop now"])
def test_a_line_break_in_a_value_is_refused(value):
    with pytest.raises(ValueError):
        format_action("Originate", {"Channel": value})
