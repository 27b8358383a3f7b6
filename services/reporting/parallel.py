"""A rebuild's replay in several processes, one per group of projections.

Each worker process (``python -m crmhub.services.reporting.parallel NAME...``, as the catalog
runs its parsers: plain processes, whatever the caller's event loop) replays the whole
journal into its own projections (they share no tables) and prints its progress; the caller
sees the progress of the slowest. A worker that fails or dies fails the rebuild: its
projections would be left half built.
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading

URL_VARIABLE = "CRMHUB_REPLAY_DATABASE_URL"  # not on the command line: it may hold a password


class ReplayFailed(RuntimeError):
    pass


def replay(url: str, groups: list[list[str]], chunk: int, progress=None) -> int:
    """Replay each group of projection names in a worker process; returns the events read
    (by the worker that read the most: events journaled meanwhile make them differ)."""
    messages: queue.Queue = queue.Queue()
    env = dict(os.environ, **{URL_VARIABLE: url})
    errors = [tempfile.TemporaryFile("w+") for _ in groups]  # a pipe left unread could fill up
    workers = [subprocess.Popen([sys.executable, "-m", __name__, str(chunk), *names],
                                stdout=subprocess.PIPE, stderr=error, env=env, text=True)
               for names, error in zip(groups, errors)]
    readers = [threading.Thread(target=_lines, args=(index, worker, messages), daemon=True)
               for index, worker in enumerate(workers)]
    for reader in readers:
        reader.start()
    read = [0] * len(workers)
    running = set(range(len(workers)))
    try:
        while running:
            index, line = messages.get()
            kind, _, value = line.partition(" ")
            if kind == "exited" and index not in running:
                continue  # after its "done"
            if kind not in ("progress", "done"):
                workers[index].wait()
                errors[index].seek(0)
                raise ReplayFailed(f"replay of {', '.join(groups[index])} failed (exit status "
                                   f"{workers[index].returncode}):\n{errors[index].read()[-4000:]}")
            read[index] = int(value)
            if kind == "done":
                running.discard(index)
            if progress is not None:
                progress(min(read))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        for error in errors:
            error.close()
    return max(read)


def _lines(index: int, worker: subprocess.Popen, messages: queue.Queue) -> None:
    for line in worker.stdout:
        messages.put((index, line.strip()))
    messages.put((index, "exited"))


def main(argv: list[str]) -> None:
    from crmhub.runtime.db import ServiceDatabase, make_engine
    from crmhub.services.reporting import journal, projections
    from crmhub.services.reporting.models import metadata

    chunk, names = int(argv[0]), argv[1:]
    engine = make_engine({"DATABASE_URL": os.environ[URL_VARIABLE], "DB_POOL_SIZE": 1,
                          "DB_MAX_OVERFLOW": 0}, "reporting")
    try:
        db = ServiceDatabase(engine, metadata, "reporting")
        done = journal.replay(db, projections.by_names(names), chunk, shared_lock=True,
                              progress=lambda n: print(f"progress {n}", flush=True))
    finally:
        engine.dispose()
    print(f"done {done}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
