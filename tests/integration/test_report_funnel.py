"""Funnel report against a scripted history with numbers worked out by hand: events delivered
twice and out of order, a deal moving backwards, a deal still open; and the same numbers after
a rebuild from the journal."""
import random
import threading

from funnel_history import history

from crmhub.services.reporting.projections.funnel import bucket_of

MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}


def stages_of(report, pipeline="sales"):
    group = next(g for g in report["groups"] if g["key"] == pipeline)
    return {row["stage"]: row for row in group["rows"]}, group


def test_reached_conversion_and_time_in_stage(reporting):
    events = history()
    shuffled = events * 2
    random.Random(7).shuffle(shuffled)
    assert reporting.feed(shuffled) == len(events)

    report = reporting.report("funnel")
    stages, group = stages_of(report)
    assert list(stages) == ["New", "Qualified", "Proposal", "Won", "Lost"]
    assert {k: v["reached"] for k, v in stages.items()} == {
        "New": 5, "Qualified": 3, "Proposal": 1, "Won": 1, "Lost": 2}
    # New: d1, d2, d5 went further (d3 only to Lost); Qualified: only d1 did.
    assert stages["New"]["to_next"] == 0.6
    assert stages["Qualified"]["to_next"] == 0.3333
    assert stages["Proposal"]["to_next"] == 1.0
    assert stages["Won"]["to_next"] is None
    assert stages["New"]["to_won"] == 0.2
    assert stages["Qualified"]["to_won"] == 0.3333
    assert stages["Lost"]["to_won"] == 0.0
    # Time in New: d1 1 h, d2 2 h + 1 h, d3 30 min, d5 1 h -> median 1 h (histogram bucket).
    assert bucket_of(stages["New"]["median_seconds"]) == bucket_of(3600)
    # Qualified: d1 2 h, d2 2 h + 43 h; d5 has not left it.
    assert bucket_of(stages["Qualified"]["median_seconds"]) == bucket_of(7200)
    assert bucket_of(stages["Proposal"]["median_seconds"]) == bucket_of(21 * 3600)
    assert group["highlight"]["row"] == "2"
    assert report["highlight"]["group"] == "sales"
    assert "Qualified" in report["highlight"]["why"]
    assert report["summary"]["won"] == 1


def test_filters_by_period_manager_and_source(reporting):
    reporting.feed(history())
    march, _ = stages_of(reporting.report("funnel", **MARCH))
    assert march["New"]["reached"] == 4 and march["New"]["to_next"] == 0.75
    april = reporting.report("funnel", period_from="2026-04-01", period_to="2026-04-30")
    assert stages_of(april)[0]["New"]["reached"] == 1
    # A period cut inside months reads the daily counters: 2 March only.
    one_day, _ = stages_of(reporting.report("funnel", period_from="2026-03-02",
                                            period_to="2026-03-02"))
    assert one_day["New"]["reached"] == 4
    assert reporting.report("funnel", period_from="2026-03-03", period_to="2026-04-04")[
        "groups"] == []
    boris, _ = stages_of(reporting.report("funnel", manager="boris"))
    assert boris["New"]["reached"] == 2 and boris["New"]["to_next"] == 0.0
    yandex, _ = stages_of(reporting.report("funnel", source="yandex"))
    assert {k: v["reached"] for k, v in yandex.items()} == {"New": 1, "Qualified": 1, "Lost": 1}
    assert reporting.report("funnel", pipeline_id="other")["groups"] == []


def test_rebuild_gives_the_live_numbers(reporting):
    events = history()
    reporting.feed(reversed(events))
    live = [reporting.report("funnel"), reporting.report("funnel", **MARCH),
            reporting.report("managers", **MARCH)]
    assert reporting.rebuild()["events"] == len(events)
    assert [reporting.report("funnel"), reporting.report("funnel", **MARCH),
            reporting.report("managers", **MARCH)] == live


def test_deals_that_move_while_a_rebuild_runs_count_once(reporting):
    """Live events keep being applied between a rebuild's chunks; what they add to the
    counters meanwhile is counted once when the rebuild ends."""
    events = history()
    half = len(events) // 2
    reporting.feed(events[:half])
    late = iter([events[half:]])

    def feed_live(_replayed):  # from another thread, as the service's handlers would
        worker = threading.Thread(target=reporting.feed, args=(next(late, []),))
        worker.start()
        worker.join()

    rebuilt = reporting.rebuild(chunk=3, progress=feed_live)
    assert rebuilt["events"] >= half
    during = [reporting.report("funnel"), reporting.report("funnel", **MARCH),
              reporting.report("funnel", manager="boris")]
    reporting.rebuild()
    assert [reporting.report("funnel"), reporting.report("funnel", **MARCH),
            reporting.report("funnel", manager="boris")] == during
    stages, _ = stages_of(during[0])
    assert {k: v["reached"] for k, v in stages.items()} == {
        "New": 5, "Qualified": 3, "Proposal": 1, "Won": 1, "Lost": 2}
