"""CSV export and the server-drawn SVG charts of reports, from ReportSchema samples."""
import csv
import io
import xml.etree.ElementTree as ET

from report_samples import CALLS_PER_HOUR, CHURN, FUNNEL

from crmhub.contracts.base import instance
from crmhub.contracts.reporting import ReportSchema
from crmhub.services.gateway.report_render import (
    chart_svg,
    csv_filename,
    format_cell,
    report_csv,
    sections,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def test_the_samples_keep_the_report_contract():
    for sample in (FUNNEL, CALLS_PER_HOUR, CHURN):
        assert not instance(ReportSchema).validate(sample)


def test_a_grouped_report_is_one_csv_line_per_row_with_its_group_first():
    lines = list(csv.reader(io.StringIO(report_csv(FUNNEL))))
    assert lines[0] == ["group", "stage", "reached", "to_next", "median_s"]
    assert lines[1:] == [
        ["b2b", "New", "10", "0.8", "3600"],
        ["b2b", "Offer", "8", "0.25", "86400"],
        ["b2b", "Won", "2", "", ""],
        ["retail", "New", "4", "0.5", "90"],
        # A text cell a spreadsheet would run as a formula is defused; quotes survive.
        ["retail", "'=Won, \"big\"", "2", "", ""],
    ]


def test_a_flat_report_is_its_columns_keys_then_its_rows():
    lines = list(csv.reader(io.StringIO(report_csv(CHURN))))
    assert lines == [["name", "last_purchase", "ratio"],
                     ["Anna <b>", "2026-01-02", "3"], ["Boris", "2026-02-01", "2"]]
    assert csv_filename(FUNNEL) == "funnel_2026-01-01_2026-01-31.csv"
    assert csv_filename({"report": "calls/../x", "filters": {}}) == "calls----x.csv"


def test_cells_read_as_people_expect():
    assert format_cell(0.253, "percent") == "25.3 %"
    assert format_cell("1234.5", "money") == "1,234.50"
    assert format_cell(12000, "int") == "12,000"
    assert (format_cell(45, "seconds"), format_cell(600, "seconds"),
            format_cell(5400, "seconds"), format_cell(172800, "seconds")) == (
        "45 s", "10 min", "1.5 h", "2.0 d")
    assert format_cell(None, "int") == "—"


def test_the_funnel_is_drawn_per_pipeline_as_narrowing_bars_with_the_weak_stage_marked():
    b2b, retail = sections(FUNNEL)
    assert (b2b["title"], b2b["highlight"], b2b["why"]) == ("B2B", 1, "Lowest conversion: 25.0 %")
    assert retail["highlight"] is None
    svg = parse(chart_svg(FUNNEL, b2b["rows"], b2b["highlight"], "Funnel: B2B"))
    assert svg.get("data-chart") == "funnel" and svg.find(f"{SVG}title").text == "Funnel: B2B"
    bars = svg.findall(f".//{SVG}rect")
    widths = [float(b.get("width")) for b in bars]
    assert widths[0] > widths[1] > widths[2] > 0  # 10, 8, 2 deals
    # Centred: each narrower bar starts further right.
    assert float(bars[0].get("x")) < float(bars[1].get("x")) < float(bars[2].get("x"))
    rows = svg.findall(f"{SVG}g")
    assert [r.get("data-highlight") is not None for r in rows] == [False, True, False]
    assert [r.find(f"{SVG}text").text for r in rows] == ["New", "Offer", "Won"]


def test_a_line_chart_has_a_point_per_hour_for_each_series():
    svg = parse(chart_svg(CALLS_PER_HOUR))
    assert svg.get("data-chart") == "line"
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 2 and all(len(line.get("points").split()) == 24 for line in lines)
    inbound = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    # Higher counts are drawn higher (smaller y): hour 4 has 4 calls, hour 5 none.
    assert inbound[4] < inbound[3] < inbound[5]
    assert {t.text for t in svg.findall(f"{SVG}text")} >= {"00", "02", "22", "Inbound", "Missed"}


def test_chart_labels_are_escaped_and_an_empty_report_draws_nothing():
    svg = str(chart_svg(CHURN))
    assert "Anna &lt;b&gt;" in svg and "<b>" not in svg
    assert parse(svg).get("data-chart") == "bar"
    assert str(chart_svg({**CHURN, "rows": []})) == ""


def test_many_categories_are_drawn_as_columns_and_a_groups_table_keeps_its_own_columns():
    hours = {**CALLS_PER_HOUR, "chart": {"type": "bar", "x": "hour", "y": ["inbound"]}}
    svg = parse(chart_svg(hours))
    assert svg.get("data-chart") == "columns"
    heights = [float(r.get("height")) for r in svg.findall(f".//{SVG}rect")]
    assert len(heights) == 24 and heights[4] > heights[3] > heights[5] == 0
    grouped = {**FUNNEL, "columns": [{"key": "pipeline", "title": "Pipeline", "kind": "text"},
                                     *FUNNEL["columns"]]}
    assert [c["key"] for c in sections(grouped)[0]["columns"]] == [
        "stage", "reached", "to_next", "median_s"]
