"""Timers whose interval comes from the config (a decorator argument cannot read it).

* ``timer``: nameko's Timer, every ``config[config_key]`` seconds and once at start.
* ``due_timer``: runs its method when work falls due. The method returns when the next piece
  of work falls due (an aware datetime, or None when nothing is pending); the timer sleeps
  until then, but never longer than ``config[config_key]`` seconds (work scheduled by another
  process is seen at the latest then), and is woken early through ``DueTimerWakeup`` by a
  worker of this process that scheduled work sooner. It also runs once at start: work that
  fell due while the service was down is done as soon as it is back.
"""
from __future__ import annotations

import datetime as dt
import threading

import structlog
from eventlet.event import Event
from nameko.extensions import DependencyProvider, Entrypoint
from nameko.timer import Timer

log = structlog.get_logger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ConfiguredTimer(Timer):
    """Fires every ``config[config_key]`` seconds (``default`` if unset), and once at start:
    work that fell due while the service was down is done as soon as it is back."""

    def __init__(self, config_key: str, default: float, **kwargs):
        self.config_key = config_key
        self.default = default
        super().__init__(interval=default, eager=True, **kwargs)

    def setup(self):
        super().setup()
        self.interval = float(self.container.config.get(self.config_key) or self.default)


class DueTimer(Entrypoint):
    """Runs the decorated method at start, then whenever the time it returned comes, after
    ``config[config_key]`` seconds at the latest, or sooner when woken (:meth:`wake`)."""

    #: Shortest pause between two runs: if the next due time is already past (work another
    #: instance is claiming right now), this is how long we leave it before looking again.
    MIN_PAUSE = 0.005

    def __init__(self, config_key: str, default: float, **kwargs):
        self.config_key = config_key
        self.default = default
        super().__init__(**kwargs)

    def setup(self):
        self.interval = float(self.container.config.get(self.config_key) or self.default)
        self._woken = threading.Event()
        self._wake_at: dt.datetime | None = None  # earliest time asked for since the last run
        self._stopping = False
        self.gt = None

    def start(self):
        self.gt = self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._stopping = True
        self._woken.set()
        if self.gt is not None:
            self.gt.wait()

    def kill(self):
        if self.gt is not None:
            self.gt.kill()

    def wake(self, when: dt.datetime | None = None) -> None:
        """Work falls due at ``when`` (now if None): run then, if that is sooner than planned."""
        when = when or _now()
        if self._wake_at is None or when < self._wake_at:
            self._wake_at = when
            self._woken.set()

    def _run(self):
        while not self._stopping:
            self._wake_at = None  # what the run sees needs no wake; later wakes are kept
            next_due = self._run_worker()
            now = _now()
            deadline = now + dt.timedelta(seconds=self.interval)
            if next_due is not None:
                deadline = min(deadline, max(next_due, now + dt.timedelta(seconds=self.MIN_PAUSE)))
            while not self._stopping:
                if self._wake_at is not None and self._wake_at < deadline:
                    deadline = self._wake_at
                wait = (deadline - _now()).total_seconds()
                if wait <= 0:
                    break
                self._woken.wait(wait)
                self._woken.clear()

    def _run_worker(self) -> dt.datetime | None:
        """Run the method in a worker; its result, or None if it failed (the interval then
        paces the retries)."""
        done = Event()

        def handle_result(worker_ctx, result, exc_info):
            done.send(None if exc_info else result)
            return result, exc_info

        self.container.spawn_worker(self, (), {}, handle_result=handle_result)
        result = done.wait()
        if result is not None and not isinstance(result, dt.datetime):
            log.warning("due_timer method returned no datetime", result=repr(result))
            return None
        return result


class DueTimerWakeup(DependencyProvider):
    """Injects ``wake(when=None)``: tells the service's ``due_timer`` entrypoints that work
    falls due at ``when`` (now if None). Call it after the transaction that scheduled the
    work committed."""

    def get_dependency(self, worker_ctx):
        return self.wake

    def wake(self, when: dt.datetime | None = None) -> None:
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, DueTimer):
                entrypoint.wake(when)


timer = ConfiguredTimer.decorator
due_timer = DueTimer.decorator
