"""The recording store (atomic saves, key checks, ranges read back), its configuration, and
the parsing of HTTP Range headers."""
import hashlib
import os
import time

import eventlet
import pytest

from crmhub.services.telephony.recordings import (
    PIECE,
    LocalDirectoryStore,
    RangeNotSatisfiable,
    RecordingNotFound,
    RecordingStore,
    check_key,
    content_range,
    parse_range,
    store_from_config,
)

AUDIO = os.urandom(3 * PIECE + 123)


def pieces(data, size=10_000):
    return (data[i:i + size] for i in range(0, len(data), size))


def files_under(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


@pytest.fixture
def store(tmp_path):
    return LocalDirectoryStore(tmp_path / "recordings")


def test_saved_recording_reads_back_whole_and_by_range(store):
    stored = store.save("call-1", pieces(AUDIO), "audio/mpeg")

    assert (stored.key, stored.size, stored.content_type) == ("call-1", len(AUDIO), "audio/mpeg")
    assert stored.sha256 == hashlib.sha256(AUDIO).hexdigest()
    assert store.exists("call-1")
    with store.open("call-1") as reader:
        assert (reader.size, reader.content_type, reader.sha256) == (
            len(AUDIO), "audio/mpeg", stored.sha256)
        whole = list(reader.read_range())
        assert b"".join(whole) == AUDIO
        assert all(len(piece) <= PIECE for piece in whole)
        assert b"".join(reader.read_range(10, 20)) == AUDIO[10:21]
        assert b"".join(reader.read_range(PIECE - 1, 2 * PIECE + 5)) == AUDIO[PIECE - 1:2 * PIECE + 6]
        assert b"".join(reader.read_range(len(AUDIO) - 3, 10**9)) == AUDIO[-3:]


def test_two_ranges_of_one_reader_stream_independently(store):
    store.save("call-1", [AUDIO], "audio/wav")
    with store.open("call-1") as reader:
        head, tail = reader.read_range(0, PIECE * 2), reader.read_range(PIECE, None)
        first_head, first_tail = next(head), next(tail)
        assert first_head == AUDIO[:PIECE] and first_tail == AUDIO[PIECE:2 * PIECE]
        assert first_head + b"".join(head) == AUDIO[:PIECE * 2 + 1]


def test_a_slow_disk_does_not_stall_the_service_while_a_recording_is_synced(store, monkeypatch):
    """Each saved file and its folder are synced to disk. The service's other work runs in
    green threads of the same OS thread (a popup's signals): a disk that takes 50 ms a sync
    must not hold it up for the four syncs of a recording."""
    blocking_sleep, fsync = eventlet.patcher.original("time").sleep, os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (blocking_sleep(0.05), fsync(fd)))
    ticks = []

    def other_work():
        while True:
            ticks.append(time.monotonic())
            eventlet.sleep(0.005)

    worker = eventlet.spawn(other_work)
    eventlet.sleep(0)
    started = time.monotonic()
    store.save("call-1", pieces(AUDIO), "audio/mpeg")
    ended = time.monotonic()
    worker.kill()
    assert ended - started >= 0.2
    assert len([t for t in ticks if started < t < ended]) >= 10
    with store.open("call-1") as reader:
        assert b"".join(reader.read_range()) == AUDIO


def test_empty_recording(store):
    stored = store.save("empty", [], "")
    assert (stored.size, stored.content_type) == (0, "application/octet-stream")
    with store.open("empty") as reader:
        assert list(reader.read_range()) == []


def test_files_fan_out_by_key_hash_with_a_sidecar(store):
    store.save("call-1", [b"abc"], "audio/mpeg")
    digest = hashlib.sha256(b"call-1").hexdigest()
    assert files_under(store.root) == [f"{digest[:2]}/{digest[2:4]}/call-1.data",
                                       f"{digest[:2]}/{digest[2:4]}/call-1.meta"]


def test_saving_again_replaces_the_recording(store):
    store.save("call-1", [b"old"], "audio/wav")
    store.save("call-1", [b"newer"], "audio/mpeg")
    with store.open("call-1") as reader:
        assert (b"".join(reader.read_range()), reader.content_type) == (b"newer", "audio/mpeg")


def failing_stream(data):
    yield data
    yield data
    raise ConnectionError("the download broke off")


def test_a_failed_stream_leaves_no_file(store):
    with pytest.raises(ConnectionError):
        store.save("call-1", failing_stream(b"x" * 1000), "audio/mpeg")
    assert not store.exists("call-1")
    assert files_under(store.root) == []


def test_a_failed_stream_keeps_the_earlier_recording(store):
    store.save("call-1", [b"good"], "audio/mpeg")
    with pytest.raises(ConnectionError):
        store.save("call-1", failing_stream(b"bad"), "audio/wav")
    with store.open("call-1") as reader:
        assert (b"".join(reader.read_range()), reader.content_type) == (b"good", "audio/mpeg")
    assert len(files_under(store.root)) == 2  # the data and its sidecar, no temp file


