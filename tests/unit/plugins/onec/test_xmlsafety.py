"""Hostile uploads: DTD/entity bombs, broken and non-XML files, zip bombs and traversal, file names."""
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from crmhub.plugins.onec.xmlsafety import (
    PROLOG_LIMIT,
    BrokenXml,
    ExchangeFileError,
    NotXml,
    UnknownFile,
    UnsafeArchive,
    UnsafeXml,
    check_prolog,
    exchange_file_kind,
    safe_iterparse,
    unpack_zip,
)

SAMPLES = Path(__file__).parent / "samples"
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<КоммерческаяИнформация><Каталог><Наименование>&lol4;</Наименование></Каталог></КоммерческаяИнформация>
""".encode()
EXTERNAL_ENTITY = ('\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<!-- export -->\n'
                   '<!doctype x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                   "<КоммерческаяИнформация><Ид>&xxe;</Ид></КоммерческаяИнформация>").encode()


def events(source, **kw):
    """Collects what safe_iterparse yields before it raises, so a test can show nothing leaked."""
    seen = []
    try:
        for _, el in safe_iterparse(source, **kw):
            seen.append(el.tag)
    except ExchangeFileError as exc:
        return seen, exc
    return seen, None


@pytest.mark.parametrize("path", sorted(SAMPLES.rglob("*.xml")), ids=lambda p: p.name)
def test_real_samples_pass_the_prolog_check(path):
    check_prolog(path.read_bytes()[:PROLOG_LIMIT])   # UTF-8 with BOM and windows-1251 alike


@pytest.mark.parametrize("data", [
    BILLION_LAUGHS, EXTERNAL_ENTITY, b"<!ENTITY a 'x'><r/>",
    b'<?xml version="1.0"?><?pi x?><!-- a --><!DocType r SYSTEM "http://evil/x.dtd"><r/>',
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode("utf-16"),
], ids=["billion-laughs", "external-entity", "bare-entity", "doctype-after-pi-and-comment", "utf-16"])
def test_dtds_are_refused_before_parsing(data):
    with pytest.raises(UnsafeXml, match="DOCTYPE|ENTITY"):
        check_prolog(data[:PROLOG_LIMIT])
    seen, error = events(io.BytesIO(data))
    assert seen == [] and isinstance(error, UnsafeXml)


def test_a_prolog_too_long_to_inspect_is_refused():
    data = b'<?xml version="1.0"?>' + b"<!-- padding -->" * (PROLOG_LIMIT // 16) + b"<!DOCTYPE r><r/>"
    with pytest.raises(UnsafeXml, match="longer than 64 KiB"):
        check_prolog(data[:PROLOG_LIMIT])


@pytest.mark.parametrize("data", [b"", b"  \n", b"PK\x03\x04zip", b"\xef\xbb\xbfimport", b"{\"json\": 1}"])
def test_non_xml_is_refused(data):
    with pytest.raises(NotXml):
        check_prolog(data)
    seen, error = events(io.BytesIO(data))
    assert seen == [] and isinstance(error, NotXml)


def test_billion_laughs_file_on_disk_yields_nothing(tmp_path):
    path = tmp_path / "import.xml"
    path.write_bytes(BILLION_LAUGHS)
    seen, error = events(path)
    assert seen == [] and isinstance(error, UnsafeXml)
    assert "DOCTYPE" in error.reason


def test_truncated_file_is_broken_xml(tmp_path):
    data = (SAMPLES / "offers0_1.xml").read_bytes()
    path = tmp_path / "offers.xml"
    path.write_bytes(data[: len(data) // 2])
    seen, error = events(path, events=("end",), tag="{*}Предложение")
    assert isinstance(error, BrokenXml) and "line" in error.reason
    assert 0 < len(seen) < 44     # what came before the cut was streamed


@pytest.mark.parametrize("data", [b"<r>&undefined;</r>", b"<r><a></r>", b"<r/>trailing", b"<r>\xff\xfe</r>"])
def test_malformed_documents_are_broken_xml(data):
    seen, error = events(io.BytesIO(data))
    assert isinstance(error, BrokenXml)


def test_windows_1251_orders_are_decoded_from_the_declaration():
    parsed = {el.findtext("Ид"): el.findtext("Контрагенты/Контрагент/Наименование")
              for _, el in safe_iterparse(SAMPLES / "orders.xml", tag="Документ")}
    assert parsed == {"20": "Петр Петров"}
    bitrix = SAMPLES / "bitrix-query-response-full.xml"
    docs = [el.findtext("Ид") for _, el in safe_iterparse(bitrix, tag="Документ")]
    assert docs == ["132", "133"]


def test_file_objects_seekable_or_not_are_read_from_their_start():
    data = (SAMPLES / "offers.xml").read_bytes()
    stream = io.BytesIO(b"junk" + data)
    stream.seek(4)
    assert len([1 for _ in safe_iterparse(stream, tag="{*}Предложение")]) == 5

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.inner = io.BytesIO(data)

        def readable(self):
            return True

        def seekable(self):
            return False

        def read(self, size=-1):
            return self.inner.read(size)

    assert len([1 for _ in safe_iterparse(Pipe(), tag="{*}Предложение")]) == 5


# --- zip archives ----------------------------------------------------------------------------------


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def leftovers(dest):
    return sorted(str(p.relative_to(dest)) for p in Path(dest).rglob("*"))


def test_unpacks_an_exchange_archive(tmp_path):
    archive = make_zip(tmp_path / "v8.zip", [("import.xml", b"<a/>"), ("offers.xml", b"<b/>"),
                                            ("import_files/ab/abcdef.jpg", b"\xff\xd8jpeg"),
                                            ("import_files/", b"")])
    dest = tmp_path / "out"
    dest.mkdir()
    names = unpack_zip(archive, dest, allowed=lambda name: exchange_file_kind(name) != "zip")
    assert names == ["import.xml", "offers.xml", "import_files/ab/abcdef.jpg"]
    assert (dest / "import_files" / "ab" / "abcdef.jpg").read_bytes() == b"\xff\xd8jpeg"


@pytest.mark.parametrize("name", ["../evil.xml", "import_files/../../evil.xml", "/etc/cron.d/evil",
                                  "C:/Windows/evil.xml", "import_files\\..\\evil.xml"])
def test_refuses_entries_escaping_the_destination(tmp_path, name):
    archive = make_zip(tmp_path / "x.zip", [("import.xml", b"<a/>"), (name, b"owned")])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive):
        unpack_zip(archive, dest)
    assert leftovers(dest) == []     # the entry extracted before the bad one is gone too
    assert not (tmp_path / "evil.xml").exists()


def test_refuses_symlink_entries(tmp_path):
    link = zipfile.ZipInfo("import.xml")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "x.zip", [(link, b"/etc/passwd")])
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        unpack_zip(archive, tmp_path)


def test_refuses_too_many_entries(tmp_path):
    archive = make_zip(tmp_path / "x.zip", [(f"import_files/a/{i}.jpg", b"x") for i in range(5)])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="5 entries"):
        unpack_zip(archive, dest, max_entries=4)
    assert leftovers(dest) == []


def test_refuses_a_compression_bomb_while_streaming(tmp_path):
    archive = make_zip(tmp_path / "x.zip", [("offers.xml", b"<a/>"), ("import.xml", bytes(4 * 1024 * 1024))])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="compresses more than 200:1"):
        unpack_zip(archive, dest)
    assert leftovers(dest) == []


def test_refuses_an_archive_inflating_past_the_total_limit(tmp_path):
    payload = os.urandom(600)     # incompressible: only the total size can stop it
    archive = make_zip(tmp_path / "x.zip", [("import.xml", payload), ("offers.xml", payload)])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="more than 1000 bytes"):
        unpack_zip(archive, dest, max_total_bytes=1000)
    assert leftovers(dest) == []
    assert unpack_zip(archive, dest, max_total_bytes=1200) == ["import.xml", "offers.xml"]


def test_refuses_names_the_caller_does_not_allow_and_duplicates(tmp_path):
    archive = make_zip(tmp_path / "x.zip", [("import.xml", b"<a/>"), ("shell.php", b"<?php")])
    with pytest.raises(UnsafeArchive, match="shell.php"):
        unpack_zip(archive, tmp_path / "a", allowed=lambda name: name.endswith(".xml"))
    with pytest.warns(UserWarning):   # zipfile itself warns about the duplicate name
        archive = make_zip(tmp_path / "y.zip", [("import.xml", b"<a/>"), ("import.xml", b"<b/>")])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match="overwrite"):
        unpack_zip(archive, dest)
    assert leftovers(dest) == []


def test_non_zip_input_is_refused(tmp_path):
    path = tmp_path / "import.zip"
    path.write_bytes(b"<?xml version='1.0'?><r/>")
    with pytest.raises(UnsafeArchive, match="not a zip archive"):
        unpack_zip(path, tmp_path)


# --- exchange file names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, kind", [
    ("import.xml", "import"), ("import0_1.xml", "import"), ("IMPORT.XML", "import"),
    ("import___b0c1d2e3-0000-4000-8000-000000000000.xml", "import"), ("offers0_1.xml", "offers"),
    ("prices___1.xml", "prices"), ("rests___d66a6b51-ce9c-4e7a-8c7c-25079721107f.xml", "rests"),
    ("orders.xml", "orders"), ("documents_2.xml", "orders"), ("import_files/ab/abcdef.jpg", "image"),
    ("import_files/9d/9da0_0e01.JPEG", "image"), ("import_files/x.webp", "image"), ("v8_1A2B.zip", "zip"),
])
def test_classifies_exchange_file_names(name, kind):
    assert exchange_file_kind(name) == kind


@pytest.mark.parametrize("name", [
    "", "../import.xml", "import_files/../../import.xml", "/import.xml", "C:import.xml",
    "import_files\\a.jpg", "import.xml\x00.php", "shell.php", "import.xml.php", "sub/import.xml",
    "import_files/a.php", "import_files/", "catalog.xml", "import_files/./a.jpg",
])
def test_refuses_unknown_or_unsafe_names(name):
    with pytest.raises(UnknownFile):
        exchange_file_kind(name)
