"""The sales funnel in the operator UI: pipeline boards (drag a deal to another column to move
it), a deal's page (its product lines with their stock, a product picker over the catalog, and
what 1C says of the order), the client card's deals and tasks, the manager's own tasks ("my
tasks"), and reminders that pop up on whatever page the manager has open.

Built like the rest of the UI (ui.py: sessions, templates, error pages). ui.js adds dragging,
"load more" in a column and the reminders; without it a deal moves from its own page and a
column continues on a page of its own. The manager is the signed-in key's name, as in the
REST API ("my tasks" is ``GET /api/v1/tasks?manager=<name>``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import quote, urlencode

import eventlet
import structlog
from markupsafe import Markup
from nameko.exceptions import RemoteError
from werkzeug.utils import redirect

from crmhub.contracts.auth import allowed
from crmhub.contracts.base import instance
from crmhub.contracts.deals import ProductLineSchema
from crmhub.contracts.errors import Conflict, CrmhubError, InvalidInput, NotFound, Unavailable
from crmhub.runtime.db import utcnow
from crmhub.services.gateway.catalog_api import product_query
from crmhub.services.gateway.http import http, json_body
from crmhub.services.gateway.openapi import html_page
from crmhub.services.gateway.ui import TEMPLATES, parse_time, render, safe_next, ui_json, ui_page

log = structlog.get_logger(__name__)

READ, WRITE = "deals:read", "deals:write"
CATALOG_READ = "catalog:read"
PER_STAGE = 20  # deals per column on the board and per "load more"
TASKS_SHOWN = 200
CARD_DEALS = 50
CARD_TASKS = 100
CURRENCY_SIGNS = {"RUB": "₽"}
NARROW_NBSP = "\u202f"

# Reminders: ui.js asks GET /ui/reminders every few seconds (see ui_reminders). Answers overlap
# by this much, so a reminder claimed just before an answer but committed just after it still
# comes (the script drops the ones it showed); a tab away for longer than the lookback shows
# only what fell due within it ("my tasks" lists the rest).
REMINDER_OVERLAP = dt.timedelta(seconds=30)
REMINDER_LOOKBACK = dt.timedelta(hours=12)
REMINDER_PAGE = 100
REMINDERS_SHOWN = 10
CLOCK_SLACK = dt.timedelta(seconds=5)  # the deals service's clock may run a little ahead
# A poll gives up (503) rather than wait on a stopped deals service: every open tab polls, and
# each waiting poll would hold a gateway worker.
REMINDER_WAIT_SECONDS = 10

# The catalog on the deal page: the product picker asks /ui/products as the manager types, and
# the page shows the stock of its lines. Neither waits long on a catalog service that is down
# (a call to a stopped service would wait for ever): the picker says so, the page shows its
# lines without stock.
CATALOG_WAIT_SECONDS = 3
PICKER_LIMIT = 10
STOCK_IDS_PER_CALL = 200  # the largest page search_products gives
MAX_LINES = 200
LINE_KEYS = ("product_id", "sku", "name", "quantity", "price")
LINE_FIELD = re.compile(r"^lines-(\d{1,4})-(product_id|sku|name|quantity|price|remove)$")
_BLANKS = re.compile(r"[\s\u00a0\u202f]")


# -- rendering ---------------------------------------------------------------------------------

def money(amount, currency: str | None = None) -> str:
    """``150 000 ₽``, ``1 500.50 USD``; empty for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    text = format(value, ",.0f" if value == value.to_integral_value() else ",.2f")
    sign = CURRENCY_SIGNS.get(currency or "", currency or "")
    return f"{text.replace(',', NARROW_NBSP)}\u00a0{sign}".strip()


def totals_text(totals: list[dict]) -> str:
    """A column's sum, per currency: ``150 000 ₽ + 2 000 USD``; a dash when it holds nothing."""
    return " + ".join(money(t["amount"], t["currency"]) for t in totals) or "—"


def deal_name(deal: dict) -> str:
    """Who the deal is with: the client's name, else the deal's title."""
    return deal.get("contact_name") or deal.get("title") or "Deal"


def overdue(task: dict) -> bool:
    when = parse_time(task.get("due_at"))
    return bool(when and not task.get("done") and when <= utcnow())


