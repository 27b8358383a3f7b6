"""Hostile-input guards for 1C exchange uploads: XML prolog checks, a locked-down iterparse,
zip extraction with bomb/traversal limits, and exchange file name classification.

Everything here treats the uploaded bytes as untrusted: a site's exchange URL is reachable by
anyone who has (or steals) the 1C credentials, and the files are big enough to hurt.
"""
import os
import re
import shutil
import stat
import zipfile
import zlib

from lxml import etree

PROLOG_LIMIT = 64 * 1024
CHUNK = 1024 * 1024

# libxml2 never fetches, expands or validates anything: the prolog check below already refuses
# DTDs, these options are the second fence should one slip through.
_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                       remove_blank_text=True, remove_comments=True, remove_pis=True)


class ExchangeFileError(Exception):
    """An uploaded exchange file was refused; ``reason`` is a human readable English sentence."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsafeXml(ExchangeFileError):
    pass


class NotXml(ExchangeFileError):
    pass


class BrokenXml(ExchangeFileError):
    pass


class UnsafeArchive(ExchangeFileError):
    pass


class UnknownFile(ExchangeFileError):
    pass


def _decode_prolog(data: bytes) -> str:
    # Markup is ASCII in every encoding 1C uses (UTF-8, windows-1251), so latin-1 maps it byte for
    # byte; UTF-16 is decoded properly so a DOCTYPE cannot hide behind NUL bytes.
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("latin-1")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    if data[:2] == b"<\x00":
        return data.decode("utf-16-le", "replace")
    if data[:2] == b"\x00<":
        return data.decode("utf-16-be", "replace")
    return data.decode("latin-1")


def check_prolog(first_bytes: bytes) -> None:
    """Refuse DTDs (entity bombs, external entities) and non-XML before libxml2 sees the file."""
    text = _decode_prolog(first_bytes)
    pos = len(text) - len(text.lstrip())
    if not text.startswith("<", pos):
        raise NotXml("the file is not XML (it does not start with '<')")
    while True:
        pos += len(text[pos:]) - len(text[pos:].lstrip())
        if pos >= len(text):
            break
        if text.startswith("<?", pos):
            end = text.find("?>", pos)
            if end < 0:
                break
            pos = end + 2
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            if end < 0:
                break
            pos = end + 3
        elif text.startswith("<!", pos):
            word = text[pos + 2:pos + 9].upper()
            what = "ENTITY" if word.startswith("ENTITY") else "DOCTYPE" if word == "DOCTYPE" else "markup"
            raise UnsafeXml(f"{what} declarations are not allowed in exchange files")
        else:
            return  # the root element starts here (or garbage the parser will report)
    if len(first_bytes) >= PROLOG_LIMIT:
        raise UnsafeXml(f"the XML prolog is longer than {PROLOG_LIMIT // 1024} KiB")


class _Prefixed:
    """A non-seekable stream with its already-read head put back in front."""

    def __init__(self, head: bytes, stream):
        self._head, self._stream = head, stream

    def read(self, size=-1):
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._head = self._head + self._stream.read(), b""
        else:
            data, self._head = self._head[:size], self._head[size:]
        return data


def safe_iterparse(path_or_file, events=("end",), tag=None):
    """``lxml.etree.iterparse`` with DTDs, entities and network off; the prolog is checked first.

    Yields ``(event, element)``; malformed input raises :class:`BrokenXml` mid-iteration.
    """
    owned = isinstance(path_or_file, (str, bytes, os.PathLike))
    stream = open(path_or_file, "rb") if owned else path_or_file
    try:
        start = stream.tell() if getattr(stream, "seekable", lambda: False)() else None
        head = stream.read(PROLOG_LIMIT)
        check_prolog(head)
        if start is None:
            stream = _Prefixed(head, stream)
        else:
            stream.seek(start)
        try:
            yield from etree.iterparse(stream, events=events, tag=tag, **_PARSER_OPTIONS)
        except etree.XMLSyntaxError as exc:
            raise BrokenXml(f"malformed XML at line {exc.lineno}: {exc.msg}") from exc
    finally:
        if owned:
            stream.close()


_DRIVE = re.compile(r"^[A-Za-z]:")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _check_member_name(name: str) -> None:
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeArchive(f"unsafe entry name {name!r}")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchive(f"absolute entry path {name!r}")
    if ".." in name.split("/"):
        raise UnsafeArchive(f"entry path {name!r} escapes the destination")


def unpack_zip(zip_path, dest_dir, *, max_total_bytes=2_000_000_000, max_entries=10_000, max_ratio=200,
               allowed=lambda name: True) -> list[str]:
    """Extract ``zip_path`` into ``dest_dir``, counting the bytes actually inflated (headers lie).

    Returns the extracted file names (relative); on any refusal removes what it wrote and raises
    :class:`UnsafeArchive`.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeArchive("not a zip archive") from exc
    os.makedirs(dest_dir, exist_ok=True)
    dest_root = os.path.realpath(dest_dir)
    written: list[str] = []
    made_dirs: list[str] = []
    try:
        with archive:
            members = archive.infolist()
            if len(members) > max_entries:
                raise UnsafeArchive(f"the archive has {len(members)} entries, more than {max_entries}")
            total = 0
            for info in members:
                name = info.filename
                _check_member_name(name)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchive(f"symbolic link entry {name!r}")
                if info.is_dir():
                    continue  # directories come from the file paths themselves
                if not allowed(name):
                    raise UnsafeArchive(f"entry {name!r} is not an exchange file")
                target = os.path.join(dest_root, *name.split("/"))
                parent = os.path.dirname(target)
                for missing in _missing_dirs(parent, dest_root):
                    os.mkdir(missing)
                    made_dirs.append(missing)
                if os.path.commonpath([os.path.realpath(parent), dest_root]) != dest_root:
                    raise UnsafeArchive(f"entry path {name!r} escapes the destination")
                # O_EXCL: a duplicate entry or a planted symlink must not be written through.
                try:
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
                except FileExistsError:
                    raise UnsafeArchive(f"entry {name!r} would overwrite an existing file") from None
                written.append(name)
                size, limit_ratio = 0, max(info.compress_size, 1) * max_ratio
                with os.fdopen(fd, "wb") as out, archive.open(info) as src:
                    while chunk := src.read(CHUNK):
                        size += len(chunk)
                        total += len(chunk)
                        if total > max_total_bytes:
                            raise UnsafeArchive(f"the archive inflates to more than {max_total_bytes} bytes")
                        if size > CHUNK and size > limit_ratio:
                            raise UnsafeArchive(f"entry {name!r} compresses more than {max_ratio}:1")
                        out.write(chunk)
    except UnsafeArchive:
        _remove(dest_root, written, made_dirs)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError) as exc:
        _remove(dest_root, written, made_dirs)
        raise UnsafeArchive(f"corrupt or unsupported zip archive: {exc}") from exc
    return written


