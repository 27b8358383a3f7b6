"""Report samples in the shape every report shares (contracts/reporting.py ReportSchema), for the
gateway's unit tests of CSV export, charts and pages."""

FUNNEL = {
    "report": "funnel", "title": "Sales funnel",
    "filters": {"period_from": "2026-01-01", "period_to": "2026-01-31", "pipeline_id": None,
                "manager": None, "source": None, "callback_minutes": 15, "factor": 1.5,
                "limit": 100},
    "columns": [{"key": "stage", "title": "Stage", "kind": "text"},
                {"key": "reached", "title": "Reached", "kind": "int"},
                {"key": "to_next", "title": "To next", "kind": "percent"},
                {"key": "median_s", "title": "Median time", "kind": "seconds"}],
    "rows": [],
    "groups": [
        {"key": "b2b", "title": "B2B", "rows": [
            {"key": "new", "stage": "New", "reached": 10, "to_next": 0.8, "median_s": 3600},
            {"key": "offer", "stage": "Offer", "reached": 8, "to_next": 0.25, "median_s": 86400},
            {"key": "won", "stage": "Won", "reached": 2, "to_next": None, "median_s": None}]},
        {"key": "retail", "title": "Retail", "rows": [
            {"key": "new", "stage": "New", "reached": 4, "to_next": 0.5, "median_s": 90},
            {"key": "won", "stage": "=Won, \"big\"", "reached": 2, "to_next": None,
             "median_s": None}]}],
    "chart": {"type": "funnel", "x": "stage", "y": ["reached"]},
    "highlight": {"row": "offer", "group": "b2b", "why": "Lowest conversion: 25.0 %"},
    "summary": {"deals": 14, "won": 4},
}

CALLS_PER_HOUR = {
    "report": "calls", "title": "Call center", "filters": {},
    "columns": [{"key": "hour", "title": "Hour", "kind": "text"},
                {"key": "inbound", "title": "Inbound", "kind": "int"},
                {"key": "missed", "title": "Missed", "kind": "int"}],
    "rows": [{"hour": f"{h:02d}", "inbound": h % 5, "missed": h % 2} for h in range(24)],
    "chart": {"type": "line", "x": "hour", "y": ["inbound", "missed"]},
    "highlight": None, "summary": {},
}

CHURN = {
    "report": "churn", "title": "Churn risk", "filters": {},
    "columns": [{"key": "name", "title": "Client", "kind": "text"},
                {"key": "last_purchase", "title": "Last purchase", "kind": "date"},
                {"key": "ratio", "title": "Overdue ×", "kind": "int"}],
    "rows": [{"contact_id": "c1", "name": "Anna <b>", "last_purchase": "2026-01-02", "ratio": 3},
             {"contact_id": "c2", "name": "Boris", "last_purchase": "2026-02-01", "ratio": 2}],
    "chart": {"type": "bar", "x": "name", "y": ["ratio"]},
    "highlight": None, "summary": {"clients": 2},
}


# -- a history scripted through a running hub's REST API (e2e and browser tests) ---------------

REPORT_SERVICES = ("contacts", "deals", "telephony", "reporting", "gateway")
SCHOOL = "language-school"
# Stages of the language-school template, by name.
REQUEST, BOOKED, TRIAL, SIGNED, LOST = (
    "Request", "Trial lesson booked", "Trial done", "Contract signed", "Lost")
# Each deal's path through the school's funnel. By hand: Request reached by 4 deals, 3 of them
# went on (75 %); Trial lesson booked by 3 (Ben's deal twice, counted once), 1 went on to the
# trial (33.3 %, the lowest: highlighted); Trial done by 1, who signed (100 %); 1 lost.
PATHS = {"Anna": [BOOKED, TRIAL, SIGNED],
         "Ben": [BOOKED, REQUEST, BOOKED],
         "Cleo": [BOOKED, LOST],
         "Dan": []}


