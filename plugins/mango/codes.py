"""Mango's numeric codes in words, for operators (PROTOCOLS.md §1.1).

Both tables are hierarchical: a code Mango does not document is read by its longest known
prefix ("1124" → "112" → by callee), as Mango itself says to treat an unknown code as its class.
"""
from __future__ import annotations

# disconnect_reason of events/call and events/summary.
DISCONNECT_REASONS = {
    "10": "normal",
    "1100": "normal", "110": "ended",
    "1110": "by caller", "1111": "no answer in time", "111": "by caller",
    "1120": "by callee", "1121": "busy", "1122": "rejected", "1123": "do not disturb",
    "112": "by callee",
    "113": "callee unavailable",
    "1140": "region barred", "114": "region barred",
    "115": "black or white list",
    "1164": "all operators busy", "116": "group or queue failed",
    "117": "forwarding scheme",
    "1181": "external system command", "118": "external system command",
    "119": "inactive or out of schedule",
    "2": "billing",
    "32": "wrong number",
    "42": "unreachable",
    "5001": "overload", "5003": "technical failure", "5": "server error",
}

# result of commands (HTTP answers, /result/* webhooks) and the code of a 420 answer.
RESULT_CLASSES = {
    "1": "success",
    "2": "billing restriction",
    "31": "wrong parameter",
    "32": "wrong number",
    "33": "no such object",
    "3": "bad request",
    "4": "command cannot be carried out",
    "5": "Mango server error",
}

BUSY_REASONS = {"1121", "1122", "1123"}
FAILED_REASON_PREFIXES = ("32", "42", "5", "2")


def _meaning(code: str, table: dict[str, str]) -> str | None:
    for length in range(len(code), 0, -1):
        if code[:length] in table:
            return table[code[:length]]
    return None


def describe(code, table: dict[str, str]) -> str | None:
    """``"1121 busy"``: the code and its meaning; None when there is no code."""
    if code in (None, ""):
        return None
    code = str(code).strip()
    meaning = _meaning(code, table) if code.isdigit() else None
    return f"{code} {meaning}" if meaning else code


def describe_reason(code) -> str | None:
    return describe(code, DISCONNECT_REASONS)


def describe_result(code) -> str | None:
    return describe(code, RESULT_CLASSES)


def is_success(result: int) -> bool:
    """Results of the 1000 class (1000, and undocumented ones such as 1090) mean done."""
    return 1000 <= result < 2000


def outcome_of_reason(code) -> str:
    """The outcome of a call nobody talked on, by its disconnect_reason."""
    code = str(code or "").strip()
    if code in BUSY_REASONS:
        return "busy"
    if code.startswith(FAILED_REASON_PREFIXES):
        return "failed"
    return "missed"
