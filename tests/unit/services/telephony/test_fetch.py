"""The guarded recording download against a real HTTP server on 127.0.0.1: allowlist,
address checks, redirects re-checked, size and wall-time caps, and nothing half-stored."""
import os
import shutil
import socket
import ssl
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest

from crmhub.plugins.api import RecordingLocation
from crmhub.services.telephony import fetch
from crmhub.services.telephony.fetch import (
    FetchFailed,
    FetchRefused,
    address_refusal,
    fetch_into_store,
    fetch_recording,
    host_allowed,
)
from crmhub.services.telephony.recordings import LocalDirectoryStore
from crmhub.testing import LocalHttpServer

AUDIO = os.urandom(150_000)
LOCAL = {"allow_private": True}  # the test server is on loopback; allow_http follows


class Recorder(BaseHTTPRequestHandler):
    """Serves the scenarios; every request is appended to ``server.seen``."""

    timeout = 10  # no handler outlives the tests by much

    def do_GET(self):
        self.server.seen.append((self.command, self.path, dict(self.headers), self._body()))
        path = urlsplit(self.path).path
        route = path.strip("/").split("/")
        handler = getattr(self, "route_" + route[0].replace("-", "_"), None)
        try:
            handler(*route[1:]) if handler else self.answer(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as the caps make it do

    do_POST = do_GET

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location, status=302):
        self.answer(status, b"moved", [("Location", location)])

    def elsewhere(self, host, path="/file"):
        return f"http://{host}:{self.server.server_port}{path}"

    def route_file(self):
        self.answer(200, AUDIO, [("Content-Type", "Audio/MPEG; bitrate=64")])

    def route_untyped(self):
        self.answer(200, b"abc")

    def route_echo(self):
        self.answer(200, f"{self.command} {self.headers['Host']}".encode(),
                    [("Content-Type", "text/plain")])

    def route_chain(self, left):
        self.redirect(f"/chain/{int(left) - 1}" if int(left) else "../file")  # the last is relative

    def route_post_then(self, status):
        self.redirect("/echo", int(status))

    def route_to(self, host):
        self.redirect(self.elsewhere(host, "/echo"))

    def route_ftp(self):
        self.redirect("ftp://127.0.0.1/file")

    def route_huge(self):
        self.send_response(200)
        self.end_headers()  # no Content-Length: the body ends when the connection closes
        for _ in range(200):  # 12.8 MB at most, far beyond the test caps
            self.wfile.write(b"\0" * 65536)

    def route_huge_declared(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.wfile.write(b"\0" * 1000)

    def route_drip(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.02)

    def route_slow_headers(self):
        time.sleep(3)
        self.answer(200, b"late")

    def route_gzip(self):
        self.answer(200, b"\x1f\x8b...", [("Content-Encoding", "gzip")])

    def route_error(self):
        self.answer(500, b"oops")

    def log_message(self, *args):
        pass


def running_server(tls: ssl.SSLContext | None = None):
    """A started server and the function that stops it."""
    server = LocalHttpServer(Recorder)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.seen = []
    server.start()
    return server, server.stop


@pytest.fixture(scope="module")
def server():
    server, stop = running_server()
    yield server
    stop()


@pytest.fixture
def seen(server):
    server.seen.clear()
    return server.seen


@pytest.fixture
def url(server):
    return lambda path, host="127.0.0.1": f"http://{host}:{server.server_port}{path}"


@pytest.fixture
def store(tmp_path):
    return LocalDirectoryStore(tmp_path / "recordings")


def get(location_url, hosts=("127.0.0.1",), **options):
    """Fetch and read the whole body: (download, body)."""
    with fetch_recording(RecordingLocation(location_url), hosts, **options) as download:
        return download, b"".join(download)


@pytest.fixture
def pretend_public(monkeypatch):
    """Make ``pbx.test`` resolve to the test server and count as a public address, so the
    address checks run with allow_private=False. Other names resolve through ``names``."""
    names = {"pbx.test": ["127.0.0.1"]}
    lookups = []
    real_refusal = fetch.address_refusal

    def resolve(host, port):
        lookups.append(host)
        return names[host]

    monkeypatch.setattr(fetch, "_resolve", resolve)
    monkeypatch.setattr(fetch, "address_refusal",
                        lambda address: None if address == "127.0.0.1" else real_refusal(address))
    return names, lookups


# -- allowed downloads ---------------------------------------------------------------------------

def test_download_into_the_store(url, store, seen):
    stored = fetch_into_store(store, "call-1", RecordingLocation(url("/file")), ["127.0.0.1"], **LOCAL)

    assert (stored.key, stored.size, stored.content_type) == ("call-1", len(AUDIO), "audio/mpeg")
    with store.open("call-1") as reader:
        assert b"".join(reader.read_range()) == AUDIO
    [(method, path, headers, _)] = seen
    assert (method, path, headers["Accept-Encoding"]) == ("GET", "/file", "identity")


def test_download_attributes(url):
    download, body = get(url("/untyped"), **LOCAL)
    assert (download.status, download.content_type, download.content_length, body) == (
        200, "application/octet-stream", 3, b"abc")
    assert download.host == "127.0.0.1"
    with pytest.raises(RuntimeError):
        iter(download)  # read once only


def test_connects_to_the_checked_address_with_the_original_host_header(url, pretend_public):
    names, lookups = pretend_public
    download, body = get(url("/echo", "pbx.test"), ["pbx.test"], allow_http=True)
    # No second lookup: a rebinding answer after the check would never be used.
    assert lookups == ["pbx.test"]
    port = urlsplit(url("/")).port
    assert body == f"GET pbx.test:{port}".encode()


def test_connector_headers_are_sent_but_cannot_replace_the_host(url, seen):
    location = RecordingLocation(url("/echo"), headers={"Authorization": "Bearer t", "Host": "x.test",
                                                        "User-Agent": "vendor-sdk"})
    with fetch_recording(location, ["127.0.0.1"], **LOCAL) as download:
        assert b"".join(download) == f"GET 127.0.0.1:{urlsplit(url('/')).port}".encode()
    headers = seen[0][2]
    assert (headers["Authorization"], headers["User-Agent"]) == ("Bearer t", "vendor-sdk")


# -- hosts and addresses -------------------------------------------------------------------------

def test_host_not_in_the_allowlist(url, seen):
    with pytest.raises(FetchRefused, match="recording from 127.0.0.1: host is not in"):
        get(url("/file"), ["files.example.com"], **LOCAL)
    assert seen == []


def test_allowlisted_localhost_is_refused_as_loopback(url, seen):
    with pytest.raises(FetchRefused, match=r"localhost: resolves to a loopback address"):
        get(url("/file", "localhost"), ["localhost"], allow_http=True)
    assert seen == []


def test_https_only_unless_allowed(url, seen):
    with pytest.raises(FetchRefused, match="scheme 'http' is not allowed"):
        get(url("/file"), allow_private=True, allow_http=False)
    with pytest.raises(FetchRefused, match="scheme 'ftp'"):
        get("ftp://127.0.0.1/file", **LOCAL)
    assert seen == []


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.8.8", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.10", "169.254.169.254",
    "fe80::1", "fe80::1%1", "fd00::1", "0.0.0.0", "::", "224.0.0.251", "ff02::1", "100.64.0.1",
    "240.0.0.1", "255.255.255.255", "198.18.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "::ffff:10.0.0.1", "2002:7f00:1::1", "2002:a00:1::", "64:ff9b::a9fe:a9fe", "::7f00:1",
])
def test_non_public_addresses_are_refused(address):
    assert address_refusal(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert address_refusal(address) is None


def test_any_private_answer_refuses_the_name(url, pretend_public, seen):
    names, _ = pretend_public
    names["pbx.test"] = ["127.0.0.1", "10.0.0.8"]
    with pytest.raises(FetchRefused, match="pbx.test: resolves to a private address 10.0.0.8"):
        get(url("/file", "pbx.test"), ["pbx.test"], allow_http=True)
    assert seen == []


@pytest.mark.parametrize("host, allowed", [
    ("files.mango-office.ru", True),
    ("a.b.mango-office.ru", True),
    ("mango-office.ru", False),               # the wildcard is for sub-domains only
    ("mango-office.ru.evil.com", False),
    ("evilmango-office.ru", False),
    ("records.zadarma.com", True),            # exact entry
    ("x.records.zadarma.com", False),
    ("127.0.0.1", False),
])
def test_allowlist_matching(host, allowed):
    assert host_allowed(host, ("*.mango-office.ru", "records.zadarma.com", "*.0.0.1")) is allowed


def test_allowlist_entries_are_normalised_and_checked(url):
    assert get(url("/untyped"), " 127.0.0.1 ", **LOCAL)[1] == b"abc"  # one string, not its letters
    assert get(url("/untyped", "LOCALHOST."), ["LocalHost"], **LOCAL)[1] == b"abc"
    for entry in ("*", "*.*.example.com", "files.*.com", "bad host", ""):
        with pytest.raises(FetchRefused, match="recording hosts entry"):
            get(url("/file"), [entry], **LOCAL)
    with pytest.raises(FetchRefused, match="host is not in"):
        get(url("/file"), [], **LOCAL)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(FetchRefused, match="credentials"):
        get("https://user:pw@files.example.com/r.mp3", ["files.example.com"])


# -- redirects -----------------------------------------------------------------------------------

def test_redirect_chain_with_a_relative_last_hop(url, seen):
    download, body = get(url("/chain/3"), **LOCAL)
    assert body == AUDIO
    assert download.final_url == url("/file")
    assert [path for _, path, _, _ in seen] == ["/chain/3", "/chain/2", "/chain/1", "/chain/0", "/file"]


def test_too_many_redirects(url, seen):
    with pytest.raises(FetchRefused, match="127.0.0.1: more than 2 redirects"):
        get(url("/chain/3"), max_redirects=2, **LOCAL)
    assert len(seen) == 3


def test_redirect_to_a_host_not_allowed(url, seen):
    with pytest.raises(FetchRefused, match="recording from evil.example.net: host is not in") as caught:
        get(url("/to/evil.example.net?token=SECRET"), **LOCAL)
    assert "SECRET" not in str(caught.value) and "/echo" not in str(caught.value)
    assert len(seen) == 1


def test_redirect_to_a_private_address_by_name(url, pretend_public, seen):
    names, _ = pretend_public
    names["metadata.test"] = ["169.254.169.254"]
    with pytest.raises(FetchRefused, match="metadata.test: resolves to a link-local address"):
        get(url("/to/metadata.test", "pbx.test"), ["pbx.test", "metadata.test"], allow_http=True)
    assert [path for _, path, _, _ in seen] == ["/to/metadata.test"]


def test_redirect_to_another_scheme(url):
    with pytest.raises(FetchRefused, match="scheme 'ftp'"):
        get(url("/ftp"), **LOCAL)


@pytest.mark.parametrize("status, method, body", [
    (302, "GET", b""), (303, "GET", b""), (301, "GET", b""), (307, "POST", b"token=t%26k"),
    (308, "POST", b"token=t%26k"),
])
def test_post_redirects(url, seen, status, method, body):
    location = RecordingLocation(url(f"/post-then/{status}"), method="post", data={"token": "t&k"})
    with fetch_recording(location, ["127.0.0.1"], **LOCAL) as download:
        assert b"".join(download).startswith(method.encode())
    (first_method, _, _, first_body), (then_method, _, headers, then_body) = seen
    assert (first_method, first_body) == ("POST", b"token=t%26k")
    assert (then_method, then_body) == (method, body)
    assert ("Content-Type" in headers) is (method == "POST")


def test_credentials_stay_with_their_origin(url, seen):
    location = RecordingLocation(url("/to/localhost"), headers={"Authorization": "Bearer t",
                                                                "X-Vendor": "v"})
    with fetch_recording(location, ["127.0.0.1", "localhost"], **LOCAL) as download:
        b"".join(download)
    (_, _, first, _), (_, _, then, _) = seen
    assert first["Authorization"] == "Bearer t"
    assert "Authorization" not in then and then["X-Vendor"] == "v"


# -- caps and failures ---------------------------------------------------------------------------

def test_declared_size_over_the_cap_is_refused_before_reading(url):
    with pytest.raises(FetchRefused, match=r"declares 1000000000000 bytes, more than 100000"):
        get(url("/huge-declared"), max_bytes=100_000, **LOCAL)


def test_undeclared_size_over_the_cap_stops_the_download(url, store):
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="larger than 100000 bytes"):
        fetch_into_store(store, "call-1", RecordingLocation(url("/huge")), ["127.0.0.1"],
                         max_bytes=100_000, **LOCAL)
    assert time.monotonic() - started < 2
    assert not store.exists("call-1") and not any(store.root.rglob("*.*"))