def stage_kind(kind: str | None):
    """A badge for a closing stage (won, lost); nothing for an open one."""
    if kind in ("won", "lost"):
        return Markup('<span class="badge {}">{}</span>').format(kind, kind)
    return ""


TEMPLATES.globals.update(deal_name=deal_name, overdue=overdue, totals_text=totals_text,
                         stage_kind=stage_kind)
TEMPLATES.filters.update(money=money)


def _board_url(pipeline_id: str, manager: str | None = None, deal_id: str | None = None) -> str:
    url = f"/pipelines/{quote(pipeline_id)}"
    if manager:
        url += "?" + urlencode({"manager": manager})
    return url + (f"#deal-{deal_id}" if deal_id else "")


def _manager_filter(request) -> str | None:
    return (request.args.get("manager") or "").strip()[:100] or None


def _offset(value) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _column_summary(board: dict) -> dict:
    """What the board's headers show, for ui.js to update them after a move."""
    return {"count": board["count"], "totals": totals_text(board["totals"]),
            "columns": [{"stage_id": c["stage"]["id"], "count": c["count"],
                         "totals": totals_text(c["totals"])} for c in board["columns"]]}


def _with_deals(tasks: list[dict], deals: dict[str, dict]) -> list[dict]:
    """Tasks with their deal (where known) and whether they are overdue, for the templates."""
    return [{**task, "deal": deals.get(task.get("deal_id")), "overdue": overdue(task)}
            for task in tasks]


# -- product lines -----------------------------------------------------------------------------

def plain_number(value) -> str:
    """A quantity as people write it: ``12`` for ``12.000``, ``1.5`` for ``1.500``."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def _decimal(value) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def line_sum(line: dict) -> Decimal | None:
    """Quantity times price, to the kopeck; None when either is not a number (yet)."""
    quantity, price = _decimal(line.get("quantity")), _decimal(line.get("price"))
    if quantity is None or price is None:
        return None
    return (quantity * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def products_digest(lines: list[dict]) -> str:
    """A fingerprint of a deal's product lines as its page showed them: saving the page's lines
    is refused if someone changed the lines meanwhile (any other change, a move, does not
    matter: the deal's version would refuse those too)."""
    canonical = [{key: line.get(key) for key in LINE_KEYS} for line in lines]
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def submitted_lines(form) -> list[dict]:
    """The lines of the deal page's products form (``lines-<n>-<field>``) as typed, in the
    order of their rows on the page (a browser posts fields in page order; ``n`` only keeps a
    row's fields together: a picked product's row goes before the empty one, with a higher
    number); rows marked for removal and the empty row for a new line are left out."""
    rows: dict[str, dict] = {}  # by n, in the order first posted
    for key in form:
        match = LINE_FIELD.match(key)
        if match:
            rows.setdefault(match.group(1), {})[match.group(2)] = (form.get(key) or "").strip()
    lines = []
    for row in rows.values():
        if row.get("remove") or not any(row.get(k) for k in ("sku", "name", "quantity", "price")):
            continue
        lines.append({key: row.get(key, "") for key in LINE_KEYS})
    return lines


def _number_text(value: str) -> str:
    """``1 500,50`` as ``1500.50``: digits grouped with spaces and a decimal comma, as people
    type them in Russia."""
    return _BLANKS.sub("", value).replace(",", ".")


def lines_payload(lines: list[dict]) -> list[dict]:
    """The typed lines as the deals service takes them (ProductLineSchema); InvalidInput naming
    the line and field at fault. A picked product without an article is sold by its id."""
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"A deal holds at most {MAX_LINES} product lines.")
    payload, problems = [], []
    schema = instance(ProductLineSchema)
    for number, line in enumerate(lines, 1):
        item = {"sku": line["sku"] or line["product_id"], "product_id": line["product_id"] or None,
                "name": line["name"] or None, "quantity": _number_text(line["quantity"]),
                "price": _number_text(line["price"])}
        errors = {}
        for key, what in (("sku", "enter the SKU"), ("quantity", "enter the quantity"),
                          ("price", "enter the price of one unit")):
            if not item[key]:
                errors[key] = [what]
        for key, messages in schema.validate(item).items():
            errors.setdefault(key, messages if isinstance(messages, list) else [str(messages)])
        if errors:
            label = f"Line {number}" + (f" ({item['name'] or item['sku']})"
                                        if item["name"] or item["sku"] else "")
            problems.append(label + ": " + "; ".join(
                f"{key}: {' '.join(map(str, messages))}" for key, messages in errors.items()))
        payload.append(item)
    if problems:
        raise InvalidInput("The products were not saved. " + " ".join(
            p if p.endswith(".") else p + "." for p in problems))
    return payload


