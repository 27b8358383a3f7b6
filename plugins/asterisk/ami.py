"""The Asterisk Manager Interface wire format (PROTOCOLS.md §1.8), without any socket.

A message is a block of ``Key: Value`` lines ended by a blank line; the server first sends one
banner line (``Asterisk Call Manager/5.0.1``) that belongs to no message. Asterisk ends lines
with ``\\r\\n``, but captures and some proxies use ``\\n``, so both are read. Values may contain
": " (``AppData: Dial(PJSIP/101,30,tT)``), so a line splits at its first colon only. Key case
differs between versions (``Uniqueid`` in 12+, ``UniqueID`` in Dial of 11), so lookups ignore it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

BANNER_PREFIX = "Asterisk Call Manager/"
# A peer that never ends a line or a message must not grow our buffers without bound.
MAX_LINE_BYTES = 64 * 1024
MAX_MESSAGE_LINES = 2000


class AmiProtocolError(Exception):
    """The byte stream is not AMI (or is abusing it); the connection should be dropped."""


class AmiMessage(Mapping):
    """One AMI message: its fields in wire order, looked up without regard to key case (the
    first of repeated keys wins a lookup; ``pairs`` keeps them all). Lines without a colon,
    such as the output of ``Action: Command`` on old versions, are kept in ``lines``."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), lines: Iterable[str] = ()):
        self.pairs = list(pairs)
        self.lines = list(lines)
        self._index: dict[str, str] = {}
        for key, value in self.pairs:
            self._index.setdefault(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for key, _ in self.pairs:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __repr__(self) -> str:
        return f"AmiMessage({self.pairs!r})"

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    def text(self, key: str) -> str | None:
        """A field's value, None when absent, empty or one of Asterisk's placeholders."""
        value = (self.get(key) or "").strip()
        return None if value in ("", "<unknown>", "<none>") else value


class AmiParser:
    """Incremental parser: feed it bytes as they arrive, get the complete messages back."""

    def __init__(self):
        self.banner: str | None = None
        self._buffer = b""
        self._pairs: list[tuple[str, str]] = []
        self._lines: list[str] = []
        self._first_line = True

    def feed(self, data: bytes) -> list[AmiMessage]:
        self._buffer += data
        messages = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE_BYTES:
                    raise AmiProtocolError(f"a line longer than {MAX_LINE_BYTES} bytes")
                return messages
            raw, self._buffer = self._buffer[:end], self._buffer[end + 1:]
            message = self._line(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
            if message is not None:
                messages.append(message)

    def _line(self, line: str) -> AmiMessage | None:
        first, self._first_line = self._first_line, False
        if first and line.startswith(BANNER_PREFIX):
            self.banner = line
            return None
        if not line.strip():
            if not (self._pairs or self._lines):
                return None  # blank lines between messages
            message = AmiMessage(self._pairs, self._lines)
            self._pairs, self._lines = [], []
            return message
        if len(self._pairs) + len(self._lines) >= MAX_MESSAGE_LINES:
            raise AmiProtocolError(f"a message of more than {MAX_MESSAGE_LINES} lines")
        key, colon, value = line.partition(":")
        if colon and key and " " not in key.strip():
            self._pairs.append((key.strip(), value.strip()))
        else:
            self._lines.append(line)
        return None


def parse(data: bytes) -> list[AmiMessage]:
    """Every complete message of a finished stream (a capture file, a test transcript)."""
    return AmiParser().feed(data + b"\r\n\r\n")


def format_action(action: str, fields: Mapping[str, object] | Iterable[tuple[str, object]] = ()
                  ) -> bytes:
    """An action as bytes to send. ``fields`` may repeat a key (as pairs, or a list value),
    which Originate needs for several ``Variable`` lines. A CR or LF inside a value would let
    one field start a new action (header injection), so it is refused."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    pairs = [("Action", action)]
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        pairs.extend((key, v) for v in values if v is not None)
    lines = []
    for key, value in pairs:
        value = str(value)
        if not key or any(c in key for c in ":\r\n ") or "\r" in value or "\n" in value:
            raise ValueError(f"cannot send AMI field {key!r}: {value!r}")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


def format_message(fields: Mapping[str, object] | Iterable[tuple[str, object]],
                   line_end: str = "\r\n") -> bytes:
    """A server-side message (response or event) as bytes: the simulator's half of the wire."""
    items = fields.pairs if isinstance(fields, AmiMessage) else (
        fields.items() if isinstance(fields, Mapping) else fields)
    return ("".join(f"{key}: {value}{line_end}" for key, value in items) + line_end).encode()
