"""Run services: all in one process (the default) or one per process/container."""
from __future__ import annotations

import json
import signal
import time

import eventlet
import eventlet.wsgi
import prometheus_client
import sqlalchemy as sa
import structlog
from nameko.containers import ServiceContainer
from nameko.runners import ServiceRunner
from werkzeug.wrappers import Request, Response

from crmhub.runtime.collector import freeze_startup_objects
from crmhub.runtime.db import Database
from crmhub.runtime.messaging import reuse_json_decoder
from crmhub.runtime.registry import all_service_classes
from crmhub.runtime.rpc import unconfirmed_rpc_replies
from crmhub.runtime.topology import QueueDepths, TopologyError, declare_topology

log = structlog.get_logger(__name__)


def declare_with_retry(config: dict, timeout: float = 60.0) -> list[str]:
    """Declare the topology, waiting for the broker (containers may start before it)."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            return declare_topology(config, all_service_classes())
        except TopologyError as exc:
            raise SystemExit(f"crmhub: the broker's queues need attention: {exc}") from exc
        except OSError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("broker not reachable yet", error=repr(exc))
            time.sleep(delay)
            delay = min(delay * 2, 5)


def service_health(container) -> dict:
    """A container's health: running, and its database answers."""
    checks = {"running": not container._died.ready() and container.started}
    for provider in container.dependencies:
        if isinstance(provider, Database):
            try:
                with provider.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                checks["database"] = True
            except Exception:  # noqa: BLE001 - any failure means unhealthy
                checks["database"] = False
    return {"status": "ok" if all(checks.values()) else "failing", "checks": checks}


def ops_app(runner: ServiceRunner, queue_depths: QueueDepths | None = None):
    """/health (every service of this process, its database included: readiness), /live
    (the process runs: liveness) and /metrics (Prometheus)."""

    @Request.application
    def app(request):
        if request.path == "/metrics":
            if queue_depths is not None:
                queue_depths.refresh()
            return Response(prometheus_client.generate_latest(),
                            content_type=prometheus_client.CONTENT_TYPE_LATEST)
        if request.path == "/live":
            # Liveness: the process and its containers run. Unlike /health it does not ask the
            # database, so an orchestrator does not restart every pod when PostgreSQL is down.
            alive = {c.service_name: not c._died.ready() for c in runner.containers}
            return Response(json.dumps({"status": "ok" if all(alive.values()) else "failing",
                                        "services": alive}),
                            status=200 if all(alive.values()) else 503,
                            content_type="application/json")
        if request.path == "/health":
            services = {c.service_name: service_health(c) for c in runner.containers}
            healthy = all(s["status"] == "ok" for s in services.values())

            return Response(json.dumps({"status": "ok" if healthy else "failing",
                                        "services": services}),
                            status=200 if healthy else 503, content_type="application/json")
        return Response('{"error": "not_found"}', status=404, content_type="application/json")

    return app


class HubContainer(ServiceContainer):
    """nameko's container, whose workers' objects are freed as soon as each worker ends. The
    service instance of a worker holds its dependencies, which hold the worker context, which
    holds the instance: a cycle of some 35 objects per gateway request that only the garbage
    collector could free."""

    def _run_worker(self, worker_ctx, handle_result):
        try:
            super()._run_worker(worker_ctx, handle_result)
        finally:
            vars(worker_ctx.service).clear()


def run_services(config: dict, service_classes) -> None:
    declare_with_retry(config)
    unconfirmed_rpc_replies()
    reuse_json_decoder()
    runner = ServiceRunner({**config, "SERVICE_CONTAINER_CLS": f"{__name__}.HubContainer"})
    for cls in service_classes:
        runner.add_service(cls)

    def shutdown(signum, _frame):
        log.info("stopping", signal=signum)
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.start()
    ops_address = str(config.get("OPS_ADDRESS") or "")
    if ops_address and ops_address.lower() != "off":
        host, _, port = ops_address.rpartition(":")
        sock = eventlet.listen((host or "0.0.0.0", int(port)))
        depths = QueueDepths(config["AMQP_URI"], service_classes)
        eventlet.spawn_n(eventlet.wsgi.server, sock, ops_app(runner, depths), log_output=False)
    freeze_startup_objects()
    log.info("services started", services=[c.name for c in service_classes],
             web=config.get("WEB_SERVER_ADDRESS"), ops=ops_address)
    runner.wait()
    log.info("services stopped")
