"""Reading parties out of Asterisk channel names and numbers.

Asterisk does not say who is a client and who is an employee: the connector tells them apart
by shape. An extension is a short number (2 to 6 digits), or the peer of a channel named after
one (``PJSIP/101-00000002``, ``SIP/102-0000a1b2``, ``Local/103@from-queue-00000001;1``); a
client's number is a longer one. Short service numbers (112) therefore read as extensions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

EXTENSION = re.compile(r"\d{2,6}")
PHONE = re.compile(r"\+?\d{7,20}")
# The per-channel counter Asterisk appends to a peer name ("-00000002", 8 hex digits).
CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]{4,8}$")
# Dialplan extensions that are not numbers anybody dialed.
SPECIAL_EXTENS = {"s", "h", "i", "t", "o", "a", "e", "T", "failed"}


def is_extension(value: str | None) -> bool:
    return bool(value and EXTENSION.fullmatch(value))


def phone_number(value: str | None) -> str | None:
    """``value`` as a client's number (digits, maybe a leading +), or None if it is not one."""
    if not value:
        return None
    compact = re.sub(r"[\s()\-]", "", value)
    return compact if PHONE.fullmatch(compact) else None


def channel_peer(channel: str | None) -> str | None:
    """The peer of a channel name: ``PJSIP/101-00000002`` → ``101``, ``Local/259@default-
    00000000;1`` → ``259``, ``SIP/trunk-0000a1b2`` → ``trunk``; None for an empty name."""
    if not channel or "/" not in channel:
        return None
    peer = channel.split("/", 1)[1]
    peer = re.sub(r"<[A-Z]+>$", "", peer)  # <ZOMBIE>, <MASQ> after a masquerade
    peer = peer.split(";", 1)[0]
    if "@" in peer:
        return peer.split("@", 1)[0] or None
    return CHANNEL_SUFFIX.sub("", peer) or None


def extension_of_channel(channel: str | None) -> str | None:
    peer = channel_peer(channel)
    return peer if is_extension(peer) else None


def dialed_number(dial_string: str | None) -> str | None:
    """The number in a Dial() argument: ``trunk/79161234567``, ``79161234567@trunk``, ``101``."""
    if not dial_string:
        return None
    target = dial_string.split("&", 1)[0].split(",", 1)[0]
    target = target.rsplit("/", 1)[-1].split("@", 1)[0]
    return target if (is_extension(target) or phone_number(target)) else None


def dialed_exten(exten: str | None) -> str | None:
    """A channel's ``Exten`` when it is a number someone dialed (not ``s``, ``h``...)."""
    if not exten or exten in SPECIAL_EXTENS:
        return None
    return exten if (is_extension(exten) or phone_number(exten)) else None


@dataclass
class Party:
    """Who a dialed channel reaches: an employee's extension, or a client's number."""

    extension: str | None = None
    number: str | None = None


def dialed_party(channel: str | None, *numbers: str | None) -> Party:
    """The party a Dial reaches, from the destination channel and the numbers known for it
    (DestCallerIDNum in 12+, the channel's own CallerIDNum, the dial string's number).
    XiVO-style peers have names, not numbers (``SIP/ddddd``): their number tells then."""
    by_channel = extension_of_channel(channel)
    if by_channel:
        return Party(extension=by_channel)
    for number in numbers:
        if is_extension(number):
            return Party(extension=number)
    for number in numbers:
        if phone_number(number):
            return Party(number=phone_number(number))
    return Party()


@dataclass
class Opening:
    """What the first channel of a call tells about it."""

    direction: str | None = None
    client_number: str | None = None
    line: str | None = None
    own_extension: str | None = None  # the employee's extension of an outgoing or internal call


def classify_call(*, context: str | None, caller: str | None, channel: str | None,
                  exten: str | None, inbound_contexts: tuple[str, ...]) -> Opening:
    """Direction and parties of a call from its first channel. A call entering an inbound
    context comes from a trunk; otherwise an extension calling a long number goes out, an
    extension calling an extension is internal, and a long caller number comes in. When the
    channel does not say yet (``Exten: s`` of an originated call), the direction waits for the
    first Dial."""
    exten = dialed_exten(exten)
    if context in inbound_contexts:
        return Opening("inbound", client_number=caller, line=exten)
    own = caller if is_extension(caller) else extension_of_channel(channel)
    if own:
        if is_extension(exten):
            return Opening("internal", own_extension=own)
        if phone_number(exten):
            return Opening("outbound", client_number=exten, own_extension=own)
        return Opening(own_extension=own)
    if phone_number(caller):
        return Opening("inbound", client_number=caller, line=exten)
    return Opening()
