"""A scripted funnel history: five deals of one pipeline, one moving backwards (the numbers
are worked out by hand in tests/integration/test_report_funnel.py)."""
from reporting_history import at, event

from crmhub.contracts import events as ev

# position, name, kind
STAGES = {1: (0, "New", "open"), 2: (1, "Qualified", "open"), 3: (2, "Proposal", "open"),
          4: (3, "Won", "won"), 5: (4, "Lost", "lost")}


def snapshot(did, stage, version, created, manager, source, amount=None, closed=None):
    position, name, kind = STAGES[stage]
    return {"id": did, "title": did, "contact_id": "c-" + did, "pipeline_id": "sales",
            "pipeline_name": "Sales", "stage_id": stage, "stage_name": name,
            "stage_position": position, "status": kind, "manager": manager, "amount": amount,
            "currency": "RUB", "source": {"channel": "form", "tracking": {"utm_source": source}},
            "version": version, "created_at": created, "updated_at": created, "closed_at": closed}


class Deal:
    """Builds one deal's events: creation, then moves (change ids grow with the version)."""

    def __init__(self, did, created, manager="anna", source="google", amount="1000.00"):
        self.did, self.created, self.manager, self.source, self.amount = (
            did, created, manager, source, amount)
        self.stage, self.version, self.events = 1, 1, []
        self.events.append(event(ev.DEAL_CREATED, created, deal=self._snap(), cause="api"))

    def _snap(self, closed=None):
        return snapshot(self.did, self.stage, self.version, self.created, self.manager,
                        self.source, self.amount, closed)

    def move(self, stage, when):
        previous, self.stage = self.stage, stage
        self.version += 1
        closed = when if STAGES[stage][2] != "open" else None
        change = {"id": int(self.did[1:]) * 100 + self.version, "deal_id": self.did,
                  "from_stage_id": previous, "to_stage_id": stage,
                  "to_stage_name": STAGES[stage][1], "version": self.version, "changed_at": when}
        body = {"deal": self._snap(closed), "change": change}
        self.events.append(event(ev.DEAL_STAGE_CHANGED, when, **body))
        kind = STAGES[stage][2]
        if kind != "open":
            self.events.append(event(ev.DEAL_WON if kind == "won" else ev.DEAL_LOST, when, **body))
        return self


def history() -> list:
    t0 = at()
    d1 = Deal("d1", t0).move(2, at(hours=1)).move(3, at(hours=3)).move(4, at(days=1))
    # d2 goes back to New and forward again before it is lost.
    d2 = Deal("d2", t0, source="yandex").move(2, at(hours=2)).move(1, at(hours=4)) \
        .move(2, at(hours=5)).move(5, at(days=2))
    d3 = Deal("d3", t0, manager="boris").move(5, at(minutes=30))
    d4 = Deal("d4", at(days=34), manager="boris")            # April, still open
    d5 = Deal("d5", t0).move(2, at(hours=1))                  # still in Qualified
    return [e for d in (d1, d2, d3, d4, d5) for e in d.events]