def _missing_dirs(path: str, root: str) -> list[str]:
    missing = []
    while path != root and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing[::-1]


def _remove(root: str, names: list[str], dirs: list[str]) -> None:
    for name in names:
        try:
            os.unlink(os.path.join(root, *name.split("/")))
        except FileNotFoundError:
            pass
    for path in reversed(dirs):
        shutil.rmtree(path, ignore_errors=True)


_XML_KINDS = {"import": "import", "offers": "offers", "prices": "prices", "rests": "rests",
              "orders": "orders", "documents": "orders"}
_XML_NAME = re.compile(r"(import|offers|prices|rests|orders|documents)[\w.-]*\.xml")
_ZIP_NAME = re.compile(r"[\w.-]+\.zip")
_IMAGE_NAME = re.compile(r"import_files(/[\w.-]+)+\.(jpg|jpeg|png|gif|webp)")


def exchange_file_kind(name: str) -> str:
    """Classify an uploaded 1C file name: import / offers / prices / rests / orders / image / zip."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        raise UnknownFile(f"unsafe file name {name!r}")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise UnknownFile(f"unsafe file name {name!r}")
    lowered = name.lower()
    if match := _XML_NAME.fullmatch(lowered):
        return _XML_KINDS[match.group(1)]
    if _ZIP_NAME.fullmatch(lowered):
        return "zip"
    if _IMAGE_NAME.fullmatch(lowered):
        return "image"
    raise UnknownFile(f"{name!r} is not a known 1C exchange file")
