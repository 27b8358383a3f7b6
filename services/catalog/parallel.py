"""Reading a large exchange file with one process per core.

Parsing is what an import of a big file spends most of its time on, and one process parses on
one core. The records of a file (``Товар`` in ``Товары``, ``Предложение`` in ``Предложения``)
are independent, so the file is cut between two records into ranges: each range is parsed by a
process of its own (``rangeparse``) as a small document (the file's own declaration and root start tag, a
wrapper, the range, the closing tags), which turns its records into rows for COPY. The rest of
the file (what comes before and after the records: the package, price types, warehouses, the
classifier) is read by the importer itself, which also checks it first (DOCTYPE, entities).

A file that cannot be cut this way (prefixed element names, an unknown encoding, no record
container) is read by one process, as any small file is.
"""
from __future__ import annotations

import io
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from crmhub.plugins.onec.xmlsafety import ExchangeFileError
from crmhub.services.catalog.rangeparse import RangeStream

MIN_PARALLEL_BYTES = 32 * 1024 * 1024
SCAN = 1024 * 1024
CONTAINERS = {"import": ("Каталог", "Товары", "Товар"),
              "offers": ("ПакетПредложений", "Предложения", "Предложение"),
              "prices": ("ПакетПредложений", "Предложения", "Предложение"),
              "rests": ("ПакетПредложений", "Предложения", "Предложение")}
_DECLARATION = re.compile(rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*\?>)")
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9_.-]+)[\"']")
_ROOT = "КоммерческаяИнформация"


@dataclass(frozen=True)
class Plan:
    """How a file is cut: the records lie in ``[records_start, records_end)``, split at
    ``cuts``; ``prefix``/``suffix`` make a range a document of its own."""

    records_start: int
    records_end: int
    cuts: tuple[int, ...]
    prefix: bytes
    suffix: bytes
    encoding: str
    record: str

    def ranges(self) -> list[tuple[int, int]]:
        bounds = (self.records_start, *self.cuts, self.records_end)
        return list(zip(bounds, bounds[1:]))


def _find_forward(fh, needle: bytes, start: int, limit: int) -> int:
    """Offset of the first ``needle`` at or after ``start`` (scanning at most ``limit`` bytes),
    or -1."""
    fh.seek(start)
    carry, offset = b"", start
    while offset - start < limit:
        block = fh.read(SCAN)
        if not block:
            return -1
        found = (carry + block).find(needle)
        if found >= 0:
            return offset - len(carry) + found
        carry = block[-len(needle):]
        offset += len(block)
    return -1


def _find_backward(fh, needle: bytes, size: int) -> int:
    fh.seek(max(0, size - SCAN))
    tail = fh.read()
    found = tail.rfind(needle)
    return -1 if found < 0 else size - len(tail) + found


