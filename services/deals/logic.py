"""The rules of the sales funnel: pipelines and their templates, deals and their stage history,
tasks and their reminders, managers, lead rules.

Plain functions over a ``Transaction`` (``tx.conn`` plus inbox/outbox) or a connection, so
they are tested without a broker and run the same on PostgreSQL and SQLite.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import yaml
from marshmallow import ValidationError

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.deals import (
    DealClosedSchema,
    DealCreatedSchema,
    DealStageChangedSchema,
    DealUpdatedSchema,
    LeadRuleInputSchema,
    ProductLineSchema,
    StageInputSchema,
    TaskEventSchema,
    TaskUpdatedSchema,
)
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound, PermanentError
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, is_postgres, new_id, utcnow
from crmhub.services.deals.models import (
    deals,
    lead_rules,
    managers,
    pipeline_managers,
    pipelines,
    stage_changes,
    stages,
    tasks,
)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REMINDER_BATCH = 100


def _utc(value: dt.datetime) -> dt.datetime:
    """Store UTC: SQLite keeps the wall time only, so +03:00 must not reach it as is."""
    return value.astimezone(dt.timezone.utc)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", {field: [message]})


# -- templates ---------------------------------------------------------------------------------

def template_names() -> list[str]:
    return sorted(path.stem for path in TEMPLATES.glob("*.yaml"))


def read_template(name: str) -> dict:
    """A template shipped in ``templates/<name>.yaml``, its stages checked by the contract."""
    if not TEMPLATE_NAME.match(name or "") or name not in template_names():
        raise NotFound(f"no pipeline template {name!r}; known: {', '.join(template_names())}")
    data = yaml.safe_load((TEMPLATES / f"{name}.yaml").read_text(encoding="utf-8"))
    data["stages"] = instance(StageInputSchema).load(data["stages"], many=True)
    stage_keys(data["stages"])
    return data


def list_templates(conn) -> list[dict]:
    loaded = set(conn.execute(sa.select(pipelines.c.template)
                              .where(pipelines.c.template.is_not(None))).scalars())
    out = []
    for name in template_names():
        template = read_template(name)
        out.append({"name": name, "title": template["title"],
                    "description": template.get("description") or "",
                    "stages": [s["name"] for s in template["stages"]], "loaded": name in loaded})
    return out


def load_template(tx, name: str) -> tuple[dict, bool]:
    """Create the pipeline of template ``name`` (its id is the template's name). Loading it
    again returns the pipeline already loaded: (pipeline, created)."""
    template = read_template(name)
    existing = tx.execute(sa.select(pipelines.c.id).where(pipelines.c.template == name)).scalar()
    if existing is not None:
        return load_pipeline(tx.conn, existing), False
    if not _insert_pipeline(tx, name, template["title"], template["stages"], template=name):
        # Lost a race with a concurrent load, or a pipeline made by hand holds the id.
        if tx.execute(sa.select(pipelines.c.template).where(pipelines.c.id == name)).scalar() == name:
            return load_pipeline(tx.conn, name), False
        raise Conflict(f"pipeline id {name!r} is taken by a pipeline not loaded from the template")
    return load_pipeline(tx.conn, name), True


# -- pipelines ---------------------------------------------------------------------------------

def stage_keys(stage_list) -> list[str]:
    """The keys of a pipeline's stages (made from the position where not given), checked: each
    key once, and each ``on_goods_arrival`` names another stage of the same pipeline."""
    keys = [s.get("key") or f"stage-{i + 1}" for i, s in enumerate(stage_list)]
    if len(set(keys)) < len(keys):
        raise _invalid("stages", "two stages have the same key")
    for key, s in zip(keys, stage_list):
        target = s.get("on_goods_arrival")
        if target is not None and (target == key or target not in keys):
            raise _invalid("stages", f"stage {key!r}: on_goods_arrival must name another stage "
                                     f"of the pipeline, not {target!r}")
    return keys


def _insert_pipeline(tx, pipeline_id, name, stage_list, template=None) -> bool:
    keys = stage_keys(stage_list)
    if stage_list[0]["kind"] != "open":
        raise _invalid("stages", "the first stage receives new deals: it must be open")
    inserted = insert_ignoring_conflicts(tx.conn, pipelines, [{
        "id": pipeline_id, "name": name, "template": template, "turn": 0,
        "created_at": utcnow()}], ["id"])
    if not inserted:
        return False
    tx.execute(stages.insert(), [{
        "pipeline_id": pipeline_id, "key": key, "name": s["name"], "position": i,
        "kind": s["kind"], "task": s.get("task") or "", "result": s.get("result") or "",
        "key_steps": list(s.get("key_steps") or []), "on_goods_arrival": s.get("on_goods_arrival")}
        for i, (key, s) in enumerate(zip(keys, stage_list))])
    return True


def create_pipeline(tx, data: dict) -> dict:
    pipeline_id = data.get("id") or new_id()[:12]
    if not _insert_pipeline(tx, pipeline_id, data["name"], data["stages"]):
        raise Conflict(f"pipeline {pipeline_id!r} exists", {"pipeline_id": pipeline_id})
    return load_pipeline(tx.conn, pipeline_id)


def _load_pipelines(conn, ids=None) -> list[dict]:
    query = sa.select(pipelines).order_by(pipelines.c.created_at, pipelines.c.id)
    if ids is not None:
        query = query.where(pipelines.c.id.in_(ids))
    rows = conn.execute(query).all()
    wanted = [r.id for r in rows]
    by_pipeline: dict[str, list] = {pid: [] for pid in wanted}
    for s in conn.execute(sa.select(stages).where(stages.c.pipeline_id.in_(wanted))
                          .order_by(stages.c.position)):
        by_pipeline[s.pipeline_id].append({
            "id": s.id, "key": s.key, "name": s.name, "position": s.position, "kind": s.kind,
            "task": s.task, "result": s.result, "key_steps": s.key_steps or [],
            "on_goods_arrival": s.on_goods_arrival})
    team: dict[str, list] = {pid: [] for pid in wanted}
    for m in conn.execute(sa.select(pipeline_managers).where(pipeline_managers.c.pipeline_id
                                                             .in_(wanted))
                          .order_by(pipeline_managers.c.position)):
        team[m.pipeline_id].append(m.manager_id)
    return [{"id": r.id, "name": r.name, "template": r.template, "stages": by_pipeline[r.id],
             "managers": team[r.id], "created_at": as_utc(r.created_at)} for r in rows]


def list_pipelines(conn) -> list[dict]:
    return _load_pipelines(conn)


def load_pipeline(conn, pipeline_id: str) -> dict:
    found = _load_pipelines(conn, [pipeline_id])
    if not found:
        raise NotFound(f"no pipeline {pipeline_id!r}")
    return found[0]


def set_pipeline_managers(tx, pipeline_id: str, manager_ids: list[str]) -> dict:
    load_pipeline(tx.conn, pipeline_id)
    manager_ids = list(dict.fromkeys(manager_ids))
    known = set(tx.execute(sa.select(managers.c.id).where(managers.c.id.in_(manager_ids)))
                .scalars())
    unknown = [m for m in manager_ids if m not in known]
    if unknown:
        raise _invalid("managers", f"unknown manager(s): {', '.join(unknown)}")
    tx.execute(pipeline_managers.delete().where(pipeline_managers.c.pipeline_id == pipeline_id))
    if manager_ids:
        tx.execute(pipeline_managers.insert(), [
            {"pipeline_id": pipeline_id, "manager_id": m, "position": i}
            for i, m in enumerate(manager_ids)])
    return load_pipeline(tx.conn, pipeline_id)


def next_manager(tx, pipeline_id: str) -> str | None:
    """The pipeline's next active manager in turn. The counter is bumped in place, so two
    concurrent leads (PostgreSQL row lock) never get the same turn."""
    team = tx.execute(
        sa.select(pipeline_managers.c.manager_id)
        .join(managers, managers.c.id == pipeline_managers.c.manager_id)
        .where(pipeline_managers.c.pipeline_id == pipeline_id, managers.c.active)
        .order_by(pipeline_managers.c.position)).scalars().all()
    if not team:
        return None
    turn = tx.execute(pipelines.update().where(pipelines.c.id == pipeline_id)
                      .values(turn=pipelines.c.turn + 1).returning(pipelines.c.turn)).scalar_one()
    return team[(turn - 1) % len(team)]


# -- managers ----------------------------------------------------------------------------------

def _manager(row) -> dict:
    return {"id": row.id, "name": row.name, "role": row.role, "email": row.email,
            "active": row.active}


def list_managers(conn) -> list[dict]:
    return [_manager(r) for r in conn.execute(sa.select(managers).order_by(managers.c.id))]


def put_manager(tx, manager_id: str, data: dict) -> dict:
    """Create or replace a manager (idempotent)."""
    if not manager_id or len(manager_id) > 100 or not manager_id.isprintable():
        raise _invalid("manager_id", "1-100 printable characters")
    values = {"name": data["name"], "role": data["role"], "email": data.get("email"),
              "active": data["active"], "updated_at": utcnow()}
    if not insert_ignoring_conflicts(tx.conn, managers, [{"id": manager_id, **values}], ["id"]):
        tx.execute(managers.update().where(managers.c.id == manager_id).values(**values))
    return _manager(tx.execute(sa.select(managers).where(managers.c.id == manager_id)).one())


def _check_manager(conn, manager_id: str | None, field: str = "manager") -> None:
    if manager_id is not None and conn.execute(
            sa.select(managers.c.id).where(managers.c.id == manager_id)).first() is None:
        raise _invalid(field, f"no manager {manager_id!r}")


# -- deals: reading ----------------------------------------------------------------------------

def _amount(minor: int | None) -> Decimal | None:
    return None if minor is None else Decimal(minor) / 100


def _minor(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 100)


def load_deals(conn, ids: list[str]) -> list[dict]:
    """Deals in the order of ``ids``, with the names of their pipeline and stage."""
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(
        sa.select(deals, stages.c.name.label("stage_name"),
                  stages.c.position.label("stage_position"),
                  pipelines.c.name.label("pipeline_name"))
        .join(stages, stages.c.id == deals.c.stage_id)
        .join(pipelines, pipelines.c.id == deals.c.pipeline_id)
        .where(deals.c.id.in_(ids)))}
    return [_deal(r, r.pipeline_name, r.stage_name, r.stage_position)
            for r in (rows.get(i) for i in ids) if r is not None]


def _deal(r, pipeline_name: str, stage_name: str, stage_position: int | None) -> dict:
    return {
        "id": r.id, "title": r.title, "contact_id": r.contact_id,
        "contact_name": r.contact_name, "pipeline_id": r.pipeline_id,
        "pipeline_name": pipeline_name, "stage_id": r.stage_id, "stage_name": stage_name,
        "stage_position": stage_position,
        "status": r.status, "manager": r.manager, "amount": _amount(r.amount_minor),
        "currency": r.currency, "source": r.source, "products": r.products or [],
        "close_reason": r.close_reason, "version": r.version,
        "created_at": as_utc(r.created_at), "updated_at": as_utc(r.updated_at),
        "closed_at": as_utc(r.closed_at), "erp": erp_state(r.erp)}


def erp_state(stored: dict | None) -> dict | None:
    """The ``erp`` column (JSON, its time as ISO text) as the contract's ErpStateSchema."""
    if not stored:
        return None
    return {**stored, "updated_at": dt.datetime.fromisoformat(stored["updated_at"])}


def load_deal(conn, deal_id: str) -> dict:
    found = load_deals(conn, [deal_id])
    if not found:
        raise NotFound(f"no deal {deal_id!r}")
    return found[0]


def load_history(conn, deal_ids: list[str] | None = None, change_ids=None) -> list[dict]:
    """Stage changes, oldest first, with the names of the stages."""
    origin, target = stages.alias("origin"), stages.alias("target")
    query = (sa.select(stage_changes, origin.c.name.label("from_name"),
                       target.c.name.label("to_name"))
             .outerjoin(origin, origin.c.id == stage_changes.c.from_stage_id)
             .join(target, target.c.id == stage_changes.c.to_stage_id)
             .order_by(stage_changes.c.deal_id, stage_changes.c.version))
    if deal_ids is not None:
        query = query.where(stage_changes.c.deal_id.in_(deal_ids))
    if change_ids is not None:
        query = query.where(stage_changes.c.id.in_(change_ids))
    return [{"id": r.id, "deal_id": r.deal_id, "from_stage_id": r.from_stage_id,
             "from_stage_name": r.from_name, "to_stage_id": r.to_stage_id,
             "to_stage_name": r.to_name, "actor": r.actor, "reason": r.reason,
             "version": r.version, "changed_at": as_utc(r.changed_at)}
            for r in conn.execute(query)]


def load_deal_card(conn, deal_id: str) -> dict:
    deal = load_deal(conn, deal_id)
    deal["history"] = load_history(conn, [deal_id])
    task_ids = conn.execute(sa.select(tasks.c.id).where(tasks.c.deal_id == deal_id)
                            .order_by(tasks.c.due_at, tasks.c.id)).scalars().all()
    deal["tasks"] = load_tasks(conn, task_ids)
    return deal


def _page(conn, query, order, limit, offset, loader) -> dict:
    ids = conn.execute(query.order_by(*order).limit(limit).offset(offset)).scalars().all()
    if offset == 0 and len(ids) < limit:
        total = len(ids)  # the page holds everything: no need to count
    else:
        total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    return {"items": loader(conn, ids), "total": total, "limit": limit, "offset": offset}


# Latest activity first: the order of a board's columns and of the pages that continue them.
DEAL_ORDER = (deals.c.updated_at.desc(), deals.c.id)


def search_deals(conn, pipeline_id=None, stage_id=None, status=None, manager=None,
                 contact_id=None, limit=50, offset=0) -> dict:
    """Deals by any of the filters, latest activity first. ``pipeline_id``, ``stage_id`` and
    ``status="open"`` with an ``offset`` page a board's column after its first page."""
    query = sa.select(deals.c.id)
    for column, value in ((deals.c.pipeline_id, pipeline_id), (deals.c.stage_id, stage_id),
                          (deals.c.status, status), (deals.c.manager, manager),
                          (deals.c.contact_id, contact_id)):
        if value is not None:
            query = query.where(column == value)
    return _page(conn, query, DEAL_ORDER, limit, offset, load_deals)


def open_deals(conn, after_id: str | None, limit: int) -> dict:
    """Open deals with ids after ``after_id``, in id order: a stable keyset to page through
    while deals keep changing (a deal closed meanwhile is simply not seen)."""
    query = sa.select(deals.c.id).where(deals.c.status == "open").order_by(deals.c.id).limit(limit)
    if after_id is not None:
        query = query.where(deals.c.id > after_id)
    ids = list(conn.execute(query).scalars())
    return {"items": load_deals(conn, ids), "next_after": ids[-1] if len(ids) == limit else None}


# -- the board ---------------------------------------------------------------------------------

def _totals(groups) -> list[dict]:
    """``[(currency, count, sum of minor units)]`` as totals per currency, by currency."""
    merged: dict[str, list[int]] = {}
    for currency, count, minor in groups:
        total = merged.setdefault(currency, [0, 0])
        total[0] += count
        total[1] += minor or 0
    return [{"currency": c, "count": n, "amount": _amount(m)}
            for c, (n, m) in sorted(merged.items())]


def _first_deals_per_stage(conn, pipeline_id: str, where: list, per_stage: int):
    """The first ``per_stage`` open deals of each stage (``DEAL_ORDER``), in one query.

    PostgreSQL: a LATERAL subquery per open stage, each a short range of ix_deals_open_board,
    so the cost follows the rows shown, not the deals in the pipeline. SQLite (no LATERAL):
    row_number() over each stage's deals."""
    if is_postgres(conn):
        column = (sa.select(deals).where(deals.c.stage_id == stages.c.id, *where)
                  .order_by(*DEAL_ORDER).limit(per_stage).lateral("column_deals"))
        query = (sa.select(column).select_from(stages.join(column, sa.true()))
                 .where(stages.c.pipeline_id == pipeline_id, stages.c.kind == "open"))
        return conn.execute(query).all()
    rank = sa.func.row_number().over(partition_by=deals.c.stage_id, order_by=DEAL_ORDER)
    ranked = sa.select(deals, rank.label("rank")).where(*where).subquery()
    query = (sa.select(*(ranked.c[c.name] for c in deals.columns))
             .where(ranked.c.rank <= per_stage)
             .order_by(ranked.c.stage_id, ranked.c.rank))
    return conn.execute(query).all()


def board(conn, pipeline_id: str, per_stage: int = 20, manager: str | None = None) -> dict:
    """A pipeline's open deals by stage: per stage (column) the count and the sum of amounts
    per currency, from one grouped query, and the first ``per_stage`` deals, latest activity
    first, from one more. Won and lost stages are columns without deals."""
    pipeline = load_pipeline(conn, pipeline_id)
    where = [deals.c.pipeline_id == pipeline_id, deals.c.status == "open"]
    if manager is not None:
        where.append(deals.c.manager == manager)
    groups: dict[int, list] = {}
    for row in conn.execute(
            sa.select(deals.c.stage_id, deals.c.currency, sa.func.count(),
                      sa.func.sum(deals.c.amount_minor))
            .where(*where).group_by(deals.c.stage_id, deals.c.currency)):
        groups.setdefault(row[0], []).append(tuple(row[1:]))
    stages_by_id = {s["id"]: s for s in pipeline["stages"]}
    shown: dict[int, list] = {}
    for row in _first_deals_per_stage(conn, pipeline_id, where, per_stage):
        stage = stages_by_id.get(row.stage_id) or {}
        shown.setdefault(row.stage_id, []).append(
            _deal(row, pipeline["name"], stage.get("name", ""), stage.get("position")))
    for column in shown.values():  # the query's order holds within a stage; made sure here
        column.sort(key=lambda d: (-d["updated_at"].timestamp(), d["id"]))
    columns = [{"stage": s, "count": sum(n for _, n, _ in groups.get(s["id"], ())),
                "totals": _totals(groups.get(s["id"], ())), "deals": shown.get(s["id"], [])}
               for s in pipeline["stages"]]
    return {"pipeline_id": pipeline["id"], "pipeline_name": pipeline["name"],
            "manager": manager, "per_stage": per_stage,
            "count": sum(c["count"] for c in columns),
            "totals": _totals(t for rows in groups.values() for t in rows), "columns": columns}


# -- deals: writing ----------------------------------------------------------------------------

def _stage(conn, stage_id: int):
    return conn.execute(sa.select(stages).where(stages.c.id == stage_id)).first()


def _stage_of(conn, pipeline_id: str, stage_id: int | None):
    """The stage ``stage_id`` of the pipeline, or its first stage; InvalidInput otherwise."""
    if stage_id is None:
        return conn.execute(sa.select(stages).where(stages.c.pipeline_id == pipeline_id)
                            .order_by(stages.c.position).limit(1)).first()
    stage = _stage(conn, stage_id)
    if stage is None:
        raise _invalid("stage_id", f"no stage {stage_id}")
    if stage.pipeline_id != pipeline_id:
        raise _invalid("stage_id", f"stage {stage_id} «{stage.name}» belongs to pipeline "
                                   f"{stage.pipeline_id!r}, not to {pipeline_id!r}: a deal "
                                   "moves only within its own pipeline")
    return stage


def _record_change(tx, deal_id, from_stage_id, to_stage_id, actor, reason, version, now) -> dict:
    change_id = tx.execute(stage_changes.insert().values(
        deal_id=deal_id, from_stage_id=from_stage_id, to_stage_id=to_stage_id, actor=actor,
        reason=reason, version=version, changed_at=now).returning(stage_changes.c.id)).scalar_one()
    return load_history(tx.conn, change_ids=[change_id])[0]


def _products(products) -> list[dict]:
    return instance(ProductLineSchema).dump(products or [], many=True)


def create_deal(tx, data: dict, actor: str | None = None, cause: str | None = None) -> dict:
    """Open a deal; its creation is the first row of its stage history."""
    if tx.execute(sa.select(pipelines.c.id).where(pipelines.c.id == data["pipeline_id"])
                  ).first() is None:
        raise _invalid("pipeline_id", f"no pipeline {data['pipeline_id']!r}")
    stage = _stage_of(tx.conn, data["pipeline_id"], data.get("stage_id"))
    _check_manager(tx.conn, data.get("manager"))
    now, deal_id = utcnow(), new_id()
    tx.execute(deals.insert().values(
        id=deal_id, title=(data.get("title") or "Deal")[:300], contact_id=data["contact_id"],
        contact_name=data.get("contact_name"), contact_synced_at=data.get("contact_synced_at"),
        pipeline_id=data["pipeline_id"], stage_id=stage.id, status=stage.kind,
        manager=data.get("manager"), amount_minor=_minor(data.get("amount")),
        currency=data.get("currency") or "RUB", source=data.get("source"),
        products=_products(data.get("products")), version=1, created_at=now, updated_at=now,
        closed_at=None if stage.kind == "open" else now))
    _record_change(tx, deal_id, None, stage.id, actor, None, 1, now)
    deal = load_deal(tx.conn, deal_id)
    tx.emit(ev.DEAL_CREATED, new_event(DealCreatedSchema, deal=deal, cause=cause or actor))
    return deal


def _lock_deal(tx, deal_id: str):
    """The deal's row, locked until commit (PostgreSQL; SQLite has one writer anyway)."""
    row = tx.execute(sa.select(deals).where(deals.c.id == deal_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no deal {deal_id!r}")
    return row


def _check_version(row, expected: int | None) -> None:
    if expected is not None and expected != row.version:
        raise Conflict(f"deal {row.id} changed since version {expected} (now {row.version}): "
                       "reload it and try again", {"version": row.version})


def _bump(tx, row, **values) -> None:
    """Write a change as the deal's next version (the row is locked: nothing can slip in)."""
    updated = tx.execute(deals.update().where(deals.c.id == row.id, deals.c.version == row.version)
                         .values(version=row.version + 1, updated_at=values.pop("now"), **values))
    if updated.rowcount != 1:
        raise Conflict(f"deal {row.id} changed concurrently: try again")


def move_deal(tx, deal_id: str, stage_id: int, actor: str | None = None, reason=None,
              expected_version: int | None = None) -> dict:
    """Move a deal to a stage of its pipeline (backwards too). Every move is a history row;
    a closing stage (won, lost) closes the deal, an open one reopens it."""
    row = _lock_deal(tx, deal_id)
    _check_version(row, expected_version)
    stage = _stage_of(tx.conn, row.pipeline_id, stage_id)
    if stage.id == row.stage_id:
        return load_deal(tx.conn, deal_id)
    now, closing = utcnow(), stage.kind != "open"
    _bump(tx, row, now=now, stage_id=stage.id, status=stage.kind,
          closed_at=now if closing else None, close_reason=reason if closing else None)
    change = _record_change(tx, deal_id, row.stage_id, stage.id, actor, reason,
                            row.version + 1, now)
    deal = load_deal(tx.conn, deal_id)
    tx.emit(ev.DEAL_STAGE_CHANGED, new_event(DealStageChangedSchema, deal=deal, change=change))
    if closing:
        tx.emit(ev.DEAL_WON if stage.kind == "won" else ev.DEAL_LOST,
                new_event(DealClosedSchema, deal=deal, change=change))
    return deal


def update_deal(tx, deal_id: str, patch: dict, actor: str | None = None) -> dict:
    row = _lock_deal(tx, deal_id)
    _check_version(row, patch.get("expected_version"))
    if "manager" in patch:
        _check_manager(tx.conn, patch["manager"])
    current = load_deal(tx.conn, deal_id)
    values = {}
    for field in ("title", "manager", "currency"):
        if field in patch and patch[field] != current[field]:
            values[field] = patch[field]
    if "amount" in patch and patch["amount"] != current["amount"]:
        values["amount_minor"] = _minor(patch["amount"])
    if "products" in patch and _products(patch["products"]) != _products(current["products"]):
        values["products"] = _products(patch["products"])
    if not values:
        return current
    _bump(tx, row, now=utcnow(), **values)
    deal = load_deal(tx.conn, deal_id)
    changed = sorted("amount" if k == "amount_minor" else k for k in values)
    tx.emit(ev.DEAL_UPDATED, new_event(DealUpdatedSchema, deal=deal, changed=changed))
    return deal


def contact_name(contact: dict) -> str | None:
    """What a deal shows as its client: the card's name, else its company."""
    return (contact.get("name") or contact.get("company") or None)


def sync_contact(tx, contact: dict) -> int:
    """A card changed (``contact_updated``): its deals, and those of the cards merged into it
    that have not followed it yet, take its name. An event older than the name a deal holds
    (events of one card may be handled out of order) changes nothing. Returns the deals
    changed."""
    synced_at = _utc(contact["updated_at"])
    ids = [contact["id"], *(contact.get("merged_ids") or [])]
    return tx.execute(deals.update().where(
        deals.c.contact_id.in_(ids),
        sa.or_(deals.c.contact_synced_at.is_(None), deals.c.contact_synced_at < synced_at))
        .values(contact_name=contact_name(contact), contact_synced_at=synced_at)).rowcount


def move_contact(tx, source_id: str, target_id: str) -> None:
    """Cards were merged: their deals and tasks follow the surviving card."""
    tx.execute(deals.update().where(deals.c.contact_id == source_id).values(contact_id=target_id))
    tx.execute(tasks.update().where(tasks.c.contact_id == source_id).values(contact_id=target_id))


# -- tasks -------------------------------------------------------------------------------------

def load_tasks(conn, ids: list[str]) -> list[dict]:
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(sa.select(tasks).where(tasks.c.id.in_(ids)))}
    return [{"id": r.id, "title": r.title, "due_at": as_utc(r.due_at), "manager": r.manager,
             "contact_id": r.contact_id, "deal_id": r.deal_id, "done": r.done,
             "done_at": as_utc(r.done_at), "reminded_at": as_utc(r.reminded_at),
             "created_by": r.created_by, "created_at": as_utc(r.created_at)}
            for r in (rows.get(i) for i in ids) if r is not None]


def load_task(conn, task_id: str) -> dict:
    found = load_tasks(conn, [task_id])
    if not found:
        raise NotFound(f"no task {task_id!r}")
    return found[0]


def search_tasks(conn, manager=None, done=None, deal_id=None, contact_id=None, due_before=None,
                 limit=50, offset=0) -> dict:
    query = sa.select(tasks.c.id)
    for column, value in ((tasks.c.manager, manager), (tasks.c.done, done),
                          (tasks.c.deal_id, deal_id), (tasks.c.contact_id, contact_id)):
        if value is not None:
            query = query.where(column == value)
    if due_before is not None:
        query = query.where(tasks.c.due_at < _utc(due_before))
    return _page(conn, query, (tasks.c.due_at, tasks.c.id), limit, offset, load_tasks)


def create_task(tx, data: dict, actor: str | None = None, check_manager: bool = True) -> dict:
    if check_manager:
        _check_manager(tx.conn, data.get("manager"))
    contact_id = data.get("contact_id")
    if data.get("deal_id"):
        deal = tx.execute(sa.select(deals.c.contact_id).where(deals.c.id == data["deal_id"])).first()
        if deal is None:
            raise _invalid("deal_id", f"no deal {data['deal_id']!r}")
        contact_id = contact_id or deal.contact_id
    task_id = new_id()
    tx.execute(tasks.insert().values(
        id=task_id, title=data["title"][:500], due_at=_utc(data["due_at"]),
        manager=data.get("manager"), contact_id=contact_id, deal_id=data.get("deal_id"),
        done=False, created_by=actor, created_at=utcnow()))
    task = load_task(tx.conn, task_id)
    tx.emit(ev.TASK_CREATED, new_event(TaskEventSchema, task=task, actor=actor))
    return task


def update_task(tx, task_id: str, patch: dict, actor: str | None = None) -> dict:
    """Rename, reschedule (which arms the reminder again), reassign, mark done or undone."""
    row = tx.execute(sa.select(tasks).where(tasks.c.id == task_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no task {task_id!r}")
    if "manager" in patch:
        _check_manager(tx.conn, patch["manager"])
    values = {}
    if "title" in patch and patch["title"] != row.title:
        values["title"] = patch["title"]
    if "manager" in patch and patch["manager"] != row.manager:
        values["manager"] = patch["manager"]
    if "due_at" in patch and _utc(patch["due_at"]) != as_utc(row.due_at):
        values.update(due_at=_utc(patch["due_at"]), reminded_at=None)
    if "done" in patch and patch["done"] != row.done:
        values.update(done=patch["done"], done_at=utcnow() if patch["done"] else None)
    if not values:
        return load_task(tx.conn, task_id)
    tx.execute(tasks.update().where(tasks.c.id == task_id).values(**values))
    task = load_task(tx.conn, task_id)
    changed = sorted(k for k in values if k not in ("done_at", "reminded_at"))
    if values.get("done"):
        changed.remove("done")
        tx.emit(ev.TASK_COMPLETED, new_event(TaskEventSchema, task=task, actor=actor))
    if changed:
        tx.emit(ev.TASK_UPDATED, new_event(TaskUpdatedSchema, task=task, actor=actor,
                                           changed=changed))
    return task


def fire_due_reminders(tx, now: dt.datetime | None = None, limit: int = REMINDER_BATCH) -> list[dict]:
    """Claim the tasks that fell due and publish one task_due each, in one transaction.

    The claim is one UPDATE of rows picked with SKIP LOCKED (PostgreSQL): two service
    processes never claim the same task, and ``reminded_at`` is committed with the outbox
    event, so a reminder fires once, also when it fell due while the service was down.
    """
    now = now or utcnow()
    due = (sa.select(tasks.c.id)
           .where(sa.not_(tasks.c.done), tasks.c.reminded_at.is_(None), tasks.c.due_at <= now)
           .order_by(tasks.c.due_at).limit(limit))
    if is_postgres(tx.conn):
        due = due.with_for_update(skip_locked=True)
    claimed = tx.execute(tasks.update()
                         .where(tasks.c.id.in_(due.scalar_subquery()), tasks.c.reminded_at.is_(None))
                         .values(reminded_at=now).returning(tasks.c.id)).scalars().all()
    fired = load_tasks(tx.conn, claimed)
    for task in sorted(fired, key=lambda t: t["due_at"]):
        tx.emit(ev.TASK_DUE, new_event(TaskEventSchema, task=task, actor=None))
    return fired


def next_reminder_due(conn) -> dt.datetime | None:
    """When the next reminder falls due (it may be past: claimed by another instance right
    now, or due meanwhile), None if no task awaits one. One lookup in ix_tasks_to_remind."""
    return as_utc(conn.execute(
        sa.select(sa.func.min(tasks.c.due_at))
        .where(sa.not_(tasks.c.done), tasks.c.reminded_at.is_(None))).scalar())


# -- lead rules --------------------------------------------------------------------------------

def config_rules(value) -> list[dict]:
    """The ``LEAD_RULES`` of the config, checked by the contract (a bad entry stops the start)."""
    out = []
    for i, entry in enumerate(value or []):
        try:
            rule = instance(LeadRuleInputSchema).load(entry)
        except ValidationError as exc:
            raise ValueError(f"LEAD_RULES[{i}]: {exc.messages}") from None
        out.append({**rule, "id": f"config-{i + 1}", "origin": "config"})
    return out


def _api_rule(row) -> dict:
    return {"id": row.id, "origin": "api", "connector": row.connector, "form": row.form or None,
            "pipeline": row.pipeline, "task_title": row.task_title,
            "task_due_minutes": row.task_due_minutes, "enabled": row.enabled}


def list_lead_rules(conn, from_config: list[dict]) -> list[dict]:
    rows = conn.execute(sa.select(lead_rules).order_by(lead_rules.c.connector, lead_rules.c.form))
    return [_api_rule(r) for r in rows] + list(from_config)


def _pipeline_or_template_exists(conn, name: str) -> bool:
    return name in template_names() or conn.execute(
        sa.select(pipelines.c.id).where(pipelines.c.id == name)).first() is not None


def put_lead_rule(tx, data: dict) -> dict:
    """Create or replace the API rule of a source (connector, and form or any form)."""
    if not _pipeline_or_template_exists(tx.conn, data["pipeline"]):
        raise _invalid("pipeline", f"no pipeline or template {data['pipeline']!r}")
    values = {"pipeline": data["pipeline"], "task_title": data["task_title"],
              "task_due_minutes": data["task_due_minutes"], "enabled": data["enabled"],
              "updated_at": utcnow()}
    key = {"connector": data["connector"], "form": data.get("form") or ""}
    if not insert_ignoring_conflicts(tx.conn, lead_rules, [{"id": new_id(), **key, **values}],
                                     ["connector", "form"]):
        tx.execute(lead_rules.update().where(lead_rules.c.connector == key["connector"],
                                             lead_rules.c.form == key["form"]).values(**values))
    return _api_rule(tx.execute(sa.select(lead_rules).where(
        lead_rules.c.connector == key["connector"], lead_rules.c.form == key["form"])).one())


def api_lead_rules(conn) -> dict[tuple[str, str | None], dict]:
    """The rules set through the API, by (connector, form or None for any form)."""
    return {(r.connector, r.form or None): _api_rule(r) for r in conn.execute(sa.select(lead_rules))}


def match_lead_rule(api_rules: dict, connector: str | None, form: str | None,
                    from_config: list[dict]) -> dict | None:
    """The rule for a new client from ``connector`` (and ``form``): a rule for the form before
    one for any form; at each level an API rule (``api_lead_rules``) overrides the config (a
    disabled one switches the config rule off)."""
    if not connector:
        return None
    for level in ([form] if form else []) + [None]:
        rule = api_rules.get((connector, level)) or next(
            (r for r in from_config if r["connector"] == connector and r.get("form") == level),
            None)
        if rule is not None and rule["enabled"]:
            return rule
    return None


def _rule_pipeline(tx, rule: dict) -> str:
    """The pipeline a rule names: an existing one, or a template loaded on first use."""
    name = rule["pipeline"]
    if tx.execute(sa.select(pipelines.c.id).where(pipelines.c.id == name)).first() is not None:
        return name
    if name in template_names():
        return load_template(tx, name)[0]["id"]
    # A rule that names nothing: no retry helps; parked for an operator to fix the rule.
    raise PermanentError(f"lead rule {rule['id']}: no pipeline or template {name!r}")


def _lead_title(contact: dict) -> str:
    phones = [p.get("raw") for p in contact.get("phones") or []]
    return next((t for t in (contact.get("name"), contact.get("company"), *phones,
                             *(contact.get("emails") or [])) if t), "New client")


def apply_lead_rules(tx, event: dict, from_config: list[dict], now=None,
                     api_rules: dict | None = None) -> dict | None:
    """A new client (``contact_created``) from a source with a lead rule gets a deal in the
    first stage of the rule's pipeline, assigned in turn among the pipeline's managers, and
    that manager a first task; unless the client already has an open deal there. A batch
    passes ``api_rules`` (read once for all its events).

    Returns the deal, or None (no rule, already handled, or an open deal exists)."""
    contact = event["contact"]
    source = contact.get("source") or {}
    if api_rules is None:
        api_rules = api_lead_rules(tx.conn)
    rule = match_lead_rule(api_rules, source.get("connector"), source.get("form"), from_config)
    if rule is None or not tx.claim(f"lead:{event['event_id']}"):
        return None
    pipeline_id = _rule_pipeline(tx, rule)
    # Lock the pipeline: concurrent leads of one client cannot both see "no open deal".
    tx.execute(sa.select(pipelines.c.id).where(pipelines.c.id == pipeline_id).with_for_update())
    if tx.execute(sa.select(deals.c.id).where(
            deals.c.contact_id == contact["id"], deals.c.pipeline_id == pipeline_id,
            deals.c.status == "open")).first() is not None:
        return None
    manager = next_manager(tx, pipeline_id)
    actor = f"lead_rule:{rule['id']}"
    deal = create_deal(tx, {"contact_id": contact["id"], "pipeline_id": pipeline_id,
                            "title": _lead_title(contact), "manager": manager,
                            "source": source, "contact_name": contact_name(contact),
                            "contact_synced_at": _utc(contact["updated_at"])}, actor=actor)
    now = now or utcnow()
    create_task(tx, {"title": rule["task_title"], "manager": manager, "deal_id": deal["id"],
                     "contact_id": contact["id"],
                     "due_at": now + dt.timedelta(minutes=rule["task_due_minutes"])},
                actor=actor, check_manager=False)
    return deal