def _ok(response, status=200):
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def script_school_funnel(hub) -> dict:
    """Load the template, create a card and a deal per client of PATHS and move the deals
    along their paths (one backwards); a second pipeline gets one deal, won. Returns the
    school's stage ids by name."""
    _ok(hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Olga"}))
    _ok(hub.api("POST", f"/api/v1/pipelines/templates/{SCHOOL}"), 201)
    _ok(hub.api("POST", "/api/v1/pipelines/templates/b2b-sales"), 201)
    stages = {s["name"]: s["id"] for s in _ok(hub.api("GET", f"/api/v1/pipelines/{SCHOOL}"))
              ["stages"]}
    for name, path in PATHS.items():
        card = _ok(hub.api("POST", "/api/v1/contacts", json={"name": name}), 201)
        deal = _ok(hub.api("POST", "/api/v1/deals", json={
            "contact_id": card["id"], "pipeline_id": SCHOOL, "manager": "Olga",
            "amount": "1000"}), 201)
        for stage in path:
            _ok(hub.api("POST", f"/api/v1/deals/{deal['id']}/move",
                        json={"stage_id": stages[stage]}))
    # The other pipeline's one deal is won at once: its only open stage converts fully, so
    # the school's stage stays the weakest of all.
    card = _ok(hub.api("POST", "/api/v1/contacts", json={"name": "Company"}), 201)
    deal = _ok(hub.api("POST", "/api/v1/deals", json={
        "contact_id": card["id"], "pipeline_id": "b2b-sales", "manager": "Olga"}), 201)
    [won] = [s["id"] for s in _ok(hub.api("GET", "/api/v1/pipelines/b2b-sales"))["stages"]
             if s["kind"] == "won"]
    _ok(hub.api("POST", f"/api/v1/deals/{deal['id']}/move", json={"stage_id": won}))
    return stages


def school_rows(report: dict) -> dict:
    """The school's funnel rows by stage name."""
    [group] = [g for g in report["groups"] if g["key"] == SCHOOL]
    return {row["stage"]: row for row in group["rows"]}


def wait_for_school_funnel(hub) -> dict:
    """The funnel report once every move of script_school_funnel is in it."""
    from support import wait_for

    def settled():
        report = hub.api("GET", "/api/v1/reports/funnel").json()
        if len(report.get("groups") or []) != 2:
            return None
        rows = school_rows(report)
        reached = {stage: row["reached"] for stage, row in rows.items()}
        [b2b] = [g for g in report["groups"] if g["key"] != SCHOOL]
        b2b_won = [r["reached"] for r in b2b["rows"] if r.get("kind") == "won"] == [1]
        return reached.get(SIGNED) == 1 and reached.get(LOST) == 1 and \
            reached.get(BOOKED) == 3 and b2b_won and report

    return wait_for(settled, timeout=30, interval=0.3, message="the moves in the funnel")


def publish_past_purchases(hub, amqp_uri: str, template_deal: dict, contact_id: str,
                           won_days_ago: list[int]) -> None:
    """deal_won events of deals the deals service closed long ago (a purchase history older
    than the hub), published on its exchange as it publishes them: each a copy of a real won
    deal, for ``contact_id``, won ``won_days_ago`` days before now."""
    import datetime as dt
    import json
    import uuid

    import amqp

    from crmhub.contracts import events as ev
    from crmhub.contracts.base import instance
    from crmhub.contracts.deals import DealClosedSchema, DealSchema, StageChangeSchema
    from crmhub.runtime.messaging import connection_params

    now = dt.datetime.now(dt.timezone.utc)
    deal_fields = {k: v for k, v in template_deal.items() if k in DealSchema().fields}
    change_fields = {k: v for k, v in template_deal["history"][-1].items()
                     if k in StageChangeSchema().fields}
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    try:
        channel = conn.channel()
        for days in won_days_ago:
            when = (now - dt.timedelta(days=days)).isoformat()
            deal_id = uuid.uuid4().hex
            event = instance(DealClosedSchema).load({
                "event_id": uuid.uuid4().hex, "occurred_at": when,
                "deal": {**deal_fields, "id": deal_id, "contact_id": contact_id,
                         "created_at": when, "updated_at": when, "closed_at": when},
                "change": {**change_fields, "deal_id": deal_id, "changed_at": when}})
            body = json.dumps(instance(DealClosedSchema).dump(event))
            channel.basic_publish(
                amqp.Message(body, content_type="application/json", delivery_mode=2),
                exchange=f"{ev.spec(ev.DEAL_WON).owner}.events", routing_key=ev.DEAL_WON)
    finally:
        conn.close()