def test_a_body_at_the_cap_is_accepted(url):
    assert len(get(url("/file"), max_bytes=len(AUDIO), **LOCAL)[1]) == len(AUDIO)


def test_wall_time_cap_on_a_dripping_body(url, store):
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="127.0.0.1: took longer than 0.4s") as caught:
        fetch_into_store(store, "call-1", RecordingLocation(url("/drip")), ["127.0.0.1"],
                         timeout=0.4, **LOCAL)
    assert 0.4 <= time.monotonic() - started < 1.5
    assert caught.value.retryable
    assert not store.exists("call-1") and not any(store.root.rglob("*.*"))


def test_wall_time_cap_while_waiting_for_headers(url):
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="took longer than 0.3s"):
        get(url("/slow-headers"), timeout=0.3, **LOCAL)
    assert time.monotonic() - started < 1.5


def test_server_error_is_a_retryable_failure(url):
    with pytest.raises(FetchFailed, match="127.0.0.1: answered HTTP 500") as caught:
        get(url("/error?token=SECRET"), **LOCAL)
    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert "SECRET" not in str(caught.value)
    with pytest.raises(FetchFailed, match="answered HTTP 404"):
        get(url("/missing"), **LOCAL)


def test_encoded_body_is_refused(url):
    with pytest.raises(FetchRefused, match="'gzip'-encoded"):
        get(url("/gzip"), **LOCAL)