def product_rows(lines: list[dict], stock: dict | None) -> list[dict]:
    """Lines for the deal page: each with its sum and, for a catalog product, the catalog's
    offer (its stock per warehouse) and whether the stock falls short of the quantity."""
    rows = []
    for line in lines:
        offer = (stock or {}).get(line.get("product_id")) if line.get("product_id") else None
        quantity, available = _decimal(line.get("quantity")), offer and _decimal(offer["in_stock"])
        rows.append({**{key: line.get(key) for key in LINE_KEYS}, "catalog": offer,
                     "sum": line_sum(line),
                     "short": bool(offer and quantity is not None and available is not None
                                   and available < quantity)})
    return rows


TEMPLATES.filters.update(qty=plain_number)


# -- pages -------------------------------------------------------------------------------------

class SalesUi:
    """HTTP entrypoints of the sales funnel's pages; mixed into GatewayService next to
    OperatorUi (which renders the card and calls ``_ui_card_sales``)."""

    # -- pipelines and their boards ------------------------------------------------------------
    @http("GET", "/pipelines")
    @html_page
    @ui_page(permission=READ)
    def ui_pipelines(self, request, principal):
        pipelines = self.deals.list_pipelines()["items"]
        # One counted query per pipeline: installations have a handful of them.
        open_deals = {p["id"]: self.deals.search_deals(
            {"pipeline_id": p["id"], "status": "open", "limit": 1})["total"] for p in pipelines}
        return render("pipelines.html", principal=principal, pipelines=pipelines,
                      open_deals=open_deals, nav="pipelines")

    @http("GET", "/pipelines/<string:pipeline_id>")
    @html_page
    @ui_page(permission=READ)
    def ui_board(self, request, principal, pipeline_id):
        manager = _manager_filter(request)
        board = self.deals.board(pipeline_id, per_stage=PER_STAGE, manager=manager)
        managers = self.deals.list_managers()["items"]
        return render("board.html", principal=principal, board=board, managers=managers,
                      manager=manager, nav="pipelines", wide=True,
                      more_url=lambda stage_id, shown: self._ui_more_url(
                          pipeline_id, stage_id, shown, manager))

    @staticmethod
    def _ui_more_url(pipeline_id: str, stage_id: int, offset: int, manager: str | None) -> str:
        query = {"offset": offset, **({"manager": manager} if manager else {})}
        return f"/pipelines/{quote(pipeline_id)}/stages/{stage_id}?{urlencode(query)}"

    @http("GET", "/pipelines/<string:pipeline_id>/stages/<int:stage_id>")
    @html_page
    @ui_page(permission=READ)
    def ui_stage(self, request, principal, pipeline_id, stage_id):
        """More of a board's column, in the board's order: a page of its own without
        JavaScript; ui.js takes its cards into the column ("load more")."""
        pipeline = self.deals.get_pipeline(pipeline_id)
        stage = next((s for s in pipeline["stages"] if s["id"] == stage_id), None)
        if stage is None:
            raise NotFound(f"Pipeline «{pipeline['name']}» has no stage {stage_id}.")
        manager, offset = _manager_filter(request), _offset(request.args.get("offset"))
        page = self.deals.search_deals({
            "pipeline_id": pipeline_id, "stage_id": stage_id, "status": "open",
            "manager": manager, "limit": PER_STAGE, "offset": offset})
        shown = offset + len(page["items"])
        return render("stage.html", principal=principal, pipeline=pipeline, stage=stage,
                      deals=page["items"], total=page["total"], first=offset + 1, last=shown,
                      manager=manager, nav="pipelines",
                      board_url=_board_url(pipeline_id, manager),
                      next_url=(self._ui_more_url(pipeline_id, stage_id, shown, manager)
                                if shown < page["total"] and page["items"] else None))

    @http("POST", "/ui/deals/<string:deal_id>/move")
    @html_page
    @ui_json(WRITE)
    def ui_board_move(self, request, principal, deal_id):
        """A card dropped on another column (ui.js). Answers the deal's new place and version
        and the board's fresh counts and sums (of the same manager filter): the headers show
        what the database holds, moves of other operators included. A refused move answers
        409 (the deal changed since the board was loaded) or 400, and the card goes back."""
        body = json_body(request)
        move = {key: body[key] for key in ("stage_id", "expected_version", "reason")
                if body.get(key) is not None}
        deal = self.deals.move_deal(deal_id, move, principal.name)
        manager = body.get("manager") if isinstance(body.get("manager"), str) else None
        board = self.deals.board(deal["pipeline_id"], per_stage=1, manager=manager or None)
        return {"deal": {key: deal[key] for key in (
                    "id", "stage_id", "stage_name", "status", "version", "title",
                    "contact_name")},
                "board": _column_summary(board)}

    # -- a deal --------------------------------------------------------------------------------
    @http("GET", "/deals/<string:deal_id>")
    @html_page
    @ui_page(permission=READ)
    def ui_deal(self, request, principal, deal_id):
        return self._ui_deal_page(principal, deal_id)

    def _ui_deal_page(self, principal, deal_id: str, error: str | None = None, status=200,
                      lines: list[dict] | None = None, digest: str | None = None):
        """The deal's page; ``lines`` (with the ``digest`` of the lines they were typed over):
        a products form that was refused, shown as typed."""
        deal = self.deals.get_deal(deal_id)
        pipeline = self.deals.get_pipeline(deal["pipeline_id"])
        saved = deal.get("products") or []
        shown = saved if lines is None else lines
        catalog = allowed(principal.role, CATALOG_READ)
        stock, stock_error = self._ui_stock(shown) if catalog else ({}, None)
        rows = product_rows(shown, stock)
        sums = [row["sum"] for row in rows]
        return render("deal.html", status, principal=principal, deal=deal, error=error,
                      stages=pipeline["stages"], history=list(reversed(deal["history"])),
                      tasks=_with_deals(deal["tasks"], {}), nav="pipelines",
                      board_url=_board_url(deal["pipeline_id"], deal_id=deal["id"]),
                      product_rows=rows, show_stock=catalog, stock_error=stock_error,
                      lines_total=sum(sums) if sums and None not in sums else None,
                      products_digest=digest if lines is not None else products_digest(saved))

    def _ui_stock(self, lines: list[dict]) -> tuple[dict | None, str | None]:
        """The catalog's offers of the lines that sell one, by id, for their stock: one call
        (one per 200 products). ``(None, why)`` when the catalog does not answer: the page is
        still worth showing."""
        ids = list(dict.fromkeys(line["product_id"] for line in lines if line.get("product_id")))
        if not ids:
            return {}, None
        found = {}
        try:
            for start in range(0, len(ids), STOCK_IDS_PER_CALL):
                chunk = ids[start:start + STOCK_IDS_PER_CALL]
                page = self._ui_search_products(
                    {"ids": chunk, "include_inactive": True, "limit": len(chunk)})
                found.update((offer["id"], offer) for offer in page["items"])
        except (CrmhubError, RemoteError) as exc:
            log.warning("catalog failed: a deal page without stock", error=str(exc))
            return None, ("Stock unavailable: the catalog service failed or did not answer. "
                          "The lines are as saved; reload in a moment for their stock.")
        return found, None

    @http("POST", "/deals/<string:deal_id>/move")
    @html_page
    @ui_page(permission=WRITE)
    def ui_deal_move(self, request, principal, deal_id):
        """The deal page's "move" form (the board's dragging without JavaScript)."""
        form = request.form
        move = {"stage_id": form.get("stage_id"), "reason": form.get("reason", "").strip() or None,
                "expected_version": form.get("expected_version") or None}
        try:
            self.deals.move_deal(deal_id, move, principal.name)
        except Conflict:
            return self._ui_deal_page(principal, deal_id, status=409, error=(
                "Someone changed this deal since you opened it. Here it is as it is now: "
                "move it again if you still want to."))
        except InvalidInput as exc:
            return self._ui_deal_page(principal, deal_id, status=400, error=exc.message)
        return redirect(f"/deals/{quote(deal_id)}", 303)

    @http("POST", "/deals/<string:deal_id>/products")
    @html_page
    @ui_page(permission=WRITE)
    def ui_deal_products(self, request, principal, deal_id):
        """The deal page's products form: lines typed by hand or filled by the product picker
        (ui.js), saved whole through the deals service's ``update_deal`` (what ``PATCH
        /api/v1/deals/<id>`` does). Refused (409, the lines as they are now) if someone changed
        the deal's lines since the page was loaded; a change of anything else (a move, the
        amount) does not stand in the way. A line that does not check out is a 400 with the
        lines as typed."""
        lines = submitted_lines(request.form)
        digest = request.form.get("products_digest") or ""
        try:
            products = lines_payload(lines)
        except InvalidInput as exc:
            return self._ui_deal_page(principal, deal_id, status=400, error=exc.message,
                                      lines=lines, digest=digest)
        for _attempt in range(3):  # the deal's version moves on with every move and task
            deal = self.deals.get_deal(deal_id)
            if products_digest(deal.get("products") or []) != digest:
                break
            try:
                self.deals.update_deal(deal_id, {"products": products,
                                                 "expected_version": deal["version"]},
                                       principal.name)
            except Conflict:
                continue
            except InvalidInput as exc:
                details = f" ({json.dumps(exc.details, ensure_ascii=False)})" if exc.details else ""
                return self._ui_deal_page(principal, deal_id, status=400, lines=lines,
                                          digest=digest, error=(
                                              f"The products were not saved: {exc.message}"
                                              f"{details}"))
            return redirect(f"/deals/{quote(deal_id)}#products", 303)
        return self._ui_deal_page(principal, deal_id, status=409, error=(
            "Someone changed the products of this deal since you opened it, so yours were not "
            "saved. Here they are as they are now: make your changes again."))

    # -- the product picker --------------------------------------------------------------------
    @http("GET", "/ui/products")
    @html_page
    @ui_json(CATALOG_READ)
    def ui_products(self, request, principal):
        """``GET /api/v1/products`` for the deal page's product picker (ui.js), in the page's
        session: the same query (``q``, ``ids``, ``in_stock``, ``limit``, ``offset``; 10 at a
        time unless asked) and the same page of products. A catalog that does not answer is a
        503 the picker shows."""
        query = product_query(request)
        query.setdefault("limit", PICKER_LIMIT)
        return self._ui_search_products(query)

    def _ui_search_products(self, query: dict) -> dict:
        """The catalog's ``search_products``, waiting ``CATALOG_WAIT_SECONDS`` at most (less
        than RPC_TIMEOUT_SECONDS: a picker is typed into); a catalog service that is not
        running never answers, and is Unavailable."""
        with eventlet.Timeout(CATALOG_WAIT_SECONDS,
                              Unavailable("the catalog service did not answer")):
            return self.catalog.search_products(query)

    # -- tasks ---------------------------------------------------------------------------------
    @http("GET", "/tasks")
    @html_page
    @ui_page(permission=READ)
    def ui_tasks(self, request, principal):
        """The signed-in manager's tasks: open ones soonest first (so the overdue come first),
        or the latest done ones (``?show=done``) to take one back."""
        show = "done" if request.args.get("show") == "done" else "open"
        query = {"manager": principal.name, "done": show == "done"}
        if show == "open":
            page = self.deals.search_tasks({**query, "limit": TASKS_SHOWN})
            tasks = page["items"]
        else:  # soonest first from the service: the latest are on its last page
            total = self.deals.search_tasks({**query, "limit": 1})["total"]
            page = self.deals.search_tasks({**query, "limit": TASKS_SHOWN,
                                            "offset": max(0, total - TASKS_SHOWN)})
            tasks = list(reversed(page["items"]))
        # The deals they belong to, for the client's name: one query for the manager's deals.
        deals = {d["id"]: d for d in self.deals.search_deals(
            {"manager": principal.name, "limit": 500})["items"]}
        tasks = _with_deals(tasks, deals)
        just_done = None
        if request.args.get("done"):
            try:
                just_done = self.deals.get_task(request.args["done"])
            except NotFound:
                pass
        return render("tasks.html", principal=principal, show=show, total=page["total"],
                      overdue_tasks=[t for t in tasks if t["overdue"]],
                      later_tasks=[t for t in tasks if not t["overdue"]],
                      just_done=just_done if just_done and just_done["done"] else None,
                      nav="tasks")

    @http("POST", "/tasks/<string:task_id>")
    @html_page
    @ui_page(permission=WRITE)
    def ui_task_update(self, request, principal, task_id):
        """Mark a task done or undone (a form on "my tasks", the card, a deal, a reminder),
        then back to where it was posted from."""
        done = request.form.get("done")
        if done not in ("true", "false"):
            raise InvalidInput("Say whether the task is done (done=true or done=false).")
        self.deals.update_task(task_id, {"done": done == "true"}, principal.name)
        return redirect(safe_next(request.form.get("next")), 303)

    # -- reminders -----------------------------------------------------------------------------
    # Polling, not a stream: a server-sent event stream or a long poll would hold a gateway
    # worker (and its eventlet thread) per open tab for as long as the tab is open, and nameko
    # caps workers (max_workers): a call center's tabs would starve the REST API. A poll every
    # 5 s costs one or two indexed lookups in the deals service and answers at once; a reminder
    # shows within the poll interval plus the reminder loop's own delay (milliseconds). It
    # needs no new RPC: the deals service stamps each task it reminds with ``reminded_at``,
    # which ``search_tasks`` returns.
    @http("GET", "/ui/reminders")
    @html_page
    @ui_json(READ)
    def ui_reminders(self, request, principal):
        """The signed-in manager's open tasks reminded after ``since`` (the ``next`` of the
        previous answer; the last 30 s without it) and the number of their overdue tasks.
        Answers overlap (``next`` lies ``REMINDER_OVERLAP`` back): ui.js drops the reminders
        it showed already, by task id and ``reminded_at``."""
        now = utcnow()
        since = parse_time(request.args.get("since")) or now - REMINDER_OVERLAP
        since = min(max(since, now - REMINDER_LOOKBACK), now)
        # A reminded task fell due before it was reminded: among those due by now.
        query = {"manager": principal.name, "done": False, "limit": REMINDER_PAGE,
                 "due_before": (now + CLOCK_SLACK).isoformat()}
        with eventlet.Timeout(REMINDER_WAIT_SECONDS,
                              Unavailable("the deals service did not answer")):
            page = self.deals.search_tasks(query)
            if page["total"] > len(page["items"]):  # soonest first: the latest due are last
                page = self.deals.search_tasks({**query,
                                                "offset": page["total"] - REMINDER_PAGE})
            fired = sorted((t for t in page["items"]
                            if t["reminded_at"] and parse_time(t["reminded_at"]) > since),
                           key=lambda t: t["reminded_at"])[-REMINDERS_SHOWN:]
            items = [self._ui_reminder(t) for t in fired]
        return {"now": now.isoformat(), "next": (now - REMINDER_OVERLAP).isoformat(),
                "overdue": page["total"], "items": items}

    def _ui_reminder(self, task: dict) -> dict:
        """A reminder as ui.js shows it: the task, who it is about, where to open it."""
        about, url = None, "/tasks"
        if task.get("deal_id"):
            url = f"/deals/{quote(task['deal_id'])}"
            try:
                about = deal_name(self.deals.get_deal(task["deal_id"]))
            except NotFound:
                pass
        elif task.get("contact_id"):
            url = f"/contacts/{quote(task['contact_id'])}"
        return {"id": task["id"], "title": task["title"], "due_at": task["due_at"],
                "reminded_at": task["reminded_at"], "about": about, "url": url}

    # -- the client card's deals and tasks (OperatorUi.ui_card renders them) -------------------
    def _ui_card_sales(self, principal, contact_id: str) -> dict:
        if not allowed(principal.role, READ):
            return {"sales": None}
        try:
            deals = self.deals.search_deals({"contact_id": contact_id, "limit": CARD_DEALS})
            tasks = self.deals.search_tasks({"contact_id": contact_id, "limit": CARD_TASKS})
        except RemoteError as exc:  # the card itself is still worth showing
            log.error("deals service failed", error=str(exc))
            return {"sales": {"error": "The deals service failed: deals and tasks are not "
                                       "shown. Reload in a moment."}}
        by_id = {d["id"]: d for d in deals["items"]}
        # Open tasks first (soonest first), then the done ones.
        ordered = sorted(tasks["items"], key=lambda t: t["done"])
        return {"sales": {"deals": deals["items"], "deals_total": deals["total"],
                          "tasks": _with_deals(ordered, by_id), "tasks_total": tasks["total"]}}
