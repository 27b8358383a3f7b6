"""Phone numbers: one number however it is written (``8 (916) 123-45-67``, ``+7 916 1234567``
and ``79161234567`` are the same +79161234567)."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

DEFAULT_REGION = "RU"
_SIP = re.compile(r"^(sip|sips|tel):", re.I)


@dataclass(frozen=True)
class Phone:
    raw: str
    e164: str | None
    extension: str | None = None

    def as_dict(self) -> dict:
        return {"raw": self.raw, "e164": self.e164, "extension": self.extension}


# A call's number comes with each of its signals, a client's with each form: parsing one
# costs about 55 us, a repeat a dictionary lookup. Phone is immutable, so it is shared.
@functools.lru_cache(maxsize=16384)
def normalize(raw: str, region: str = DEFAULT_REGION) -> Phone:
    """Parse ``raw``; ``e164`` is None when the text is not a valid phone number."""
    text = (raw or "").strip()
    candidate = _SIP.sub("", text)
    if candidate.lower().startswith("tel:"):
        candidate = candidate[4:]
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return Phone(text, None)
    if not phonenumbers.is_valid_number(number):
        return Phone(text, None)
    return Phone(text, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                 number.extension or None)


def e164_or_none(raw: str, region: str = DEFAULT_REGION) -> str | None:
    return normalize(raw, region).e164
