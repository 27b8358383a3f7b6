"""`make bench`: run the benchmarks, print the figures, keep them in bench/results/.

    python -m bench [ingest] [lookup] [deals] [--duration S] [--rate N] [--layouts G:C ...]
                    [--contacts N]
                    [--deals N] [--move-rate N] [--reminder-tasks N] [--reminder-window S]
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from bench import deals, ingest, lookup
from bench.common import RESULTS

SUITES = {"ingest": ingest, "lookup": lookup, "deals": deals}


def main():
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], default=[])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per phase")
    parser.add_argument("--rate", type=int, default=100, help="submissions/s of the latency phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--layouts", nargs="+", default=["1:1", "2:1"],
                        help="ingestion layouts, GATEWAYS:CONTACTS processes each")
    parser.add_argument("--deals", type=int, default=10_000,
                        help="open deals in the pipeline of the board")
    parser.add_argument("--move-rate", type=int, default=20,
                        help="moves/s of the move -> timeline phase (for --duration seconds)")
    parser.add_argument("--reminder-tasks", type=int, default=100_000)
    parser.add_argument("--reminder-window", type=float, default=600,
                        help="seconds over which the reminders fall due (a day compressed)")
    args = parser.parse_args()
    chosen = args.suites or list(SUITES)
    results = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="crmhub-bench-") as tmp:
        workdir = Path(tmp)
        if "ingest" in chosen:
            results["ingest"] = [
                ingest.run(workdir, args.duration, args.rate, args.connections,
                           *map(int, layout.split(":"))) for layout in args.layouts]
            print(json.dumps({"ingest": results["ingest"]}, indent=2), flush=True)
        if "lookup" in chosen:
            results["lookup"] = lookup.run(workdir, args.contacts)
            print(json.dumps({"lookup": results["lookup"]}, indent=2), flush=True)
        if "deals" in chosen:
            results["deals"] = deals.run(workdir, open_deals=args.deals,
                                         move_rate=args.move_rate, move_duration=args.duration,
                                         reminder_tasks=args.reminder_tasks,
                                         reminder_window=args.reminder_window)
            print(json.dumps({"deals": results["deals"]}, indent=2), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
