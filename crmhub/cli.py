"""The ``crmhub`` command."""
from __future__ import annotations

import argparse
import json
import os
import sys


def _config(args):
    from crmhub.runtime.config import load_config
    from crmhub.runtime.logs import configure_logging

    config = load_config(args.config)
    configure_logging(config)
    return config


def cmd_run(args):
    from crmhub.runtime.migrate import upgrade
    from crmhub.runtime.registry import SERVICES, service_class
    from crmhub.runtime.runner import run_services

    config = _config(args)
    names = args.service or list(SERVICES)
    if args.migrate:
        for name in names:
            upgrade(config, name)
    run_services(config, [service_class(name) for name in names])


def cmd_migrate(args):
    from crmhub.runtime.migrate import upgrade
    from crmhub.runtime.registry import SERVICES

    config = _config(args)
    for name in args.service or list(SERVICES):
        if upgrade(config, name):
            print(f"{name}: up to date")


def cmd_declare(args):
    from crmhub.runtime.runner import declare_with_retry

    for queue in declare_with_retry(_config(args)):
        print(queue)


def cmd_connectors(args):
    from crmhub.plugins.host import ConnectorHost

    described = ConnectorHost(_config(args)).describe()
    if args.json:
        print(json.dumps(described, indent=2))
        return
    for connector in described:
        print(f"{connector['name']} {connector['version']} (API {connector['api_version']}, "
              f"plugin {connector['plugin']}): {connector['title']}")
        for route in connector["routes"]:
            print(f"    {','.join(route['methods']):<10} {route['path']}  {route['description']}")


def cmd_dlq(args):
    from crmhub.runtime.dlq import list_dead_letters, replay_dead_letters
    from crmhub.runtime.registry import SERVICES

    config = _config(args)
    services = args.service or list(SERVICES)
    if args.action == "list":
        letters = list_dead_letters(config["AMQP_URI"], services)
        if args.json:
            print(json.dumps(letters, indent=2, default=str))
            return
        if not letters:
            print("no dead letters")
        for letter in letters:
            print(f"{letter['service']}  {letter['message_id']}  {letter['origin']}  "
                  f"attempts={letter['attempts']}  failed_at={letter['failed_at']}\n"
                  f"    {letter['error']}")
        return
    if not args.all and not args.id:
        raise SystemExit("dlq replay: give --id MESSAGE_ID (repeatable) or --all")
    total = 0
    for service in services:
        total += replay_dead_letters(config["AMQP_URI"], service, None if args.all else args.id)
    print(f"replayed {total}")


def cmd_contracts(args):
    from crmhub.contracts.jsonschema import ContractExportError, export_json_schemas

    try:
        paths = export_json_schemas(args.json_schema)
    except ContractExportError as exc:
        raise SystemExit(f"contracts: {exc}") from None
    for path in paths:
        print(path)


def cmd_pipelines(args):
    """Straight to the deals database, like ``migrate``: works whether or not the hub runs."""
    from crmhub.contracts.errors import CrmhubError
    from crmhub.runtime.db import ServiceDatabase, make_engine
    from crmhub.runtime.migrate import upgrade
    from crmhub.services.deals import logic
    from crmhub.services.deals.models import metadata

    config = _config(args)
    upgrade(config, "deals")
    engine = make_engine(config, "deals")
    try:
        db = ServiceDatabase(engine, metadata, "deals")
        if args.action == "list":
            with db.connect() as conn:
                for template in logic.list_templates(conn):
                    state = "loaded" if template["loaded"] else "not loaded"
                    print(f"{template['name']:<20} {template['title']} ({state}): "
                          f"{' → '.join(template['stages'])}")
            return
        if not args.name:
            raise SystemExit("pipelines load: name a template (see `crmhub pipelines list`)")
        try:
            with db.transaction() as tx:
                pipeline, created = logic.load_template(tx, args.name)
        except CrmhubError as exc:
            raise SystemExit(f"pipelines load: {exc.message}") from None
        print(f"{pipeline['id']}: {'loaded' if created else 'already loaded'}, "
              f"{len(pipeline['stages'])} stages")
    finally:
        engine.dispose()


def cmd_simulate(args):
    from crmhub import simulate

    config = _config(args)
    settings = (config.get("CONNECTORS") or {}).get(args.provider) or {}
    hub = args.to or f"http://{config.get('WEB_SERVER_ADDRESS') or '127.0.0.1:8000'}"
    module = simulate.simulator(args.provider)
    scenarios = args.scenario or list(module.SCENARIOS)
    refused = simulate.play(args.provider, hub, settings, scenarios, count=args.count,
                            client=args.client, line=args.line, extensions=args.extension or (),
                            pause=args.pause)
    if refused:
        raise SystemExit(f"simulate: the hub refused {refused} webhooks (are the connector's "
                         f"keys in --config the hub's own?)")


