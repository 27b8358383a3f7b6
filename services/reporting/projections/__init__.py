"""The read models, one module per report, and the code that feeds them.

A projection module defines ``TABLES`` (truncated on rebuild), ``HANDLES`` (event type ->
``fn(tx, events)`` applying a batch of loaded events; idempotent and order-independent) and,
if it serves a report, ``TITLE``, ``DESCRIPTION`` and ``report(conn, filters) -> dict``; and
optionally ``replaying()``, a context manager holding what a replay sums up in memory (see
``replaying`` below).
One function may be registered for several types: it then gets batches mixing them.
Live ingestion and ``crmhub reports rebuild`` go through the same ``apply_events``.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from importlib import import_module

import structlog

log = structlog.get_logger(__name__)

# aliases first: it serves no report, the others resolve merged cards through it.
MODULE_NAMES = ["aliases", "funnel", "managers", "sources", "calls", "campaigns", "churn"]


def _load(name: str):
    qualified = f"{__name__}.{name}"
    try:
        return import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name != qualified:
            raise
        log.warning("projection module missing, skipped", projection=name)
        return None


def module_name(module) -> str:
    """A projection's name: its module's (``funnel``, ``managers``, ...)."""
    return module.__name__.rsplit(".", 1)[1]


PROJECTIONS = [m for m in (_load(n) for n in MODULE_NAMES) if m is not None]
REPORTS = {module_name(m): m for m in PROJECTIONS if hasattr(m, "report")}


def handled_event_types() -> list[str]:
    """Every event type some projection consumes, in a stable order."""
    return sorted({t for m in PROJECTIONS for t in m.HANDLES})


def projection_tables() -> list:
    return [table for m in PROJECTIONS for table in m.TABLES]


def apply_events(tx, event_type: str, events: list[dict]) -> None:
    """Apply a batch of one type's events (loaded dicts with ``_occurred_at``) to every
    projection that consumes that type."""
    apply_mixed(tx, [(event_type, event) for event in events])


def apply_mixed(tx, typed_events: list[tuple[str, dict]], modules=None) -> None:
    """Apply events of several types to ``modules`` (default: every projection): each
    handler function once, with all the events of the types it is registered for (a function
    registered for several types takes them mixed; a replay then handles a deal's creation
    and moves in one go)."""
    for module in PROJECTIONS if modules is None else modules:
        batches: dict = {}
        for event_type, event in typed_events:
            handler = module.HANDLES.get(event_type)
            if handler is not None:
                batches.setdefault(handler, []).append(event)
        for handler, events in batches.items():
            handler(tx, events)


# What replaying a projection costs, relative to the others (1 if not named): on deal
# histories the funnel's per-deal records took as long as all the other projections together.
REPLAY_WEIGHTS = {"funnel": 6}


def replay_groups(count: int) -> list[list]:
    """The projections split into at most ``count`` groups of about equal replay cost.
    Projections share no tables, so groups can be replayed side by side."""
    groups: list[list] = [[] for _ in range(max(1, min(count, len(PROJECTIONS))))]
    weight = [0] * len(groups)
    by_cost = sorted(PROJECTIONS, key=lambda m: -REPLAY_WEIGHTS.get(module_name(m), 1))
    for module in by_cost:
        lightest = weight.index(min(weight))
        groups[lightest].append(module)
        weight[lightest] += REPLAY_WEIGHTS.get(module_name(module), 1)
    return [sorted(g, key=PROJECTIONS.index) for g in groups if g]


def by_names(names) -> list:
    wanted = set(names)
    return [m for m in PROJECTIONS if module_name(m) in wanted]


@contextmanager
def replaying(modules=None):
    """Within, projections that define ``replaying()`` keep what a replay adds up in memory
    across its transactions; the function yielded, ``flush(tx)``, writes it all (call it in
    the replay's last transaction; a replay that fails writes nothing more)."""
    with ExitStack() as stack:
        flushes = [stack.enter_context(m.replaying())
                   for m in (PROJECTIONS if modules is None else modules)
                   if hasattr(m, "replaying")]

        def flush(tx):
            for write in flushes:
                write(tx)
        yield flush
