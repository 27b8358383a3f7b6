"""Event scripts for the AMI simulator: the real Asterisk 11 capture shipped in this package
(SOURCES.md), and synthesized calls in the event names and fields of Asterisk 12+ (as the AMI
event reference at docs.asterisk.org lists them) or of Asterisk 11.

Each script is a list of events, each an ordered dict of AMI fields; Cdr times are the PBX's
local time, as cdr_manager writes them.
"""
from __future__ import annotations

from pathlib import Path

from crmhub.plugins.asterisk.ami import AmiMessage, parse

CAPTURE = Path(__file__).with_name("panoramisk_originate_with_events.ami.txt")
# The call in the capture: every channel belongs to the Local channel the Originate created.
CAPTURE_CALL_KEY = "1414510600.0"

Script = list[dict[str, str]]


def capture_events() -> list[AmiMessage]:
    """The events of the panoramisk capture (its Action and Response left out)."""
    return [message for message in parse(CAPTURE.read_bytes()) if message.event]


def _channel(channel: str, uid: str, linkedid: str, *, state: str = "4", caller: str = "",
             context: str = "from-internal", exten: str = "s", prefix: str = "") -> dict:
    states = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}
    fields = {"Channel": channel, "ChannelState": state, "ChannelStateDesc": states[state],
              "CallerIDNum": caller, "CallerIDName": "", "ConnectedLineNum": "",
              "ConnectedLineName": "", "Language": "en", "AccountCode": "", "Context": context,
              "Exten": exten, "Priority": "1", "Uniqueid": uid, "Linkedid": linkedid}
    return {prefix + key: value for key, value in fields.items()}


def _event(name: str, *blocks: dict, **extra: str) -> dict:
    event = {"Event": name, "Privilege": "call,all"}
    for block in blocks:
        event.update(block)
    event.update(extra)
    return event


def _hangup(block: dict, cause: str = "16", text: str = "Normal Clearing") -> dict:
    return _event("Hangup", block, **{"Cause": cause, "Cause-txt": text})


def _cdr(*, uid: str, source: str, destination: str, channel: str, dest_channel: str,
         start: str, answer: str, end: str, billable: int, disposition: str,
         context: str = "from-internal") -> dict:
    return {"Event": "Cdr", "Privilege": "cdr,all", "AccountCode": "", "Source": source,
            "Destination": destination, "DestinationContext": context,
            "CallerID": f'"" <{source}>', "Channel": channel, "DestinationChannel": dest_channel,
            "LastApplication": "Dial", "LastData": f"{dest_channel.split('-')[0]},30",
            "StartTime": start, "AnswerTime": answer, "EndTime": end, "Duration": "67",
            "BillableSeconds": str(billable), "Disposition": disposition,
            "AMAFlags": "DOCUMENTATION", "UniqueID": uid, "UserField": ""}


def answered_incoming(*, linkedid: str = "1718000000.10", caller: str = "79161234567",
                      did: str = "74951234567", extension: str = "101",
                      with_cdr: bool = True) -> Script:
    """A client calls our DID; extension 101 rings, answers, talks 60 s; 101 hangs up first."""
    agent_uid = linkedid.rsplit(".", 1)[0] + "." + str(int(linkedid.rsplit(".", 1)[1]) + 1)
    trunk = _channel("PJSIP/trunk-00000010", linkedid, linkedid, caller=caller,
                     context="from-trunk", exten=did)
    agent = _channel(f"PJSIP/{extension}-00000011", agent_uid, linkedid, state="0",
                     caller=extension, exten=extension)
    dest = {("Dest" + k): v for k, v in agent.items()}
    script = [
        _event("Newchannel", trunk),
        _event("Newexten", trunk, Application="Dial", AppData=f"PJSIP/{extension},30"),
        _event("Newchannel", agent),
        _event("DialBegin", trunk, dest, DialString=extension),
        _event("Newstate", {**agent, "ChannelState": "5", "ChannelStateDesc": "Ringing"}),
        _event("Newstate", {**agent, "ChannelState": "6", "ChannelStateDesc": "Up"}),
        _event("DialEnd", trunk, dest, DialStatus="ANSWER"),
        _event("BridgeEnter", trunk, BridgeUniqueid="b-1", BridgeType="basic"),
        _event("BridgeEnter", agent, BridgeUniqueid="b-1", BridgeType="basic"),
        _event("BridgeLeave", agent, BridgeUniqueid="b-1", BridgeType="basic"),
        _hangup(agent),
        _hangup(trunk),
    ]
    if with_cdr:
        script.append(_cdr(uid=linkedid, source=caller, destination=extension,
                           channel=trunk["Channel"], dest_channel=agent["Channel"],
                           start="2024-06-10 12:00:00", answer="2024-06-10 12:00:07",
                           end="2024-06-10 12:01:07", billable=60, disposition="ANSWERED"))
    return script


