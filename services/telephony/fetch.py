"""Guarded download of call recordings.

A recording URL arrives in a webhook, so whoever can forge or replay a webhook chooses it. An
unguarded download would let them make the hub fetch internal URLs (cloud metadata at
169.254.169.254, admin ports on localhost), fill its disk or tie up its workers. So:

* only ``https`` (``http`` too when ``allow_http``, which defaults to ``allow_private``:
  local simulators);
* the host must be in the connector's allowlist: exact names, or ``*.example.com`` for the
  sub-domains of example.com (not example.com itself);
* the host is resolved here, every address must be public, and the connection goes to the
  checked address (Host header, SNI and certificate check still use the name), so a DNS
  answer that changes between the check and the connect (rebinding) cannot slip through;
* redirects are followed by hand, each Location checked by the same rules, at most
  ``max_redirects``; credentials (Authorization, Cookie) are not sent to another origin;
* the body is capped at ``max_bytes`` and the whole download at ``timeout`` seconds of wall
  time. The wall-time cap is hard under eventlet (the services' runtime: every blocking step
  runs under an ``eventlet.Timeout``); without monkey-patching each socket wait is capped at
  the time left instead.

Environment proxies are not used: a proxy would resolve the name again, after our check.

Errors: ``FetchRefused`` when the policy says no (retrying cannot help), ``FetchFailed`` when
the network or the server failed (it may work later). Messages name the host, never the URL:
vendors put one-time tokens in it.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator
from urllib.parse import urlencode, urljoin, urlsplit

import eventlet
import eventlet.patcher
from requests.certs import where as ca_bundle
from requests.utils import requote_uri
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import ConnectTimeoutError, HTTPError
from urllib3.util.ssl_match_hostname import CertificateError

from crmhub.services.telephony.recordings import DEFAULT_CONTENT_TYPE, RecordingStore, StoredRecording

if TYPE_CHECKING:
    from crmhub.plugins.api import RecordingLocation

CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Sent to the origin the connector named, not to wherever it redirects.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Ours to set: the connector's headers cannot override them.
TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                               "accept-encoding", "te", "upgrade"})
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*", re.ASCII)
MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.ASCII)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class FetchError(Exception):
    """A recording could not be downloaded. ``host`` is the host concerned (None when the
    problem is the configuration); ``status`` the HTTP status when the server answered."""

    retryable = False

    def __init__(self, host: str | None, reason: str, status: int | None = None):
        super().__init__(f"recording from {host}: {reason}" if host else f"recording: {reason}")
        self.host, self.reason, self.status = host, reason, status


class FetchRefused(FetchError):
    """The policy forbids the download (host, address, scheme, size, redirects)."""


class FetchFailed(FetchError):
    """The network or the server failed (DNS, connect, timeout, non-2xx answer)."""

    retryable = True


@dataclass(frozen=True)
class _Policy:
    allowed_hosts: tuple[str, ...]
    max_bytes: int
    timeout: float
    connect_timeout: float
    max_redirects: int
    allow_private: bool
    allow_http: bool


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lower-case ASCII, no brackets, no trailing dot
    port: int
    path: str  # the request target: path and query

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


# -- the public API -----------------------------------------------------------------------------

def fetch_into_store(store: RecordingStore, key: str, location: RecordingLocation,
                     allowed_hosts: Iterable[str], *, max_bytes: int = 200 * 2**20,
                     timeout: float = 30.0, connect_timeout: float = 5.0, max_redirects: int = 5,
                     allow_private: bool = False, allow_http: bool | None = None) -> StoredRecording:
    """Download ``location`` into ``store`` under ``key``, all or nothing (see
    ``fetch_recording`` for the rules). A store failure (disk full) propagates as it is."""
    with fetch_recording(location, allowed_hosts, max_bytes=max_bytes, timeout=timeout,
                         connect_timeout=connect_timeout, max_redirects=max_redirects,
                         allow_private=allow_private, allow_http=allow_http) as download:
        return store.save(key, download, download.content_type)


def fetch_recording(location: RecordingLocation, allowed_hosts: Iterable[str], *,
                    max_bytes: int = 200 * 2**20, timeout: float = 30.0,
                    connect_timeout: float = 5.0, max_redirects: int = 5,
                    allow_private: bool = False, allow_http: bool | None = None) -> Download:
    """Request ``location`` under the guard and return once the final answer's headers are in.
    Iterate the returned ``Download`` for the body; close it (or use ``with``) when done.
    ``timeout`` covers everything from here to the last byte."""
    policy = _Policy(_allowlist(allowed_hosts), max_bytes, timeout, connect_timeout,
                     max_redirects, allow_private,
                     allow_private if allow_http is None else allow_http)
    deadline = time.monotonic() + timeout
    method = (location.method or "GET").upper()
    headers = _request_headers(location.headers)
    body = None
    if location.data is not None:
        body = urlencode(location.data).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    target = _target(location.url, policy)
    for hop in range(max_redirects + 1):
        pool, response = _send(target, method, headers, body, policy, deadline)
        redirect_to = response.headers.get("Location") if response.status in REDIRECTS else None
        if not redirect_to:
            return _download(target, pool, response, policy, deadline)
        response.close()
        pool.close()
        if hop == max_redirects:
            raise FetchRefused(target.host, f"more than {max_redirects} redirects")
        next_target = _target(urljoin(target.url, _header_text(redirect_to)), policy)
        method, body, headers = _redirected(response.status, method, body, headers,
                                            target, next_target)
        target = next_target
    raise AssertionError("unreachable")


class Download:
    """The final answer of a guarded request, body still unread. Iterating it yields the body
    in chunks of at most 64 KiB and raises FetchRefused past ``max_bytes`` or FetchFailed past
    the deadline or on a broken connection."""

    def __init__(self, target: _Target, pool, response, policy: _Policy, deadline: float):
        self.host = target.host
        self.final_url = target.url  # may hold a vendor token: do not log it
        self.status = response.status
        self.content_type = _media_type(response.headers.get("Content-Type"))
        self.content_length = _content_length(response.headers.get("Content-Length"))
        self._pool, self._response = pool, response
        self._policy, self._deadline = policy, deadline
        self._started = False

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise RuntimeError("a Download can be read only once")
        self._started = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        received = 0
        try:
            while True:
                with _time_left(self._deadline, self.host, self._policy.timeout) as left:
                    self._cap_socket_wait(left)
                    try:
                        chunk = self._response.read1(CHUNK, decode_content=False)
                    except (HTTPError, OSError) as exc:
                        raise FetchFailed(self.host, self._read_failure(exc)) from None
                if not chunk:
                    return
                received += len(chunk)
                if received > self._policy.max_bytes:
                    raise FetchRefused(self.host, f"larger than {self._policy.max_bytes} bytes")
                yield chunk
        finally:
            self.close()

    def _read_failure(self, exc: BaseException) -> str:
        if time.monotonic() >= self._deadline:  # the socket wait cap fired
            return f"took longer than {self._policy.timeout:g}s"
        return f"the body broke off ({_describe(exc)})"

    def _cap_socket_wait(self, left: float) -> None:
        """Without eventlet, a drip-fed body is stopped by capping each wait at the time left."""
        sock = getattr(self._response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(left)

    def close(self) -> None:
        self._response.close()
        self._pool.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def host_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """``host`` equals an entry, or is a sub-domain of a ``*.domain`` entry (IP literals match
    exact entries only)."""
    is_literal = _is_ip_literal(host)
    for entry in allowed_hosts:
        if entry.startswith("*."):
            if not is_literal and host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def address_refusal(address: str) -> str | None:
    """Why a download must not connect to ``address``, or None if it is a public address.
    IPv6 forms that embed an IPv4 address (mapped, 6to4, NAT64) are judged by that address."""
    ip = ipaddress.ip_address(address)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:  # the packets end up at the IPv4 host
        refusal = address_refusal(str(embedded))
        return refusal and f"{refusal} (inside {address})"
    for flag in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return f"{flag.replace('_', '-')} address {address}"
    if not ip.is_global:
        return f"non-public address {address}"
    return None


# -- one hop -------------------------------------------------------------------------------------

def _target(url: str, policy: _Policy) -> _Target:
    """Parse and check a URL against the policy (scheme, host syntax, allowlist)."""
    try:
        parts = urlsplit(requote_uri(url))
        port = parts.port
    except ValueError:  # requests' InvalidURL is a ValueError too
        raise FetchRefused(None, "the URL is malformed") from None
    host = _ascii_host(parts.hostname or "")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise FetchRefused(host, f"scheme {scheme or '(none)'!r} is not allowed")
    if not host:
        raise FetchRefused(None, "the URL has no valid host name")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused(host, "credentials in the URL are not allowed")
    if not host_allowed(host, policy.allowed_hosts):
        raise FetchRefused(host, "host is not in the connector's recording hosts")
    path = parts.path or "/"
    return _Target(parts._replace(fragment="").geturl(), scheme, host,
                   port or (443 if scheme == "https" else 80),
                   f"{path}?{parts.query}" if parts.query else path)


def _checked_addresses(target: _Target, policy: _Policy, deadline: float) -> list[str]:
    """The host's addresses, all of them checked: one private answer among public ones is
    enough to refuse (the connection could be steered to it)."""
    with _time_left(deadline, target.host, policy.timeout):
        addresses = _resolve(target.host, target.port)
    if not addresses:
        raise FetchFailed(target.host, "the name has no addresses")
    if not policy.allow_private:
        for address in addresses:
            refusal = address_refusal(address)
            if refusal:
                raise FetchRefused(target.host, f"resolves to a {refusal}")
    return addresses


def _resolve(host: str, port: int) -> list[str]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(host, f"cannot resolve the name ({_describe(exc)})") from None
    return list(dict.fromkeys(answer[4][0] for answer in answers))


def _send(target: _Target, method: str, headers: dict, body: bytes | None, policy: _Policy,
          deadline: float):
    """Send the request to the first checked address that accepts a connection; returns the
    pool and the response with its body unread."""
    addresses = _checked_addresses(target, policy, deadline)
    failure = None
    for address in addresses:
        with _time_left(deadline, target.host, policy.timeout) as left:
            pool = _pool(target, address, Timeout(connect=min(policy.connect_timeout, left), read=left))
            try:
                response = pool.urlopen(
                    method, target.path, body=body, headers={**headers, "Host": target.host_header},
                    redirect=False, retries=False, preload_content=False, decode_content=False,
                    assert_same_host=False, release_conn=False)
                return pool, response
            except ConnectTimeoutError as exc:  # refused or unreachable: try the next address
                pool.close()
                failure = exc
            except (HTTPError, OSError) as exc:
                pool.close()
                reason = (f"took longer than {policy.timeout:g}s" if time.monotonic() >= deadline
                          else f"request failed ({_describe(exc)})")
                raise FetchFailed(target.host, reason) from None
            except BaseException:
                pool.close()
                raise
    raise FetchFailed(target.host, f"cannot connect ({_describe(failure)})")


def _pool(target: _Target, address: str, timeout: Timeout):
    """A one-connection pool to the checked ``address`` that still speaks to ``target.host``:
    SNI and the certificate check use the name."""
    if target.scheme == "http":
        return HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False)
    return HTTPSConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False,
                               cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle(),
                               server_hostname=target.host, assert_hostname=target.host)


def _download(target: _Target, pool, response, policy: _Policy, deadline: float) -> Download:
    """Accept the final answer, or close it and say why not."""
    def give_up(error: FetchError):
        response.close()
        pool.close()
        raise error

    if not 200 <= response.status < 300:
        give_up(FetchFailed(target.host, f"answered HTTP {response.status}", response.status))
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        # We asked for identity; decoding would let a small body expand past the size cap.
        give_up(FetchRefused(target.host, f"sent a {encoding!r}-encoded body"))
    declared = _content_length(response.headers.get("Content-Length"))
    if declared is not None and declared > policy.max_bytes:
        give_up(FetchRefused(target.host, f"declares {declared} bytes, more than "
                                          f"{policy.max_bytes}"))
    return Download(target, pool, response, policy, deadline)


def _redirected(status: int, method: str, body: bytes | None, headers: dict,
                old: _Target, new: _Target) -> tuple[str, bytes | None, dict]:
    """The request to send to a redirect's Location, as browsers and requests do it."""
    headers = dict(headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    if new.origin != old.origin:
        headers = {name: value for name, value in headers.items()
                   if name.lower() not in CREDENTIAL_HEADERS}
    return method, body, headers


# -- small helpers -------------------------------------------------------------------------------

@contextmanager
def _time_left(deadline: float, host: str, timeout: float):
    """Yield the seconds left before ``deadline``; refuse to start when none are left, and
    under eventlet interrupt the block when they run out."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(host, f"took longer than {timeout:g}s")
    if not eventlet.patcher.is_monkey_patched("socket"):
        yield left
        return
    timer = eventlet.Timeout(left)
    try:
        yield left
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise FetchFailed(host, f"took longer than {timeout:g}s") from None
    finally:
        timer.cancel()


def _allowlist(allowed_hosts: Iterable[str]) -> tuple[str, ...]:
    if isinstance(allowed_hosts, str):  # one host, not its characters
        allowed_hosts = (allowed_hosts,)
    entries = []
    for raw in allowed_hosts:
        entry = str(raw).strip().lower().rstrip(".").strip("[]")
        wildcard = entry.startswith("*.")
        name = entry[2:] if wildcard else entry
        if not wildcard and _is_ip_literal(name):
            entry = str(ipaddress.ip_address(name))  # the form _ascii_host gives
        elif not HOST_NAME.fullmatch(name):
            raise FetchRefused(None, f"recording hosts entry {raw!r} is not a host name or *.domain")
        entries.append(entry)
    return tuple(entries)


def _ascii_host(hostname: str) -> str:
    """The host in the form we compare and resolve, or "" when it is not a valid host."""
    host = hostname.lower().rstrip(".")
    if _is_ip_literal(host):
        return str(ipaddress.ip_address(host))
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return ""
    return host if HOST_NAME.fullmatch(host) else ""


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _embedded_ipv4(ip) -> ipaddress.IPv4Address | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _request_headers(extra: dict[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": "crmhub-recordings", "Accept": "*/*", "Accept-Encoding": "identity"}
    for name, value in (extra or {}).items():
        if name.lower() in TRANSPORT_HEADERS:
            continue
        for existing in [key for key in headers if key.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    return headers


def _header_text(value: str) -> str:
    """http.client decodes headers as latin-1; a UTF-8 Location is common."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _media_type(value: str | None) -> str:
    """The bare media type (no parameters), or the default when it is missing or odd."""
    media = (value or "").split(";", 1)[0].strip().lower()
    return media if MEDIA_TYPE.fullmatch(media) else DEFAULT_CONTENT_TYPE


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: BaseException | None) -> str:
    """The exception's type and the OS or certificate error under it, without urllib3's
    message (which may quote the request path)."""
    if exc is None:
        return "no address"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return f"{type(exc).__name__}: {cause.strerror}"
        if isinstance(cause, (CertificateError, ssl.CertificateError)):
            return f"{type(exc).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__
