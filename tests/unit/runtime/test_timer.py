"""due_timer: runs its method at start, again when the time the method returned comes, sooner
when woken for an earlier time, and after the configured interval at the latest. No broker:
a container with only the timer. Only behaviour is asserted here, with generous waits; how
late a reminder fires is a figure of `python -m bench deals`."""
import datetime as dt

import eventlet
import pytest

from crmhub.runtime.timer import DueTimer, DueTimerWakeup, due_timer
from support import wait_for

CALLS: list[dt.datetime] = []
PLAN: list = []  # what each run returns (then None); an Exception instance is raised


def now():
    return dt.datetime.now(dt.timezone.utc)


class Ticker:
    name = "ticker"
    wake = DueTimerWakeup()

    @due_timer("TICK_INTERVAL", default=60)
    def tick(self):
        CALLS.append(now())
        result = PLAN.pop(0) if PLAN else None
        if isinstance(result, Exception):
            raise result
        return result


@pytest.fixture
def start(container_factory):
    CALLS.clear()
    PLAN.clear()

    def start_ticker(interval=60, plan=()):
        PLAN.extend(plan)
        container = container_factory(Ticker, {"TICK_INTERVAL": interval})
        container.start()
        wait_for(lambda: CALLS, message="the run at start")
        return container

    return start_ticker


def wake(container, when=None):
    [wakeup] = [d for d in container.dependencies if isinstance(d, DueTimerWakeup)]
    wakeup.wake(when)


def test_it_runs_at_start_and_again_when_the_next_work_is_due(start):
    start(plan=[now() + dt.timedelta(seconds=0.2)])
    wait_for(lambda: len(CALLS) == 2, message="the run at the due time, not after the interval")
    eventlet.sleep(0.3)
    assert len(CALLS) == 2  # nothing more pending: it sleeps (up to the interval)


def test_a_wake_for_sooner_work_runs_it_then_and_one_for_later_work_changes_nothing(start):
    container = start(plan=[now() + dt.timedelta(hours=1)])
    wake(container, now() + dt.timedelta(hours=2))
    eventlet.sleep(0.3)
    assert len(CALLS) == 1
    wake(container, now() + dt.timedelta(seconds=0.1))
    wait_for(lambda: len(CALLS) == 2, message="the run brought forward")
    wake(container)  # now
    wait_for(lambda: len(CALLS) == 3, message="the run asked for at once")


def test_the_interval_bounds_the_sleep_and_paces_retries_after_a_failure(start):
    start(interval=0.1, plan=[RuntimeError("database down"), now() + dt.timedelta(days=1)])
    wait_for(lambda: len(CALLS) >= 3, message="runs after a failure and after the interval")


def test_it_stops_while_sleeping(start):
    container = start(plan=[now() + dt.timedelta(hours=1)])
    [timer] = [e for e in container.entrypoints if isinstance(e, DueTimer)]
    with eventlet.Timeout(5):
        container.stop()
    assert timer.gt.dead
