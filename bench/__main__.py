"""`make bench`: run the benchmarks, print the figures, keep them in bench/results/.

    python -m bench [ingest] [lookup] [deals] [telephony] [--duration S] [--rate N]
                    [--layouts G:C ...] [--contacts N]
                    [--deals N] [--move-rate N] [--reminder-tasks N] [--reminder-window S]
                    [--calls N] [--managers N] [--call-rate N] [--call-compression X]
                    [--duplicates F] [--clicks N] [--click-concurrency N]
                    [--telephony-layout all|G,T,C+D] [--load-workers N]
                    [catalog] [--offers N] [--import-workers N]
                    [messenger] [--messages N] [--message-rate R] [--messenger-layout L]
                    [email] [--mailbox-messages N]
                    [campaigns] [--campaign-clients N] [--campaign-rate N] [--campaign-window S]
                    [reporting] [--report-deals N] [--report-changes N] [--report-rate N]
                    [report_views] [--report-view-events N]
                    [deploy] [--restart-rate R]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench import (
    campaigns,
    catalog,
    deals,
    deploy,
    email,
    ingest,
    lookup,
    machine,
    messenger,
    report_views,
    reporting,
    telephony,
)
from bench.common import RESULTS

TELEPHONY_LAYOUT = "gateway,telephony,contacts+deals,messenger+catalog+email+reporting"
SUITES = {"ingest": ingest, "lookup": lookup, "deals": deals, "telephony": telephony,
          "catalog": catalog, "campaigns": campaigns, "messenger": messenger, "email": email,
          "reporting": reporting, "report_views": report_views, "deploy": deploy}


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
    parser.add_argument("--calls", type=int, default=500,
                        help="telephony: calls of the popup phase (one ringing per manager)")
    parser.add_argument("--managers", type=int, default=50,
                        help="telephony: managers seated at extensions, one popup stream each")
    parser.add_argument("--call-rate", type=int, default=500,
                        help="telephony: webhooks/s of the call-events phase (for --duration s)")
    parser.add_argument("--call-compression", type=float, default=20.0,
                        help="telephony: simulated call seconds per real second")
    parser.add_argument("--duplicates", type=float, default=0.05,
                        help="telephony: share of webhooks posted a second time")
    parser.add_argument("--clicks", type=int, default=600,
                        help="telephony: click-to-call requests (half sequential)")
    parser.add_argument("--click-concurrency", type=int, default=8)
    parser.add_argument("--telephony-layout", default=TELEPHONY_LAYOUT,
                        help="telephony: hub processes, 'all' in one or services joined by + "
                             f"per process (default {TELEPHONY_LAYOUT}: the popup's path "
                             "apart from reporting and campaigns, see docs/telephony.md)")
    parser.add_argument("--offers", type=int, default=1_000_000,
                        help="catalog: offers of the generated 1C exchange")
    parser.add_argument("--import-workers", type=int, default=None,
                        help="catalog: parsing processes (default: cores)")
    parser.add_argument("--load-workers", type=int, default=4,
                        help="telephony: load generator processes of the call-events phase")
    parser.add_argument("--campaign-clients", type=int, default=100_000,
                        help="campaigns: consenting clients the campaign goes to")
    parser.add_argument("--campaign-rate", type=int, default=6000,
                        help="campaigns: the campaign's rate, emails per minute")
    parser.add_argument("--campaign-window", type=float, default=60,
                        help="campaigns: seconds over which the send rate is measured")
    parser.add_argument("--mailbox-messages", type=int, default=50_000,
                        help="email: messages in the mailbox of the IMAP sync")
    parser.add_argument("--messages", type=int, default=500,
                        help="messenger: new clients writing, then as many messages of theirs")
    parser.add_argument("--message-rate", type=float, default=20.0,
                        help="messenger: Telegram updates per second")
    parser.add_argument("--messenger-layout", default="gateway,messenger,contacts,deals",
                        help="messenger: services per process, e.g. all or gateway,messenger+contacts,deals")
    parser.add_argument("--report-deals", type=int, default=1_000_000,
                        help="reporting: deals in the generated journal")
    parser.add_argument("--report-changes", type=int, default=5_000_000,
                        help="reporting: stage changes in the generated journal")
    parser.add_argument("--report-rate", type=int, default=2000,
                        help="reporting: deal events/s published in the live phase (the target)")
    parser.add_argument("--report-view-events", type=int, default=100_000,
                        help="report_views: events per type fed to the sources, calls, "
                             "campaigns and churn projections")
    parser.add_argument("--restart-rate", type=float, default=50,
                        help="deploy: forms/s sent during the rolling restart")
    args = parser.parse_args()
    chosen = args.suites or list(SUITES)
    ticks = machine.cpu_ticks()
    results = {"machine": machine.describe(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps({"machine": results["machine"]}), flush=True)
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
        if "telephony" in chosen:
            results["telephony"] = telephony.run(
                workdir, contacts=args.contacts, calls=args.calls, managers=args.managers,
                call_rate=args.call_rate, duration=args.duration,
                compression=args.call_compression, duplicates=args.duplicates,
                clicks=args.clicks, click_concurrency=args.click_concurrency,
                layout=args.telephony_layout, load_workers=args.load_workers)
            print(json.dumps({"telephony": results["telephony"]}, indent=2), flush=True)
        if "catalog" in chosen:
            results["catalog"] = catalog.run(workdir, offers=args.offers, workers=args.import_workers)
            print(json.dumps({"catalog": results["catalog"]}, indent=2), flush=True)
        if "campaigns" in chosen:
            results["campaigns"] = campaigns.run(workdir, count=args.campaign_clients,
                                                 rate_per_minute=args.campaign_rate,
                                                 measure_s=args.campaign_window)
            print(json.dumps({"campaigns": results["campaigns"]}, indent=2), flush=True)
        if "messenger" in chosen:
            results["messenger"] = messenger.run(workdir, messages=args.messages,
                                                 rate=args.message_rate,
                                                 layout=args.messenger_layout)
            print(json.dumps({"messenger": results["messenger"]}, indent=2), flush=True)
        if "email" in chosen:
            results["email"] = email.run(workdir, messages=args.mailbox_messages)
            print(json.dumps({"email": results["email"]}, indent=2), flush=True)
        if "reporting" in chosen:
            results["reporting"] = reporting.run(workdir, deals=args.report_deals,
                                                 changes=args.report_changes,
                                                 rate=args.report_rate, duration=args.duration)
            print(json.dumps({"reporting": results["reporting"]}, indent=2), flush=True)
        if "report_views" in chosen:
            results["report_views"] = report_views.run(workdir, events=args.report_view_events)
            print(json.dumps({"report_views": results["report_views"]}, indent=2), flush=True)
        if "deploy" in chosen:
            results["deploy"] = deploy.run(workdir, duration=args.duration,
                                           connections=args.connections, rate=args.restart_rate)
            print(json.dumps({"deploy": results["deploy"]}, indent=2), flush=True)
    results["machine_at_end"] = machine.describe(before=ticks)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
