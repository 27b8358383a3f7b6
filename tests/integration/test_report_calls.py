"""Call center report against a scripted day of calls with numbers worked out by hand."""
from reporting_history import rows_by
from reporting_scripts import calls_history

MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}


def test_call_center_figures(reporting):
    reporting.feed(calls_history())
    report = reporting.report("calls", **MARCH)
    summary = report["summary"]
    assert (summary["inbound"], summary["answered"], summary["missed"]) == (5, 2, 3)
    assert summary["missed_share"] == 0.6
    assert summary["avg_wait_s"] == 32.0      # (20 + 40 + 60 + 30 + 10) / 5
    assert summary["avg_answer_s"] == 15.0    # (20 + 10) / 2
    assert summary["avg_talk_s"] == 180.0     # (300 + 60) / 2
    assert (summary["called_back"], summary["called_back_share"]) == (2, 0.6667)
    assert summary["time_zone"] == "UTC"

    hours = rows_by(report, "hour")
    assert len(hours) == 24
    assert (hours[9]["inbound"], hours[9]["answered"], hours[9]["missed"]) == (2, 1, 1)
    assert (hours[10]["inbound"], hours[10]["answered"], hours[10]["missed"]) == (3, 1, 2)
    assert hours[10]["missed_share"] == 0.6667 and hours[10]["avg_wait_s"] == 33.3
    assert sum(r["inbound"] for r in report["rows"]) == 5
    assert report["highlight"]["row"] == 10


def test_callback_window_and_filters(reporting):
    reporting.feed(calls_history())
    wide = reporting.report("calls", callback_minutes=30, **MARCH)["summary"]
    assert (wide["called_back"], wide["called_back_share"]) == (3, 1.0)
    narrow = reporting.report("calls", callback_minutes=5, **MARCH)["summary"]
    assert narrow["called_back"] == 0  # k3 came 9 min 20 s after k2 hung up; k6 6.5 min after k5
    boris = reporting.report("calls", manager="boris", **MARCH)["summary"]
    assert (boris["inbound"], boris["missed"]) == (1, 0)
    april = reporting.report("calls", period_from="2026-04-01", period_to="2026-04-30")
    assert (april["summary"]["inbound"], april["summary"]["missed"]) == (1, 1)


def test_hours_in_the_time_zone_asked(reporting):
    reporting.feed(calls_history())
    moscow = reporting.report("calls", time_zone="Europe/Moscow", **MARCH)  # UTC+3
    by_hour = {r["hour"]: r["inbound"] for r in moscow["rows"] if r["inbound"]}
    assert by_hour == {12: 2, 13: 3}
    assert moscow["summary"]["time_zone"] == "Europe/Moscow"
    assert moscow["highlight"]["row"] == 13


def test_rebuild_gives_the_live_numbers(reporting):
    reporting.feed(calls_history())
    live = reporting.report("calls", **MARCH)
    reporting.rebuild()
    assert reporting.report("calls", **MARCH) == live