def cmd_import_1c(args):
    """Each exchange file of DIR in 1C's order (import, offers, prices, rests), in an import
    process of its own as the catalog service runs them, with a progress bar."""
    from pathlib import Path

    from crmhub.runtime.migrate import upgrade
    from crmhub.services.catalog import progress

    config = _config(args)
    if args.workers:
        config["IMPORT_WORKERS"] = args.workers
    upgrade(config, "catalog")
    files = progress.exchange_files(Path(args.dir))
    if not files:
        raise SystemExit(f"import-1c: no import*, offers*, prices* or rests*.xml in {args.dir}")
    failed = progress.import_files(config, files, sys.stderr)
    if failed:
        raise SystemExit(f"import-1c: {failed} of {len(files)} files refused, nothing of them applied")


def cmd_reports(args):
    from crmhub.contracts.errors import CrmhubError
    from crmhub.services.reporting import admin

    config = _config(args)
    if args.action == "rebuild":
        result = admin.rebuild(config, workers=args.workers)
        print(f"rebuilt: {result['events']} events replayed in {result['seconds']} s "
              f"by {result['workers']} process(es)")
        return
    if not args.name:
        raise SystemExit("reports show: name a report, e.g. funnel")
    filters = dict(item.split("=", 1) for item in args.filter or ())
    try:
        print(admin.show(config, args.name, filters, args.format))
    except CrmhubError as exc:
        details = f" {json.dumps(exc.details, ensure_ascii=False)}" if exc.details else ""
        raise SystemExit(f"reports show: {exc.message}{details}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crmhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_text, config=True):
        p = sub.add_parser(name, help=help_text)
        if config:
            p.add_argument("--config", default=os.environ.get("CRMHUB_CONFIG") or None,
                           help="YAML config (${ENV:default} is expanded); "
                                "default: $CRMHUB_CONFIG, else built-in defaults")
        p.set_defaults(func=func)
        return p

    p = command("run", cmd_run, "start services (all of them in one process by default)")
    p.add_argument("--service", action="append", help="run only this service (repeatable)")
    p.add_argument("--migrate", action="store_true", help="migrate the services' tables first")
    p = command("migrate", cmd_migrate, "create or upgrade the services' tables")
    p.add_argument("--service", action="append")
    command("declare", cmd_declare, "declare exchanges and queues before services start")
    p = command("connectors", cmd_connectors, "list loaded connectors and their routes")
    p.add_argument("--json", action="store_true")
    p = command("contracts", cmd_contracts, "export the contracts for other languages", config=False)
    p.add_argument("--json-schema", metavar="DIR", required=True,
                   help="write one JSON Schema (draft 2020-12) per event and RPC payload under DIR")
    p = command("pipelines", cmd_pipelines, "list the pipeline templates, or load one")
    p.add_argument("action", choices=["list", "load"])
    p.add_argument("name", nargs="?", help="template to load, e.g. b2b-sales")
    p = command("simulate", cmd_simulate, "play signed PBX call scenarios against a hub")
    p.add_argument("what", choices=["pbx"])
    p.add_argument("--provider", required=True, help="mango or zadarma")
    p.add_argument("--to", metavar="URL", help="the hub (default: WEB_SERVER_ADDRESS of --config)")
    p.add_argument("--scenario", action="append",
                   help="answered, missed, outgoing, transfer, recording (default: each once)")
    p.add_argument("--count", type=int, default=1, help="rounds of the scenarios")
    p.add_argument("--client", help="the client's number as the PBX sends it, e.g. 79161234567")
    p.add_argument("--line", help="our number (DID), e.g. 74951234567")
    p.add_argument("--extension", action="append", help="extension(s) that ring (repeatable)")
    p.add_argument("--pause", type=float, default=0.5,
                   help="seconds between webhooks (a PBX leaves seconds between ring and answer)")
    p = command("import-1c", cmd_import_1c, "import 1C exchange files (CommerceML) from a folder")
    p.add_argument("dir", help="folder with import*.xml, offers*.xml, prices*.xml, rests*.xml")
    p.add_argument("--workers", type=int, help="parsing processes for a big file (default: cores)")
    p = command("reports", cmd_reports, "rebuild the report projections, or print a report")
    p.add_argument("action", choices=["rebuild", "show"])
    p.add_argument("name", nargs="?", help="report to show: funnel, managers, sources, ...")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="a report filter, e.g. period_from=2026-01-01 (repeatable)")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--workers", type=int,
                   help="rebuild: processes replaying the projections side by side "
                        "(PostgreSQL; default: one per core, up to two)")
    p = command("dlq", cmd_dlq, "list or replay dead-lettered messages")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("--service", action="append")
    p.add_argument("--id", action="append", help="message id to replay (repeatable)")
    p.add_argument("--all", action="store_true", help="replay every dead letter")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv=None):
    # Before anything opens a socket: nameko services run on eventlet.
    import eventlet

    eventlet.monkey_patch()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
