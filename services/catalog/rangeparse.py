"""A parsing process of a big exchange file (see ``parallel``): it cuts one range of the file
into records and the records into blocks, hashes each block's bytes, and parses (as small
documents) only the blocks whose hash differs from the one the catalog kept when it last
applied them; it writes their stage rows, and every record's id and block, formatted for COPY,
to its stdout. Sending the same file again thus costs a read and a hash, not a parse.

It imports only the CommerceML reader, so it starts fast and stays small. Its output is a
series of frames, each a header line and maybe a payload:

    R <table> <bytes>\\n<rows>     rows for COPY (``seq`` first)
    P <records> <file bytes>\\n     progress since the last frame
    D <records> <file bytes> <0|1>\\n   done (the last progress; whether any stock was read)
    F <bytes>\\n<reason>            refused (the file is broken)
"""
from __future__ import annotations

import gc
import hashlib
import html
import io
import json
import os
import re
import sys
import zlib
from pathlib import Path

from crmhub.plugins.onec.commerceml import read_package
from crmhub.plugins.onec.xmlsafety import ExchangeFileError

BATCH_ROWS = 5_000  # rows per frame: small, the parsing processes stay small
# lxml's iterparse keeps its parsed document in a reference cycle, so a block's document is
# freed only by a full garbage collection, which the few Python objects a parse makes rarely
# trigger: the documents piled up to tens of MB. Collect after this many bytes were parsed.
COLLECT_AFTER_BYTES = 2 * 1024 * 1024
READ = 1024 * 1024
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile(r"[\\\t\n\r]")


def as_json(value) -> str | None:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if value else None


def rows_of(record_kind: str, record, kind: str):
    """The stage rows ``(table, row)`` of a product or an offer of a file of ``kind``."""
    if record_kind == "offer":
        if kind == "offers":
            yield "offers", (record.id, record.product_id, record.characteristic_id, record.article,
                             record.name or record.article or record.id,
                             as_json(dict(record.characteristics)), not record.deleted)
        for price in record.prices:
            yield "prices", (record.id, price.price_type_id or "", price.amount, price.currency)
        if record.stocks:
            for warehouse_id, quantity in record.stocks:
                yield "stock", (record.id, warehouse_id, quantity)
        elif record.quantity is not None and kind in ("offers", "rests"):
            yield "stock", (record.id, "", record.quantity)  # a total, no warehouses
    elif record_kind == "product":
        yield "products", (record.id, record.article, record.barcode, record.name or record.id,
                           record.unit, as_json(list(record.group_ids)), as_json(record.properties),
                           not record.deleted)


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = str(value)
    # Most values need no escaping; translate() with a table walks every character.
    return text.translate(_COPY_ESCAPES) if _SPECIAL.search(text) else text


def copy_line(row) -> str:
    return "\t".join(map(_copy_field, row)) + "\n"


class RangeStream(io.RawIOBase):
    """``prefix`` + bytes [start, end) of a file + ``suffix``, read lazily."""

    def __init__(self, path: Path, start: int, end: int, prefix: bytes = b"", suffix: bytes = b""):
        self._parts = [io.BytesIO(prefix), None, io.BytesIO(suffix)]
        self._file = open(path, "rb")
        self._file.seek(start)
        self._left = end - start

    def readable(self):
        return True

    def read(self, size=-1):
        size = READ if size is None or size < 0 else size
        while self._parts:
            part = self._parts[0]
            if part is None:
                data = self._file.read(min(size, self._left)) if self._left > 0 else b""
                self._left -= len(data)
            else:
                data = part.read(size)
            if data:
                return data
            self._parts.pop(0)
        return b""

    def close(self):
        self._file.close()
        super().close()


class Digests:
    """The block digests the catalog keeps for files of this kind, of the current generation
    (read-only, its own connection: imports take turns, so nothing changes them meanwhile)."""

    def __init__(self, dsn: str, kind: str, generation: int):
        import psycopg2

        self.kind, self.generation = kind, generation
        self.conn = psycopg2.connect(dsn, options="-csearch_path=catalog",
                                     application_name="crmhub-catalog-import")
        self.conn.autocommit = True

    def fetch(self, keys: list[str]) -> dict[str, str]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT block_key, digest FROM block_digests WHERE kind = %s AND "
                        "generation = %s AND block_key = ANY(%s)", (self.kind, self.generation, keys))
            return dict(cur.fetchall())


class RangeReader:
    """The records of bytes [start, end) of a file, each as its raw bytes: cut after each
    closing tag of the record element, without parsing."""

    def __init__(self, path: Path, start: int, end: int, close_tag: bytes):
        self.path, self.start, self.end, self.close_tag = path, start, end, close_tag
        self.consumed = 0

    def __iter__(self):
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            left, buf, pos = self.end - self.start, b"", 0
            while left > 0:
                block = fh.read(min(READ, left))
                if not block:
                    break
                left -= len(block)
                self.consumed += len(block)
                buf = buf[pos:] + block
                pos = 0
                while (found := buf.find(self.close_tag, pos)) >= 0:
                    stop = found + len(self.close_tag)
                    yield buf[pos:stop]
                    pos = stop
            if buf[pos:].strip():
                yield buf[pos:]  # not a whole record: the parser says what is wrong with it


