"""Campaign segments over deals: the client cards with an open deal in a pipeline (and
stage), a page at a time in card id order."""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts.errors import NotFound
from crmhub.services.deals.models import deals, pipelines, stages


def contacts_with_open_deal(conn, pipeline_id: str, stage_key: str | None,
                            after_id: str | None, limit: int) -> dict:
    if conn.execute(sa.select(pipelines.c.id).where(pipelines.c.id == pipeline_id)).first() is None:
        raise NotFound(f"no pipeline {pipeline_id!r}")
    query = (sa.select(deals.c.contact_id).distinct()
             .where(deals.c.pipeline_id == pipeline_id, deals.c.status == "open")
             .order_by(deals.c.contact_id).limit(limit))
    if stage_key:
        stage_id = conn.execute(sa.select(stages.c.id).where(
            stages.c.pipeline_id == pipeline_id, stages.c.key == stage_key)).scalar()
        if stage_id is None:
            raise NotFound(f"pipeline {pipeline_id!r} has no stage {stage_key!r}")
        query = query.where(deals.c.stage_id == stage_id)
    if after_id is not None:
        query = query.where(deals.c.contact_id > after_id)
    ids = list(conn.execute(query).scalars())
    return {"contact_ids": ids, "next_after": ids[-1] if len(ids) == limit else None}