def plan(path: Path, kind: str, parts: int, min_bytes: int = MIN_PARALLEL_BYTES) -> Plan | None:
    """Where to cut ``path`` into ``parts`` ranges of whole records; None if it is small or
    cannot be cut safely."""
    size = path.stat().st_size
    if parts < 1 or size < min_bytes or kind not in CONTAINERS:
        return None
    outer, container, record = CONTAINERS[kind]
    with open(path, "rb") as fh:
        head = fh.read(SCAN)
        declaration = _DECLARATION.match(head)
        encoding = "utf-8"
        if declaration and (found := _ENCODING.search(declaration.group(2))):
            encoding = found.group(1).decode().lower()
        if encoding not in ("utf-8", "utf8", "windows-1251", "cp1251"):
            return None
        tag = lambda name: name.encode(encoding)  # noqa: E731 - local shorthand
        root_at = head.find(b"<" + tag(_ROOT))
        root_end = head.find(b">", root_at)
        if root_at < 0 or root_end < 0:
            return None
        opening = b"<" + tag(container) + b">"
        start = _find_forward(fh, opening, 0, size)
        end = _find_backward(fh, b"</" + tag(container) + b">", size)
        if start < 0 or end <= start:
            return None
        start += len(opening)
        closing = b"</" + tag(record) + b">"
        cuts = []
        for i in range(1, parts):
            at = _find_forward(fh, closing, start + (end - start) * i // parts, SCAN * 16)
            if at < 0 or at + len(closing) >= end:
                break
            cut = at + len(closing)
            if not cuts or cut > cuts[-1]:
                cuts.append(cut)
    prefix = ((declaration.group(2) + b"\n" if declaration else b"") + head[root_at:root_end + 1]
              + b"<" + tag(outer) + b"><" + tag(container) + b">")
    suffix = b"</" + tag(container) + b"></" + tag(outer) + b"></" + tag(_ROOT) + b">"
    return Plan(start, end, tuple(cuts), prefix, suffix, encoding, record)


def skeleton(path: Path, plan_: Plan) -> io.RawIOBase:
    """The file without its records: what the importer reads itself."""
    size = path.stat().st_size
    return _Chain(RangeStream(path, 0, plan_.records_start), RangeStream(path, plan_.records_end, size))


class _Chain(io.RawIOBase):
    def __init__(self, *streams):
        self._streams = list(streams)

    def readable(self):
        return True

    def read(self, size=-1):
        while self._streams:
            data = self._streams[0].read(size)
            if data:
                return data
            self._streams.pop(0).close()
        return b""


def _read_exactly(stream, size: int) -> bytes:
    """``size`` bytes (a pipe may hand out less per read, a green one does)."""
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise ValueError("the output ended inside a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _frames(proc, messages: queue.Queue) -> None:
    """Turn a parsing process's output into messages (in a thread per process)."""
    out = proc.stdout
    try:
        while header := out.readline():
            kind, *fields = header.decode().split()
            if kind == "R":
                messages.put(("rows", fields[0], _read_exactly(out, int(fields[1])).decode()))
            elif kind == "P":
                messages.put(("read", int(fields[0]), int(fields[1]), False))
            elif kind == "D":
                proc.wait()
                messages.put(("done", int(fields[0]), int(fields[1]), fields[2:] == ["1"]))
                return
            elif kind == "F":
                messages.put(("failed", _read_exactly(out, int(fields[0])).decode(errors="replace")))
                return
        if proc.wait() != 0:
            messages.put(("failed", "a parsing process stopped unexpectedly"))
    except (OSError, ValueError, IndexError) as exc:
        messages.put(("failed", f"a parsing process sent garbage: {exc}"))


def read_ranges(path: Path, kind: str, plan_: Plan, stager, on_read, dsn: str | None = None,
                generation: int = 0) -> bool:
    """Parse the ranges of ``plan_`` in parallel into ``stager``; returns whether any record
    carried stock. ``dsn``: where the parsing processes find the digests of records applied
    before (none: every record is parsed). Raises ExchangeFileError with the first failure."""
    messages: queue.Queue = queue.Queue(maxsize=8)
    env = dict(os.environ, CRMHUB_IMPORT_DSN=dsn or "")  # not on the command line: it may hold a password
    procs = [subprocess.Popen([sys.executable, "-m", "crmhub.services.catalog.rangeparse", str(path),
                               str(start), str(end), plan_.prefix.hex(), plan_.suffix.hex(), kind,
                               plan_.encoding, plan_.record, str((i + 1) * 10**12), str(generation)],
                              stdout=subprocess.PIPE, env=env)
             for i, (start, end) in enumerate(plan_.ranges())]
    readers = [threading.Thread(target=_frames, args=(proc, messages), daemon=True) for proc in procs]
    for reader in readers:
        reader.start()
    running, has_stock, failure = len(procs), False, None
    try:
        while running:
            message = messages.get()
            if message[0] == "rows":
                if failure is None:
                    stager.add_text(message[1], message[2])
            elif message[0] == "failed":
                running -= 1
                failure = failure or message[1]
                for proc in procs:
                    proc.kill()  # the file is refused: the other ranges are of no use
            else:
                on_read(message[1], message[2])
                if message[0] == "done":
                    running -= 1
                    has_stock = has_stock or message[3]
    finally:
        for proc in procs:
            if failure is not None:
                proc.kill()
            proc.wait()
        if failure is not None:
            while True:  # let the readers finish on a killed process's closed pipe
                try:
                    messages.get_nowait()
                except queue.Empty:
                    break
    if failure is not None:
        raise ExchangeFileError(failure)
    return has_stock


def workers_for(config_value=None) -> int:
    return max(1, int(config_value or os.cpu_count() or 1))