def test_a_sidecar_that_does_not_match_is_ignored(store):
    store.save("call-1", [b"four"], "audio/mpeg")
    meta = next(store.root.rglob("*.meta"))
    meta.write_text('{"content_type": "text/html", "size": 999}')
    with store.open("call-1") as reader:
        assert (reader.content_type, reader.sha256, reader.size) == ("application/octet-stream", None, 4)
    meta.unlink()
    with store.open("call-1") as reader:
        assert reader.content_type == "application/octet-stream"


def test_missing_recordings(store):
    assert not store.exists("nope")
    assert store.delete("nope") is False
    with pytest.raises(RecordingNotFound):
        store.open("nope")


def test_delete(store):
    store.save("call-1", [b"abc"], "audio/mpeg")
    assert store.delete("call-1") is True
    assert not store.exists("call-1")
    assert files_under(store.root) == []


@pytest.mark.parametrize("key", [
    "", ".", "..", "../etc/passwd", "a/b", "a\\b", "/abs", ".hidden", ".tmp-x", "call 1",
    "call\x00", "звонок", "k" * 201, None, 5,
])
def test_unsafe_keys_are_refused(store, key, tmp_path):
    for attempt in (lambda: store.save(key, [b"x"], "audio/mpeg"), lambda: store.open(key),
                    lambda: store.exists(key), lambda: store.delete(key)):
        with pytest.raises(ValueError):
            attempt()
    assert not any(tmp_path.rglob("*"))


@pytest.mark.parametrize("key", ["call-1", "a", "A.b_c-9", "x..y", "k" * 200])
def test_safe_keys(key):
    assert check_key(key) == key


# -- configuration -------------------------------------------------------------------------------

def test_default_store_lives_under_the_data_dir(tmp_path):
    store = store_from_config({"DATA_DIR": str(tmp_path)})
    assert isinstance(store, LocalDirectoryStore)
    assert store.root == tmp_path / "recordings"
    assert not store.root.exists()  # created on the first save
    store.save("call-1", [b"x"], "audio/mpeg")
    assert store.root.is_dir()


def test_recordings_dir_and_data_dir_defaults(tmp_path):
    assert store_from_config({"RECORDINGS_DIR": str(tmp_path / "r")}).root == tmp_path / "r"
    assert str(store_from_config({}).root) == os.path.join("var", "recordings")


PLUGIN_STORE = '''
from crmhub.services.telephony.recordings import LocalDirectoryStore

class BucketStore(LocalDirectoryStore):
    @classmethod
    def from_config(cls, config):
        return cls(config["BUCKET_DIR"])

class NotAStore:
    def __init__(self, config):
        self.config = config
'''


def test_another_store_plugs_in_by_module_and_class(tmp_path, monkeypatch):
    (tmp_path / "bucket_store.py").write_text(PLUGIN_STORE)
    monkeypatch.syspath_prepend(str(tmp_path))

    store = store_from_config({"RECORDING_STORE": "bucket_store:BucketStore",
                               "BUCKET_DIR": str(tmp_path / "bucket")})

    assert type(store).__name__ == "BucketStore" and isinstance(store, RecordingStore)
    assert store.root == tmp_path / "bucket"
    with pytest.raises(TypeError, match="not a RecordingStore"):
        store_from_config({"RECORDING_STORE": "bucket_store:NotAStore"})
    with pytest.raises(ValueError, match="module:ClassName"):
        store_from_config({"RECORDING_STORE": "bucket_store"})


# -- ranges --------------------------------------------------------------------------------------

@pytest.mark.parametrize("header, expected", [
    (None, None),
    ("", None),
    ("bytes=0-99", (0, 99)),
    ("bytes=10-10", (10, 10)),
    ("bytes=900-5000", (900, 999)),        # clipped to the size
    ("bytes=500-", (500, 999)),
    ("bytes=-100", (900, 999)),            # the last 100 bytes
    ("bytes=-5000", (0, 999)),             # a suffix longer than the file: all of it
    (" Bytes=1-2 ", (1, 2)),               # the unit is case-insensitive
    ("bytes = 1-2", None),                 # no spaces in the grammar
    ("bytes=0-1,5-6", None),               # several ranges: the whole file
    ("bytes=5-3", None),                   # invalid: ignored
    ("bytes=-", None),
    ("bytes=a-b", None),
    ("bytes=١-٢", None),                   # non-ASCII digits are not digits here
    ("items=0-5", None),                   # another unit
    ("0-5", None),
])
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header, size", [
    ("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000),
    ("bytes=0-", 0), ("bytes=-10", 0),
])
def test_unsatisfiable_ranges(header, size):
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.size == size


def test_content_range():
    assert content_range(*parse_range("bytes=-100", 1000), 1000) == "bytes 900-999/1000"
