"""A campaign's segment resolved through the services that own the data: cards from the
contacts service (tags, source, last activity, an email), open deals from the deals service.

Both are paged in card id order; a deal filter is read whole first (card ids only) and the
card pages are kept to the cards it names.
"""
from __future__ import annotations

from collections.abc import Iterator

from crmhub.contracts.base import instance
from crmhub.contracts.campaigns import SegmentSchema

CONTACT_PAGE = 5000
DEAL_PAGE = 20000


def card_filter(segment: dict) -> dict:
    """The segment as the contacts service's ``segment`` RPC takes it (dumped: dates as text)."""
    return instance(SegmentSchema).dump(segment)


def contacts_with_deal(deals_rpc, segment: dict) -> set[str] | None:
    """Card ids with an open deal as the segment asks, or None if it asks for none."""
    if not segment.get("pipeline_id"):
        return None
    ids: set[str] = set()
    after = None
    while True:
        page = deals_rpc.segment_contacts({"pipeline_id": segment["pipeline_id"],
                                           "stage_key": segment.get("stage_key"),
                                           "after_id": after, "limit": DEAL_PAGE})
        ids.update(page["contact_ids"])
        after = page["next_after"]
        if after is None:
            return ids


def pages(contacts_rpc, deals_rpc, segment: dict, after_id: str | None = None,
          page_size: int = CONTACT_PAGE) -> Iterator[tuple[list[dict], str | None]]:
    """``(members, next_after)`` per page of matching cards from ``after_id`` on; the last
    page has ``next_after`` None. ``next_after`` is where to resume after a restart."""
    with_deal = contacts_with_deal(deals_rpc, segment)
    wanted = card_filter(segment)
    reply = contacts_rpc.segment.call_async(wanted, after_id, page_size)
    while True:
        page = reply.result()
        after = page["next_after"]
        if after is not None:  # the next page is read while the caller stores this one
            reply = contacts_rpc.segment.call_async(wanted, after, page_size)
        members = page["items"]
        if with_deal is not None:
            members = [m for m in members if m["id"] in with_deal]
        yield members, after
        if after is None:
            return