def missed_incoming(*, linkedid: str = "1718000100.20", caller: str = "79031112233",
                    did: str = "74951234567", extensions=("101", "102")) -> Script:
    """A client calls a ring group; nobody answers; the client gives up. Asterisk 12+ writes a
    NO ANSWER record for every phone that rang."""
    base, seq = linkedid.rsplit(".", 1)
    trunk = _channel("PJSIP/trunk-00000020", linkedid, linkedid, caller=caller,
                     context="from-trunk", exten=did)
    script = [_event("Newchannel", trunk)]
    agents = []
    for n, extension in enumerate(extensions, start=1):
        agent = _channel(f"PJSIP/{extension}-0000002{n}", f"{base}.{int(seq) + n}", linkedid,
                         state="0", caller=extension, exten=extension)
        agents.append(agent)
        script += [_event("Newchannel", agent),
                   _event("DialBegin", trunk, {("Dest" + k): v for k, v in agent.items()},
                          DialString=extension)]
    for agent in agents:
        script += [_event("DialEnd", trunk, {("Dest" + k): v for k, v in agent.items()},
                          DialStatus="CANCEL"),
                   _hangup(agent, "26", "Answered elsewhere")]
    script.append(_hangup(trunk))
    for agent in agents:
        script.append(_cdr(uid=linkedid, source=caller, destination=did,
                           channel=trunk["Channel"], dest_channel=agent["Channel"],
                           start="2024-06-10 12:05:00", answer="", end="2024-06-10 12:05:25",
                           billable=0, disposition="NO ANSWER", context="from-trunk"))
    return script


def outgoing(*, linkedid: str = "1718000200.30", extension: str = "101",
             number: str = "79161234567", command_id: str | None = "cmd-1") -> Script:
    """A click-to-call as Originate makes it: Asterisk rings our extension (a Dial with no
    caller channel), then, the extension having answered, dials the client through the trunk."""
    base, seq = linkedid.rsplit(".", 1)
    own = _channel(f"PJSIP/{extension}-00000030", linkedid, linkedid, state="0",
                   caller=extension)
    client = _channel("PJSIP/trunk-00000031", f"{base}.{int(seq) + 1}", linkedid, state="0",
                      caller=number, exten=number)
    no_caller = {key: "" for key in _channel("", "", "")}
    script = [_event("Newchannel", own)]
    if command_id:
        script.append(_event("VarSet", own, Variable="CRM_COMMAND_ID", Value=command_id))
    as_dest = {("Dest" + k): v for k, v in own.items()}
    client_dest = {("Dest" + k): v for k, v in client.items()}
    script += [
        _event("DialBegin", no_caller, as_dest, DialString=extension),
        _event("DialEnd", no_caller, as_dest, DialStatus="ANSWER"),
        _event("Newchannel", client),
        _event("DialBegin", own, client_dest, DialString=f"trunk/{number}"),
        _event("Newstate", {**client, "ChannelState": "6", "ChannelStateDesc": "Up"}),
        _event("DialEnd", own, client_dest, DialStatus="ANSWER"),
        _event("BridgeEnter", own, BridgeUniqueid="b-3"),
        _event("BridgeEnter", client, BridgeUniqueid="b-3"),
        _hangup(client),
        _hangup(own),
        _cdr(uid=linkedid, source=extension, destination=number, channel=own["Channel"],
             dest_channel=client["Channel"], start="2024-06-10 12:10:00",
             answer="2024-06-10 12:10:12", end="2024-06-10 12:12:12", billable=120,
             disposition="ANSWERED"),
    ]
    return script


def answered_incoming_v11(*, uid: str = "1400000000.5", caller: str = "79161234567",
                          did: str = "74951234567", extension: str = "101") -> Script:
    """The answered incoming call as Asterisk 11 reports it: no Linkedid, ``Dial`` with a
    SubEvent, ``Bridge`` with a Bridgestate, ``UniqueID`` spelled so in Dial."""
    agent_uid = uid.rsplit(".", 1)[0] + "." + str(int(uid.rsplit(".", 1)[1]) + 1)
    trunk = {"Channel": "SIP/trunk-00000005", "ChannelState": "4", "ChannelStateDesc": "Ring",
             "CallerIDNum": caller, "CallerIDName": "", "AccountCode": "", "Exten": did,
             "Context": "from-pstn", "Uniqueid": uid}
    agent = {"Channel": f"SIP/{extension}-00000006", "ChannelState": "0",
             "ChannelStateDesc": "Down", "CallerIDNum": extension, "CallerIDName": "",
             "AccountCode": "", "Exten": "", "Context": "from-internal", "Uniqueid": agent_uid}
    return [
        _event("Newchannel", trunk),
        _event("Newchannel", agent),
        _event("Dial", SubEvent="Begin", Channel=trunk["Channel"], Destination=agent["Channel"],
               CallerIDNum=caller, CallerIDName="", ConnectedLineNum="", ConnectedLineName="",
               UniqueID=uid, DestUniqueID=agent_uid, Dialstring=extension),
        _event("Newstate", {**agent, "ChannelState": "5", "ChannelStateDesc": "Ringing"}),
        _event("Bridge", Bridgestate="Link", Bridgetype="core", Channel1=trunk["Channel"],
               Channel2=agent["Channel"], Uniqueid1=uid, Uniqueid2=agent_uid,
               CallerID1=caller, CallerID2=extension),
        _event("Bridge", Bridgestate="Unlink", Bridgetype="core", Channel1=trunk["Channel"],
               Channel2=agent["Channel"], Uniqueid1=uid, Uniqueid2=agent_uid,
               CallerID1=caller, CallerID2=extension),
        _hangup({"Channel": agent["Channel"], "Uniqueid": agent_uid}),
        _event("Dial", SubEvent="End", Channel=trunk["Channel"], UniqueID=uid,
               DialStatus="ANSWER"),
        _hangup({"Channel": trunk["Channel"], "Uniqueid": uid}),
    ]


SCENARIOS = {"capture": capture_events, "answered_incoming": answered_incoming,
             "missed_incoming": missed_incoming, "outgoing": outgoing,
             "answered_incoming_v11": answered_incoming_v11}
