"""Reports as the gateway shows them: CSV for download and charts as inline SVG.

Every report has the same shape (contracts/reporting.py ``ReportSchema``): columns, rows,
optional groups, a chart spec and an optional highlighted row; so one renderer serves all of
them. Charts are drawn here, on the server, as SVG markup: the pages load no script or
stylesheet from elsewhere (the CSP forbids it) and a chart shows without JavaScript. Colours
come from classes in ui.css, not inline styles, which the CSP also forbids.
"""
from __future__ import annotations

import csv
import io
import math
from decimal import Decimal, InvalidOperation

from markupsafe import Markup, escape

GROUP_COLUMN = "group"
# Marks the highlighted row of a chart (for people: its colour; for tests: this attribute).
MARK = ' data-highlight="true"'
# A cell a spreadsheet would run as a formula (a UTM source is whatever a link said).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Geometry of the charts, in SVG user units (the SVG scales to its box).
WIDTH = 640
LABEL_W = 170
VALUE_W = 70
ROW_H = 26
BAR_H = 18
LINE_H = 220
PAD = 24
LABEL_CHARS = 26
# A bar chart of more categories than this is drawn with vertical columns.
VERTICAL_FROM = 12


# -- values ------------------------------------------------------------------------------------

def number(value) -> float:
    """A cell as a number for a chart: decimals given as text count, anything else is 0."""
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else 0.0
    try:
        parsed = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0.0
    return parsed if math.isfinite(parsed) else 0.0


