"""What the benchmark machine was like during a run, so figures from different days can be
compared: its speed on a fixed pure-Python workload, and the CPU time the hypervisor took
away (steal). On the shared 2-core VM of this project the first has varied about twofold
from day to day with the same code."""
from __future__ import annotations

import os
import platform
import time

# A fixed interpreter-bound workload: what one core does for a Python service, roughly.
CALIBRATION_LOOPS = 3_000_000


def calibration_ms(rounds: int = 5) -> float:
    """The best of ``rounds`` timings of the fixed workload, in ms (lower is faster)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for n in range(CALIBRATION_LOOPS):
            total += n & 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def cpu_ticks() -> dict[str, int]:
    """The machine's CPU time so far, by kind (Linux /proc/stat, clock ticks)."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return {}
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, map(int, fields)))


def describe(before: dict[str, int] | None = None) -> dict:
    """The machine now; with ``before`` (``cpu_ticks()`` at the start) also the share of CPU
    time stolen since then."""
    info = {"cpus": os.cpu_count(), "python": platform.python_version(),
            "cpu_model": _cpu_model(), "calibration_ms": calibration_ms()}
    after = cpu_ticks()
    if before and after:
        spent = {kind: after[kind] - before.get(kind, 0) for kind in after}
        total = sum(spent.values())
        info["steal_share"] = round(spent["steal"] / total, 3) if total else None
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