def test_connection_refused_is_a_failure():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed, match="127.0.0.1: cannot connect") as caught:
        get(f"http://127.0.0.1:{port}/file", **LOCAL)
    assert caught.value.retryable


def test_name_that_does_not_resolve_is_a_failure(monkeypatch):
    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(fetch.socket, "getaddrinfo", no_such_name)
    with pytest.raises(FetchFailed, match="files.example.com: cannot resolve the name"):
        get("https://files.example.com/r.mp3", ["files.example.com"])


# -- TLS: the connection goes to the checked address, the certificate is checked for the name ----

CERTIFICATES = """
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout ca.key -out ca.pem -subj /CN=crmhub-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout leaf.key -out leaf.csr -subj /CN=pbx.test
printf '%s\n' subjectAltName=DNS:pbx.test basicConstraints=CA:FALSE \
    keyUsage=digitalSignature extendedKeyUsage=serverAuth \
    subjectKeyIdentifier=hash authorityKeyIdentifier=keyid > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile leaf.ext -out leaf.pem
"""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server for ``pbx.test``, with a certificate from a CA of its own."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["sh", "-ec", CERTIFICATES], cwd=folder, check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")
    server, stop = running_server(context)
    server.ca = str(folder / "ca.pem")
    yield server
    stop()


def test_https_checks_the_certificate_for_the_name_not_the_address(tls_server, pretend_public,
                                                                   monkeypatch):
    names, lookups = pretend_public
    names["other.test"] = ["127.0.0.1"]
    monkeypatch.setattr(fetch, "ca_bundle", lambda: tls_server.ca)
    port = tls_server.server_port

    _, body = get(f"https://pbx.test:{port}/echo", ["pbx.test", "other.test"])

    assert body == f"GET pbx.test:{port}".encode()
    assert lookups == ["pbx.test"]
    with pytest.raises(FetchFailed, match="other.test: request failed .*'other.test' doesn't match"):
        get(f"https://other.test:{port}/echo", ["pbx.test", "other.test"])


def test_https_trusts_only_the_ca_bundle(tls_server, pretend_public):
    with pytest.raises(FetchFailed, match="pbx.test: request failed .*CERTIFICATE_VERIFY_FAILED"):
        get(f"https://pbx.test:{tls_server.server_port}/echo", ["pbx.test"])