def duration(seconds) -> str:
    seconds = number(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_cell(value, kind: str) -> str:
    """A cell as people read it. A percent is given as a share (0.425 is shown 42.5 %)."""
    if value is None or value == "":
        return "—"
    if kind == "int":
        return f"{number(value):,.0f}"
    if kind == "money":
        return f"{number(value):,.2f}"
    if kind == "percent":
        return f"{number(value) * 100:.1f} %"
    if kind == "seconds":
        return duration(value)
    return str(value)


# -- CSV ---------------------------------------------------------------------------------------

def _csv_cell(value, kind: str):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = str(value)
    if kind == "text" and isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_rows(report: dict) -> tuple[list[str], list[list]]:
    """Header and rows of a report's CSV: the columns' keys; with groups, every group's rows
    with the group's key in a first column."""
    columns = report.get("columns") or []
    keys = [c["key"] for c in columns]
    kinds = [c.get("kind", "text") for c in columns]

    def line(row):
        return [_csv_cell(row.get(k), kind) for k, kind in zip(keys, kinds)]

    groups = report.get("groups")
    if groups:
        return [GROUP_COLUMN, *keys], [[_csv_cell(g.get("key"), "text"), *line(row)]
                                       for g in groups for row in g.get("rows") or []]
    return keys, [line(row) for row in report.get("rows") or []]


def report_csv(report: dict) -> str:
    header, rows = csv_rows(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def csv_filename(report: dict) -> str:
    """``funnel_2026-01-01_2026-01-31.csv``: the report and its period, safe as a filename."""
    filters = report.get("filters") or {}
    parts = [report.get("report") or "report"]
    parts += [str(filters[k]) for k in ("period_from", "period_to") if filters.get(k)]
    name = "_".join(parts)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:120] + ".csv"


# -- the highlighted row -----------------------------------------------------------------------

def highlight_index(rows: list[dict], highlight, x_key: str | None) -> int | None:
    """Which of ``rows`` the report highlights: ``highlight["row"]`` is an index, or a key
    matched against each row's ``key`` (or, failing that, its chart label)."""
    if not highlight or highlight.get("row") is None:
        return None
    wanted = highlight["row"]
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        return wanted if 0 <= wanted < len(rows) else None
    for field in ("key", x_key):
        for index, row in enumerate(rows):
            if field and row.get(field) is not None and str(row.get(field)) == str(wanted):
                return index
    return None


def summary_value(value) -> str:
    """A value of a report's summary: numbers grouped and rounded, the rest as given."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def section_columns(columns: list[dict], rows: list[dict]) -> list[dict]:
    """The columns a group's table shows: those its rows have (a grouped report's rows in a
    group may leave out what the group itself says, such as the pipeline)."""
    if not rows:
        return columns
    return [c for c in columns if any(c["key"] in row for row in rows)]


def sections(report: dict) -> list[dict]:
    """What a page draws, one section per group (or one for the whole report): its title,
    rows and the index of its highlighted row. A group may carry its own ``highlight``."""
    x_key = (report.get("chart") or {}).get("x")
    top = report.get("highlight")
    groups = report.get("groups")
    if not groups:
        rows = report.get("rows") or []
        return [{"key": None, "title": None, "rows": rows,
                 "highlight": highlight_index(rows, top, x_key),
                 "why": (top or {}).get("why"), "columns": report.get("columns") or []}]
    out = []
    for group in groups:
        rows = group.get("rows") or []
        own = group.get("highlight")
        if own is None and top and top.get("group") == group.get("key"):
            own = top
        out.append({"key": group.get("key"), "title": group.get("title") or group.get("key"),
                    "rows": rows, "highlight": highlight_index(rows, own, x_key),
                    "why": (own or {}).get("why"),
                    "columns": section_columns(report.get("columns") or [], rows)})
    return out


# -- SVG charts --------------------------------------------------------------------------------

def _short(text, limit: int = LABEL_CHARS) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _columns(report: dict) -> dict[str, dict]:
    return {c["key"]: c for c in report.get("columns") or []}


def _svg(kind: str, height: float, body: list[str], title: str) -> Markup:
    return Markup(
        '<svg class="chart chart-{k}" data-chart="{k}" role="img" viewBox="0 0 {w} {h}" '
        'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        '<title>{t}</title>{b}</svg>').format(k=kind, w=WIDTH, h=f"{height:g}", t=title,
                                              b=Markup("".join(body)))


def _legend(series: list[str], cols: dict, y: float) -> list[str]:
    out, x = [], LABEL_W
    for i, key in enumerate(series):
        label = cols.get(key, {}).get("title", key)
        out.append(f'<rect class="series-{i % 4}" x="{x}" y="{y - 10:g}" width="10" height="10"/>')
        out.append(f'<text class="legend" x="{x + 14}" y="{y:g}">{escape(_short(label, 20))}</text>')
        x += 28 + 7 * len(_short(label, 20))
    return out


def _bars(rows, x_key, series, cols, highlight, funnel: bool) -> tuple[float, list[str]]:
    """Horizontal bars, one row per report row: side by side per series, or (a funnel) one
    bar per row centred, so decreasing counts narrow like a funnel."""
    peak = max([number(r.get(k)) for r in rows for k in series] + [0]) or 1.0
    span = WIDTH - LABEL_W - VALUE_W
    per_row = ROW_H if funnel else max(ROW_H, BAR_H * len(series) + 8)
    body, y = [], 6.0
    if len(series) > 1 and not funnel:
        body += _legend(series, cols, 14)
        y = 26.0
    for index, row in enumerate(rows):
        marked = index == highlight
        label = _short(row.get(x_key))
        row_class = "chart-row highlight" if marked else "chart-row"
        body.append(f'<g class="{row_class}" data-row="{index}"'
                    f'{MARK if marked else ""}>')
        body.append(f'<text class="label" x="{LABEL_W - 8}" y="{y + BAR_H - 5:g}" '
                    f'text-anchor="end">{escape(label)}</text>')
        keys = series[:1] if funnel else series
        bar_h = BAR_H if funnel or len(keys) == 1 else (per_row - 8) / len(keys)
        for s, key in enumerate(keys):
            value = row.get(key)
            width = max(number(value), 0) / peak * span
            x = LABEL_W + (span - width) / 2 if funnel else LABEL_W
            top = y + s * bar_h
            shown = format_cell(value, cols.get(key, {}).get("kind", "int"))
            body.append(f'<rect class="bar series-{s % 4}" x="{x:.1f}" y="{top:.1f}" '
                        f'width="{width:.1f}" height="{bar_h - 2:.1f}" rx="2">'
                        f'<title>{escape(label)}: {escape(shown)}</title></rect>')
            body.append(f'<text class="value" x="{WIDTH - VALUE_W + 6}" '
                        f'y="{top + bar_h - 6:.1f}">{escape(shown)}</text>')
        body.append("</g>")
        y += per_row
    return y + 4, body


def _vertical(rows, x_key, series, cols, highlight) -> tuple[float, list[str]]:
    """Columns side by side per series along the x axis: bars for many categories (the 24
    hours of a day) without a chart as tall as the page."""
    peak = max([number(r.get(k)) for r in rows for k in series] + [0]) or 1.0
    left, right, top, bottom = 44, WIDTH - 12, 28, LINE_H - 28
    slot = (right - left) / len(rows)
    width = max(slot * 0.8 / len(series), 1)
    body = _legend(series, cols, 14) if len(series) > 1 else []
    body.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    body.append(f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">'
                f'{escape(format_cell(peak, "int"))}</text>')
    every = max(1, math.ceil(len(rows) / 12))
    for index, row in enumerate(rows):
        marked = index == highlight
        x0 = left + index * slot + slot * 0.1
        body.append(f'<g class="{"chart-row highlight" if marked else "chart-row"}" '
                    f'data-row="{index}"{MARK if marked else ""}>')
        if index % every == 0:
            body.append(f'<text class="tick" x="{x0 + slot * 0.4:.1f}" y="{bottom + 16}" '
                        f'text-anchor="middle">{escape(_short(row.get(x_key), 8))}</text>')
        for s, key in enumerate(series):
            height = max(number(row.get(key)), 0) / peak * (bottom - top)
            shown = format_cell(row.get(key), cols.get(key, {}).get("kind", "int"))
            label = cols.get(key, {}).get("title", key)
            body.append(f'<rect class="bar series-{s % 4}" x="{x0 + s * width:.1f}" '
                        f'y="{bottom - height:.1f}" width="{width:.1f}" height="{height:.1f}">'
                        f'<title>{escape(_short(row.get(x_key)))}, {escape(label)}: '
                        f'{escape(shown)}</title></rect>')
        body.append("</g>")
    return LINE_H, body


def _line(rows, x_key, series, cols, highlight) -> tuple[float, list[str]]:
    """A line per series over the rows in order (calls per hour of the day)."""
    peak = max([number(r.get(k)) for r in rows for k in series] + [0]) or 1.0
    left, right, top, bottom = 44, WIDTH - 12, 28, LINE_H - 28
    step = (right - left) / max(len(rows) - 1, 1)
    body = _legend(series, cols, 14) if len(series) > 1 else []
    body.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    body.append(f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">'
                f'{escape(format_cell(peak, "int"))}</text>')
    body.append(f'<text class="tick" x="{left - 6}" y="{bottom}" text-anchor="end">0</text>')
    every = max(1, math.ceil(len(rows) / 12))
    for index, row in enumerate(rows):
        if index % every == 0:
            body.append(f'<text class="tick" x="{left + index * step:.1f}" y="{bottom + 16}" '
                        f'text-anchor="middle">{escape(_short(row.get(x_key), 8))}</text>')
    for s, key in enumerate(series):
        points = [(left + i * step, bottom - number(r.get(key)) / peak * (bottom - top))
                  for i, r in enumerate(rows)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline class="line series-{s % 4}" fill="none" points="{path}"/>')
        for index, ((x, y), row) in enumerate(zip(points, rows)):
            marked = index == highlight
            shown = format_cell(row.get(key), cols.get(key, {}).get("kind", "int"))
            body.append(f'<circle class="point series-{s % 4}{" highlight" if marked else ""}" '
                        f'cx="{x:.1f}" cy="{y:.1f}" r="{5 if marked else 3}"'
                        f'{MARK if marked else ""}>'
                        f'<title>{escape(_short(row.get(x_key)))}: {escape(shown)}</title>'
                        f'</circle>')
    return LINE_H, body


def chart_svg(report: dict, rows: list[dict] | None = None, highlight: int | None = None,
              title: str | None = None) -> Markup:
    """The report's chart (``report["chart"]``) over ``rows`` (default: the report's rows) as
    an inline ``<svg>``; empty markup when there is nothing to draw."""
    spec = report.get("chart") or {}
    rows = report.get("rows") or [] if rows is None else rows
    x_key, series = spec.get("x"), list(spec.get("y") or [])
    kind = spec.get("type", "bar")
    if not rows or not x_key or not series:
        return Markup("")
    cols = _columns(report)
    title = title or report.get("title") or report.get("report") or "Chart"
    if kind == "line":
        height, body = _line(rows, x_key, series, cols, highlight)
    elif kind == "bar" and len(rows) > VERTICAL_FROM:
        height, body = _vertical(rows, x_key, series, cols, highlight)
        kind = "columns"
    else:
        height, body = _bars(rows, x_key, series, cols, highlight, funnel=kind == "funnel")
        kind = "funnel" if kind == "funnel" else "bar"
    return _svg(kind, height, body, title)
