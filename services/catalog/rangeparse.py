"""A parsing process of a big exchange file (see ``parallel``): it reads one range of records as
a small document and writes their stage rows, formatted for COPY, to its stdout.

It imports only the CommerceML reader, so it starts fast and stays small. Its output is a
series of frames, each a header line and maybe a payload:

    R <table> <bytes>\\n<rows>     rows for COPY (``seq`` first)
    P <records> <file bytes>\\n     progress since the last frame
    D <records> <file bytes> <0|1>\\n   done (the last progress; whether any stock was read)
    F <bytes>\\n<reason>            refused (the file is broken)
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from crmhub.plugins.onec.commerceml import read_package
from crmhub.plugins.onec.xmlsafety import ExchangeFileError

BATCH_ROWS = 20_000
READ = 1024 * 1024
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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
    return str(value).translate(_COPY_ESCAPES)


def copy_line(row) -> str:
    return "\t".join(map(_copy_field, row)) + "\n"


class RangeStream(io.RawIOBase):
    """``prefix`` + bytes [start, end) of a file + ``suffix``, read lazily."""

    def __init__(self, path: Path, start: int, end: int, prefix: bytes = b"", suffix: bytes = b""):
        self._parts = [io.BytesIO(prefix), None, io.BytesIO(suffix)]
        self._file = open(path, "rb")
        self._file.seek(start)
        self._left = end - start
        self.consumed = 0  # bytes of the file (not of the wrapper) read so far

    def readable(self):
        return True

    def read(self, size=-1):
        size = READ if size is None or size < 0 else size
        while self._parts:
            part = self._parts[0]
            if part is None:
                data = self._file.read(min(size, self._left)) if self._left > 0 else b""
                self._left -= len(data)
                self.consumed += len(data)
            else:
                data = part.read(size)
            if data:
                return data
            self._parts.pop(0)
        return b""

    def close(self):
        self._file.close()
        super().close()


def parse_range(path: Path, start: int, end: int, prefix: bytes, suffix: bytes, kind: str,
                seq_base: int, out) -> None:
    """Write the frames of one range to the binary stream ``out``."""
    batches: dict[str, list[str]] = {}
    seq, records, has_stock, reported = seq_base, 0, False, 0

    def frame(header: str, payload: bytes = b""):
        out.write(header.encode() + b"\n" + payload)

    try:
        stream = RangeStream(path, start, end, prefix, suffix)
        for record_kind, record in read_package(stream, kind_hint=kind):
            if record_kind not in ("offer", "product"):
                continue
            records += 1
            for table, row in rows_of(record_kind, record, kind):
                has_stock = has_stock or table == "stock"
                seq += 1
                lines = batches.setdefault(table, [])
                lines.append(copy_line((seq, *row)))
                if len(lines) >= BATCH_ROWS:
                    payload = "".join(lines).encode()
                    frame(f"R {table} {len(payload)}", payload)
                    lines.clear()
            if records % 10_000 == 0:
                frame(f"P 10000 {stream.consumed - reported}")
                reported = stream.consumed
        for table, lines in batches.items():
            if lines:
                payload = "".join(lines).encode()
                frame(f"R {table} {len(payload)}", payload)
        frame(f"D {records % 10_000} {stream.consumed - reported} {int(has_stock)}")
    except ExchangeFileError as exc:
        reason = exc.reason.encode()
        frame(f"F {len(reason)}", reason)
    out.flush()


def main(argv=None) -> int:
    path, start, end, prefix, suffix, kind, seq_base = argv or sys.argv[1:]
    parse_range(Path(path), int(start), int(end), bytes.fromhex(prefix), bytes.fromhex(suffix),
                kind, int(seq_base), sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
