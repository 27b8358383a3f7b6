"""The 1C exchange (CommerceML 2) at /hooks/1c/exchange: 1C is the client and drives it with
``type`` (catalog, sale) and ``mode`` (checkauth, init, file, import, query, success).

Uploaded files go to a folder of the session under EXCHANGE_DIR, shared with the catalog
service, which imports them in a process of its own; 1C polls ``mode=import`` and reads
``progress`` until the import is done. Answers are text/plain in windows-1251, first line
``success``, ``progress`` or ``failure``; a failure's second line says why.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import shutil
import time
import uuid
from pathlib import Path

import structlog
from werkzeug.wrappers import Response

from crmhub.contracts.base import instance
from crmhub.contracts.deals import ErpOrderPageSchema
from crmhub.plugins.onec.orders import BadOrdersFile, orders_document, read_order_changes
from crmhub.plugins.onec.xmlsafety import ExchangeFileError, exchange_file_kind, unpack_zip
from crmhub.runtime.db import utcnow
from crmhub.services.catalog.jobs import exchange_dir
from crmhub.services.gateway.http import http

log = structlog.get_logger(__name__)
COOKIE = "crmhub_1c"
DEFAULTS = {"username": "", "password": "", "zip": True, "file_limit": 8 * 1024 * 1024,
            "max_file_bytes": 4 * 1024 ** 3, "session_hours": 12}
MODES = {"catalog": ("checkauth", "init", "file", "import", "deactivate", "complete"),
         "sale": ("checkauth", "init", "query", "success", "file", "import")}
CHUNK = 1024 * 1024
SENT_ORDERS = ".sent-orders"  # the ids of the last sale/query answer, confirmed by mode=success


def settings(config: dict) -> dict:
    return {**DEFAULTS, **((config.get("CONNECTORS") or {}).get("1c") or {})}


class ExchangeFailure(Exception):
    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def answer(*lines: str, status: int = 200) -> Response:
    text = "\n".join(lines)
    return Response(text.encode("windows-1251", errors="replace"), status=status,
                    content_type="text/plain; charset=windows-1251")


def _key(conf: dict) -> bytes:
    # Changing the password ends every session.
    return hashlib.sha256(f"crmhub-1c:{conf['username']}:{conf['password']}".encode()).digest()


def new_session(conf: dict, now: float | None = None) -> str:
    session = uuid.uuid4().hex
    expires = int((now or time.time()) + conf["session_hours"] * 3600)
    body = f"{session}.{expires}"
    return f"{body}.{hmac.new(_key(conf), body.encode(), 'sha256').hexdigest()}"


def session_of(conf: dict, cookie: str | None, now: float | None = None) -> str:
    """The session a cookie names; ExchangeFailure when it is missing, forged or expired."""
    if not cookie:
        raise ExchangeFailure("no session cookie: call mode=checkauth first", 401)
    session, _, rest = cookie.partition(".")
    expires, _, signature = rest.partition(".")
    good = hmac.new(_key(conf), f"{session}.{expires}".encode(), "sha256").hexdigest()
    if not hmac.compare_digest(good, signature) or not expires.isdigit():
        raise ExchangeFailure("invalid session cookie: call mode=checkauth again", 401)
    if int(expires) < (now or time.time()):
        raise ExchangeFailure("session expired: call mode=checkauth again", 401)
    return session


def check_credentials(conf: dict, header: str | None) -> None:
    if not conf["username"] or not conf["password"]:
        raise ExchangeFailure("the 1C exchange is not set up (CONNECTORS.1c username/password)", 403)
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        raise ExchangeFailure("HTTP Basic authorization required", 401)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise ExchangeFailure("malformed Basic authorization", 401) from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("windows-1251")  # older 1C platforms send the ANSI code page
    user, _, password = decoded.partition(":")
    if not (hmac.compare_digest(user.encode(), conf["username"].encode())
            and hmac.compare_digest(password.encode(), conf["password"].encode())):
        raise ExchangeFailure("wrong user name or password", 401)


def store_chunk(folder: Path, filename: str, stream, limit: int) -> int:
    """Append a request body to the session's file (1C splits files larger than file_limit
    into several posts of the same name); returns the file's size."""
    target = (folder / filename).resolve()
    if folder.resolve() not in target.parents:
        raise ExchangeFailure(f"{filename}: outside the exchange folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    size = target.stat().st_size if target.exists() else 0
    with open(target, "ab") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                out.close()
                target.unlink(missing_ok=True)
                raise ExchangeFailure(f"{filename}: larger than {limit} bytes", 413)
            out.write(chunk)
    return size


def unpack_archives(folder: Path) -> None:
    """Unpack the uploaded zip archives not unpacked yet (1C with zip=yes sends one archive,
    then asks for the import of the files inside it)."""
    for archive in sorted(folder.glob("*.zip")):
        marker = folder / f".{archive.name}.unpacked"
        if marker.exists():
            continue
        try:
            unpack_zip(archive, folder, allowed=_allowed_in_archive)
        except ExchangeFileError as exc:
            raise ExchangeFailure(f"{archive.name}: {exc.reason}") from None
        marker.touch()


def _allowed_in_archive(name: str) -> bool:
    try:
        return exchange_file_kind(name) not in ("zip",)
    except ExchangeFileError:
        return False


class OneCExchangeApi:
    """Mixed into GatewayService (which provides ``catalog``, ``deals`` and ``config``)."""

    @http("GET,POST", "/hooks/1c/exchange", body_limit=lambda c: settings(c)["file_limit"] + 65536)
    def onec_exchange(self, request):
        try:
            return self._exchange(request)
        except ExchangeFailure as exc:
            log.warning("1c exchange refused", reason=exc.reason, mode=request.args.get("mode"))
            return answer("failure", exc.reason, status=exc.status)

    def _exchange(self, request):
        conf = settings(self.config)
        kind, mode = request.args.get("type", ""), request.args.get("mode", "")
        if kind not in MODES:
            raise ExchangeFailure(f"unknown type {kind!r}: catalog or sale")
        if mode not in MODES[kind]:
            raise ExchangeFailure(f"unknown mode {mode!r} for type={kind}: {', '.join(MODES[kind])}")
        if mode == "checkauth":
            check_credentials(conf, request.headers.get("Authorization"))
            cookie = new_session(conf)
            return answer("success", COOKIE, cookie, f"timestamp={int(time.time())}")
        session = session_of(conf, request.cookies.get(COOKIE))
        folder = exchange_dir(self.config) / session
        if mode == "init":
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            return answer(f"zip={'yes' if conf['zip'] else 'no'}", f"file_limit={conf['file_limit']}")
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "catalog":
            return self._catalog(request, mode, session, folder, conf)
        return self._sale(request, mode, folder, conf)

    def _filename(self, request) -> tuple[str, str]:
        filename = (request.args.get("filename") or "").strip().replace("\\", "/")
        if not filename:
            raise ExchangeFailure("filename is required")
        try:
            return filename, exchange_file_kind(filename)
        except ExchangeFileError as exc:
            raise ExchangeFailure(exc.reason) from None

    def _catalog(self, request, mode, session, folder, conf):
        if mode in ("deactivate", "complete"):
            return answer("success")  # each full file already deactivated what it left out
        filename, kind = self._filename(request)
        if mode == "file":
            if request.method != "POST":
                raise ExchangeFailure("mode=file takes the file as a POST body", 405)
            store_chunk(folder, filename, request.stream, conf["max_file_bytes"])
            return answer("success")
        unpack_archives(folder)
        if kind == "image":
            return answer("success")  # pictures are not kept by the catalog (yet)
        if kind not in ("import", "offers", "prices", "rests"):
            raise ExchangeFailure(f"{filename}: not a catalog file")
        job = self.catalog.import_file({"session": session, "filename": filename})
        if job["state"] == "done":
            return answer("success", f"{filename}: imported")
        if job["state"] == "failed":
            return answer("failure", job["error"] or "import failed", status=422)
        return answer("progress", f"{filename}: {job['read']} records read")

    def _sale(self, request, mode, folder, conf):
        if mode == "query":
            orders = instance(ErpOrderPageSchema).load(self.deals.orders_for_erp())
            (folder / SENT_ORDERS).write_text(
                "\n".join(f"{order['id']} {order['version']}" for order in orders["items"]))
            return Response(orders_document(orders["items"], generated_at=utcnow()),
                            content_type="application/xml; charset=windows-1251")
        if mode == "success":
            sent = folder / SENT_ORDERS
            lines = sent.read_text().splitlines() if sent.exists() else []
            self.deals.mark_orders_exported(
                [{"id": deal_id, "version": int(version)}
                 for deal_id, version in (line.split() for line in lines if line.strip())])
            sent.unlink(missing_ok=True)
            return answer("success")
        filename, kind = self._filename(request)
        if kind != "orders":
            raise ExchangeFailure(f"{filename}: not an orders file (orders*.xml)")
        if mode == "file":
            if request.method != "POST":
                raise ExchangeFailure("mode=file takes the file as a POST body", 405)
            store_chunk(folder, filename, request.stream, conf["max_file_bytes"])
        path = folder / filename
        if not path.exists():
            raise ExchangeFailure(f"{filename}: no such file was uploaded")
        try:
            changes = read_order_changes(path.read_bytes())
        except BadOrdersFile as exc:
            raise ExchangeFailure(f"{filename}: {exc}", 422) from None
        self.deals.apply_erp_order_changes({"changes": [dataclasses.asdict(c) for c in changes]})
        return answer("success")
