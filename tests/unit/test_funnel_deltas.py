"""A deal's new funnel contribution is applied as a change: the stages whose entry did not
change are left out, and the sums are those of taking back the old contribution whole and
adding the new one."""
import random
from collections import defaultdict

from crmhub.services.reporting.projections import funnel


def _counters():
    return defaultdict(lambda: [0, 0, 0])


def _nonzero(deltas: dict) -> dict:
    return {key: values for key, values in deltas.items() if any(values)}


def _apply(totals: dict, add) -> int:
    """Run ``add`` on fresh deltas, sum them into ``totals``; returns the keys it touched."""
    step = _counters()
    add(step)
    for key, values in step.items():
        totals[key] = [a + b for a, b in zip(totals[key], values)]
    return len(step)


def _contribution(rng: random.Random, header: list) -> list:
    stages = sorted(rng.sample(range(1, 8), rng.randint(1, 5)))
    return [*header, [[s, rng.randint(0, 1), rng.randint(0, 1), rng.choice([-1, 0, 3, 7])]
                      for s in stages]]


def test_a_change_sums_like_taking_back_the_old_contribution_and_adding_the_new():
    rng = random.Random(5)
    headers = [["sales", "anna", "google", "2026-03-02"], ["sales", "anna", "vk", "2026-03-02"],
               ["b2b", "boris", "", "2026-04-01"]]
    whole, changes = _counters(), _counters()
    touched_whole = touched_changes = 0
    for _ in range(2000):
        old = None if rng.random() < 0.1 else _contribution(rng, rng.choice(headers))
        new = None if rng.random() < 0.1 else _contribution(rng, rng.choice(headers))
        if old and new and rng.random() < 0.7:  # a move: most stages stay as they were
            new = [*old[:4], [list(e) for e in old[4]] + new[4][:1]]
            new[4] = sorted({e[0]: e for e in new[4]}.values())
        touched_whole += _apply(whole, lambda step: (funnel._add(step, old, -1),
                                                     funnel._add(step, new, +1)))
        touched_changes += _apply(changes, lambda step: funnel._add_change(step, old, new))
    assert _nonzero(changes) == _nonzero(whole)
    assert len(_nonzero(whole)) > 100
    assert touched_changes < touched_whole * 0.8  # unchanged stages were left out
