"""Card merges: contacts_merged maps a source card to its target, so projections keyed by
card count a merged card's history as the target's. Resolved at report time, whatever order
the merge and the card's other events arrived in."""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.runtime.db import insert_ignoring_conflicts
from crmhub.services.reporting.models import card_aliases

TABLES = [card_aliases]


def apply_merges(tx, events: list[dict]) -> None:
    rows = [{"source_id": e["source_id"], "target_id": e["target_id"],
             "merged_at": e["_occurred_at"]} for e in events if e["source_id"] != e["target_id"]]
    # A card is merged away once: the first merge recorded stays (a replay changes nothing).
    insert_ignoring_conflicts(tx.conn, card_aliases, rows, index_elements=["source_id"])


HANDLES = {ev.CONTACTS_MERGED: apply_merges}


def merges(conn) -> dict[str, str]:
    """source card -> target card of every merge (follow chains with
    ``snapshots.resolve_aliases``)."""
    return dict(conn.execute(sa.select(card_aliases.c.source_id, card_aliases.c.target_id)).all())
