"""Where call recordings are kept, and how they are served back in byte ranges.

The telephony service downloads a recording once (``fetch.fetch_into_store``) and serves it
from here afterwards: vendor links expire and vendors delete old recordings.

``RecordingStore`` is the interface; ``LocalDirectoryStore`` the default (a directory on the
service's disk). Another backend (S3, a NAS mount with its own layout) plugs in through the
``RECORDING_STORE`` config key, see ``store_from_config``.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import eventlet.patcher
from eventlet import tpool

PIECE = 64 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Our own ids ("call-<uuid>"), but checked anyway: a key becomes a file name. The first
# character is not a dot, so "." / ".." and our temp files (".tmp-*") cannot be named.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


class RecordingNotFound(LookupError):
    """No recording is stored under the key."""


@dataclass(frozen=True)
class StoredRecording:
    key: str
    size: int
    content_type: str
    sha256: str


class RecordingReader(ABC):
    """An open recording: its size and type, and its bytes by range.

    Close it when done (it is a context manager). To stream it in a werkzeug response:
    ``Response(reader.read_range(start, end), ...)`` plus ``response.call_on_close(reader.close)``.
    """

    key: str
    size: int
    content_type: str
    sha256: str | None  # None when the store does not know it (an ETag candidate otherwise)

    @abstractmethod
    def read_range(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (``end`` None: to the last byte), in pieces of
        at most 64 KiB. Ranges from ``parse_range`` are already clipped to the size."""

    def close(self) -> None:
        """Release what ``open`` took (a file handle)."""

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class RecordingStore(ABC):
    """Keeps recordings by key. Implementations must be safe to share between green threads."""

    @abstractmethod
    def save(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredRecording:
        """Store the bytes of ``chunks`` under ``key``, replacing what was there. All or
        nothing: if ``chunks`` raises, the exception propagates and nothing is stored (an
        earlier recording under the key stays as it was)."""

    @abstractmethod
    def open(self, key: str) -> RecordingReader:
        """Raises RecordingNotFound."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the recording; False if there was none."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe file name, else raise ValueError."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValueError(f"invalid recording key {key!r}: up to 200 of A-Z a-z 0-9 . _ -, "
                         "not starting with a dot")
    return key


# -- the local directory store -----------------------------------------------------------------

class LocalDirectoryStore(RecordingStore):
    """Recordings as files under ``root``, created on demand.

    Layout: ``<root>/<h[0:2]>/<h[2:4]>/<key>.data``, where ``h`` is the sha256 of the key, so no
    directory grows past a few thousand entries. Beside each ``.data`` file, ``<key>.meta`` is a
    JSON sidecar with the content type, size and sha256 (a content type cannot be derived
    from a vendor's file reliably). Every name ends in ``.data`` or ``.meta``, so no key's data
    file can be another key's sidecar.

    ``save`` streams into a temp file in the target directory, fsyncs it and renames it into
    place, then does the same for the sidecar. The ``.data`` file decides whether a recording
    exists; a sidecar that does not match it (missing, or left from an earlier recording by a
    crash between the two renames) is ignored, and the type falls back to
    application/octet-stream.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self.root)!r})"

    def _paths(self, key: str) -> tuple[Path, Path]:
        digest = hashlib.sha256(check_key(key).encode()).hexdigest()
        folder = self.root / digest[:2] / digest[2:4]
        return folder / f"{key}.data", folder / f"{key}.meta"

    def save(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredRecording:
        data_path, meta_path = self._paths(key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0

        def write_chunks(out: BinaryIO) -> None:
            nonlocal size
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)

        _write_atomically(data_path, write_chunks)
        stored = StoredRecording(key, size, content_type or DEFAULT_CONTENT_TYPE, digest.hexdigest())
        meta = json.dumps({"content_type": stored.content_type, "size": size,
                           "sha256": stored.sha256}).encode()
        _write_atomically(meta_path, lambda out: out.write(meta))
        return stored

    def open(self, key: str) -> RecordingReader:
        data_path, meta_path = self._paths(key)
        try:
            handle = open(data_path, "rb")
        except FileNotFoundError:
            raise RecordingNotFound(f"no recording {key!r}") from None
        size = os.fstat(handle.fileno()).st_size
        meta = _read_meta(meta_path)
        if meta.get("size") != size:
            meta = {}
        return _FileReader(key, handle, size, meta.get("content_type") or DEFAULT_CONTENT_TYPE,
                           meta.get("sha256"))

    def exists(self, key: str) -> bool:
        return self._paths(key)[0].is_file()

    def delete(self, key: str) -> bool:
        data_path, meta_path = self._paths(key)
        meta_path.unlink(missing_ok=True)
        try:
            data_path.unlink()
        except FileNotFoundError:
            return False
        return True


class _FileReader(RecordingReader):
    def __init__(self, key: str, handle: BinaryIO, size: int, content_type: str, sha256: str | None):
        self.key, self.size, self.content_type, self.sha256 = key, size, content_type, sha256
        self._handle = handle

    def read_range(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        last = self.size - 1 if end is None else min(end, self.size - 1)
        position = max(start, 0)
        fd = self._handle.fileno()  # fails at once on a closed reader, not at the first next()
        return self._pieces(fd, position, last)

    @staticmethod
    def _pieces(fd: int, position: int, last: int) -> Iterator[bytes]:
        # pread: no shared file position, so two ranges of one reader can be streamed at once.
        while position <= last:
            piece = os.pread(fd, min(PIECE, last - position + 1), position)
            if not piece:
                return  # the file shrank under us; the caller sees a short body
            yield piece
            position += len(piece)

    def close(self) -> None:
        self._handle.close()


def _write_atomically(path: Path, write) -> None:
    """Write through ``write(file)`` into a temp file beside ``path``, then rename it over
    ``path``: readers see the old file or the complete new one, never a partial one. Both the
    file and the rename are synced, so a recording the database calls stored survives a crash."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            _sync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:  # eventlet.Timeout and GreenletExit too: never leave a temp file
        Path(temp_name).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        _sync(folder)
    finally:
        os.close(folder)


def _sync(fd: int) -> None:
    """``os.fsync`` in a thread of its own under eventlet: a busy disk takes milliseconds to
    sync, and in the service's one thread every green thread (a popup's signals) would wait."""
    if eventlet.patcher.is_monkey_patched("thread"):
        tpool.execute(os.fsync, fd)
    else:
        os.fsync(fd)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


# -- configuration -----------------------------------------------------------------------------

def store_from_config(config: dict) -> RecordingStore:
    """The store the config selects.

    By default a ``LocalDirectoryStore`` in ``RECORDINGS_DIR`` (default
    ``<DATA_DIR>/recordings``, DATA_DIR defaulting to ``var``).

    ``RECORDING_STORE: "package.module:ClassName"`` selects another store. The class must be a
    ``RecordingStore`` (subclass it, or ``RecordingStore.register`` it) and is built with
    ``ClassName.from_config(config)`` if it has that classmethod, else ``ClassName(config)``;
    it reads its own settings from the config (e.g. an ``S3_RECORDINGS`` block). A third-party
    store is an installed package, named here; nothing else is needed.
    """
    spec = config.get("RECORDING_STORE")
    if not spec:
        root = config.get("RECORDINGS_DIR") or Path(config.get("DATA_DIR") or "var") / "recordings"
        return LocalDirectoryStore(root)
    module_name, _, class_name = str(spec).partition(":")
    if not module_name or not class_name:
        raise ValueError(f"RECORDING_STORE {spec!r}: expected 'package.module:ClassName'")
    store_class = getattr(importlib.import_module(module_name), class_name)
    factory = getattr(store_class, "from_config", store_class)
    store = factory(config)
    if not isinstance(store, RecordingStore):
        raise TypeError(f"RECORDING_STORE {spec!r} built a {type(store).__name__}, "
                        "which is not a RecordingStore")
    return store


# -- HTTP ranges -------------------------------------------------------------------------------

class RangeNotSatisfiable(ValueError):
    """Answer 416 with ``Content-Range: bytes */<size>`` (see ``content_range``)."""

    def __init__(self, header: str, size: int):
        super().__init__(f"range {header!r} is outside a {size}-byte recording")
        self.size = size


_SINGLE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)  # RFC 9110 14.1.1


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) that a ``Range`` header asks of a ``size``-byte file.

    None means "send the whole file with 200": no header, another unit, a malformed value or
    several ranges (RFC 9110 lets a server ignore Range; one file is simpler than multipart).
    Raises RangeNotSatisfiable when the range starts at or past the end, or asks for the last
    0 bytes (answer 416).
    """
    if not header:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header, size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored, not refused
    if start >= size:
        raise RangeNotSatisfiable(header, size)
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def content_range(start: int, end: int, size: int) -> str:
    """The ``Content-Range`` value of a 206 answer."""
    return f"bytes {start}-{end}/{size}"
