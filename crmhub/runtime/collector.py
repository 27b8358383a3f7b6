"""What the hub does about Python's garbage collector.

A full collection walks every tracked object, and stops the process meanwhile. Services hold
a large, permanent heap (modules, schemas, routes, phone metadata); a replay holds a growing
one (the projections' state). Neither is garbage, yet both were walked again and again.
"""
from __future__ import annotations

import contextlib
import gc
import time

from crmhub.runtime.metrics import GC_FROZEN_OBJECTS, GC_PAUSE_SECONDS


def freeze_startup_objects() -> None:
    """Move what exists once the services run out of the collector's sight: full collections
    stopped a service for 80-350 ms a few times a minute under load (a popup, an API answer
    waiting behind them); frozen, 5-20 ms in telephony and the combined process. Young
    collections run after 10,000 new objects instead of 700: at 1,000 forms/s each process
    collected 50 times a second, and most of what a collection walks is alive (requests in
    flight), so fewer, larger collections cost less in all. Every pause is measured
    (``crmhub_gc_pause_seconds``), the full collection made here first."""
    started = {}

    def measure(phase, info):
        if phase == "start":
            started["at"] = time.perf_counter()
        elif "at" in started:
            GC_PAUSE_SECONDS.labels(str(info["generation"])).observe(
                time.perf_counter() - started.pop("at"))

    gc.callbacks.append(measure)
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    GC_FROZEN_OBJECTS.set(gc.get_freeze_count())


@contextlib.contextmanager
def collector_paused():
    """No automatic collection inside: for long batch work that makes next to no reference
    cycles (a replay of 600,000 events left 2,300 cyclic objects behind, and spent a third of
    its time, 27 of 81 s, in collections that found nothing else). One collection at the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect()