class RangeParser:
    """One range of records, in blocks: each block's digest, and the stage rows of the records
    of the blocks that changed."""

    BOUNDARY = 256  # a block ends after a record whose id hashes to 0 modulo this...
    MAX_BLOCK = 2048  # ...or after this many records
    LOOKUP = 4  # blocks asked for at once

    def __init__(self, kind: str, prefix: bytes, suffix: bytes, encoding: str,
                 digests: Digests | None, seq_base: int, frame):
        self.kind, self.prefix, self.suffix, self.frame = kind, prefix, suffix, frame
        self.digests = digests
        self.id_pattern = re.compile(b"<" + "Ид".encode(encoding) + rb">([^<]*)</")
        self.encoding = encoding
        # An unchanged record is not parsed; whether the file carries stock is then told by
        # its bytes (Количество, КоличествоНаСкладе, Остатки all start alike).
        self.stock_marker = {"import": None, "prices": None}.get(kind, "Количеств".encode(encoding))
        # A digest covers what gives the bytes their meaning: the kind and the document head.
        self.salt = hashlib.blake2b(kind.encode() + prefix, digest_size=32).digest()
        self.seq = seq_base
        self.batches: dict[str, list[str]] = {}
        self.records = self.parsed = 0
        self.has_stock = False
        self.block: list[tuple[str | None, bytes]] = []
        self.pending: list[tuple[str, str, list]] = []  # finished blocks awaiting their lookup
        self.uncollected = 0  # bytes parsed since the last garbage collection

    def add(self, table: str, row: tuple) -> None:
        self.seq += 1
        lines = self.batches.setdefault(table, [])
        lines.append(copy_line((self.seq, *row)))
        if len(lines) >= BATCH_ROWS:
            self.flush(table)

    def flush(self, table: str) -> None:
        lines = self.batches.get(table)
        if lines:
            payload = "".join(lines).encode()
            self.frame(f"R {table} {len(payload)}", payload)
            lines.clear()

    def record_id(self, raw: bytes) -> str | None:
        found = self.id_pattern.search(raw)
        if not found:
            return None
        return html.unescape(found.group(1).decode(self.encoding).strip()) or None

    def record(self, raw: bytes) -> None:
        rid = self.record_id(raw)
        self.block.append((rid, raw))
        self.records += 1
        if len(self.block) >= self.MAX_BLOCK or (
                rid is not None and zlib.crc32(rid.encode()) % self.BOUNDARY == 0):
            self.end_block()

    def end_block(self) -> None:
        if not self.block:
            return
        first = self.block[0][0] or f"@{self.records}"
        key = f"{first}+{len(self.block)}"
        digest = hashlib.blake2b(digest_size=16, key=self.salt)
        for _, raw in self.block:
            digest.update(raw.strip())
        self.pending.append((key, digest.hexdigest(), self.block))
        self.block = []
        if len(self.pending) >= self.LOOKUP:
            self.settle()

    def settle(self) -> None:
        """Look the finished blocks up; parse those that changed."""
        if not self.pending:
            return
        known = self.digests.fetch([key for key, _, _ in self.pending]) if self.digests else {}
        for key, digest, block in self.pending:
            changed = known.get(key) != digest
            self.add("blocks", (key, digest, changed))
            for rid, raw in block:
                if rid is not None:
                    self.add("digests", (rid, key, changed))
                if not changed and not self.has_stock and self.stock_marker:
                    self.has_stock = self.stock_marker in raw
            if changed:
                self.parse([raw for _, raw in block])
        self.pending = []

    def parse(self, raws: list[bytes]) -> None:
        self.parsed += len(raws)
        document = self.prefix + b"".join(raws) + self.suffix
        for record_kind, record in read_package(io.BytesIO(document), kind_hint=self.kind):
            if record_kind in ("offer", "product"):
                for table, row in rows_of(record_kind, record, self.kind):
                    self.has_stock = self.has_stock or table == "stock"
                    self.add(table, row)
        self.uncollected += len(document)
        if self.uncollected >= COLLECT_AFTER_BYTES:
            gc.collect()
            self.uncollected = 0

    def finish(self) -> None:
        self.end_block()
        self.settle()
        for table in list(self.batches):
            self.flush(table)


def parse_range(path: Path, start: int, end: int, prefix: bytes, suffix: bytes, kind: str,
                encoding: str, record: str, seq_base: int, out, dsn: str | None = None,
                generation: int = 0) -> None:
    """Write the frames of one range to the binary stream ``out``."""

    def frame(header: str, payload: bytes = b""):
        out.write(header.encode() + b"\n" + payload)

    try:
        digests = Digests(dsn, kind, generation) if dsn else None
        parser = RangeParser(kind, prefix, suffix, encoding, digests, seq_base, frame)
        reader = RangeReader(path, start, end, b"</" + record.encode(encoding) + b">")
        reported_records = reported_bytes = 0
        for raw in reader:
            parser.record(raw)
            if parser.records - reported_records >= 10_000:
                frame(f"P {parser.records - reported_records} {reader.consumed - reported_bytes}")
                reported_records, reported_bytes = parser.records, reader.consumed
        parser.finish()
        frame(f"D {parser.records - reported_records} {reader.consumed - reported_bytes} "
              f"{int(parser.has_stock)}")
    except ExchangeFileError as exc:
        reason = exc.reason.encode()
        frame(f"F {len(reason)}", reason)
    out.flush()


def main(argv=None) -> int:
    gc.freeze()  # what is imported lives as long as the process: collections skip it
    path, start, end, prefix, suffix, kind, encoding, record, seq_base, generation = argv or sys.argv[1:]
    parse_range(Path(path), int(start), int(end), bytes.fromhex(prefix), bytes.fromhex(suffix),
                kind, encoding, record, int(seq_base), sys.stdout.buffer,
                os.environ.get("CRMHUB_IMPORT_DSN") or None, int(generation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
