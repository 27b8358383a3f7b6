"""Structured JSON logs with a request id that travels with every RPC and event.

The request id enters at the gateway (``X-Request-ID`` or a fresh one), is stored in
``worker_ctx.data`` and so leaves in the ``nameko.request_id`` AMQP header of every RPC and
event the worker sends; the receiving worker gets it back in its own ``worker_ctx.data``.
"""
from __future__ import annotations

import logging
import logging.config
import sys
import time
import weakref

import structlog
import structlog.tracebacks
from nameko.extensions import DependencyProvider

from crmhub.runtime.metrics import WORKER_SECONDS

SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def json_formatter():
    """A stdlib formatter that renders structlog and foreign (nameko, kombu) records as JSON."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks as data, without local variables (they may hold secrets and bodies).
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ],
    )


def console_formatter():
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
    )


def configure_logging(config: dict, stream=None) -> None:
    level = str(config.get("LOG_LEVEL", "INFO")).upper()
    fmt = "console" if config.get("LOG_FORMAT") == "console" else "json"
    structlog.configure(
        # A line below the level is dropped first, before its context is gathered: a
        # discarded debug line cost 8 us, one per worker.
        processors=[structlog.stdlib.filter_by_level, *SHARED_PROCESSORS,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {"()": "crmhub.runtime.logs.json_formatter"},
                "console": {"()": "crmhub.runtime.logs.console_formatter"},
            },
            "handlers": {
                "out": {"class": "logging.StreamHandler", "formatter": fmt,
                        "stream": stream or sys.stderr},
            },
            "root": {"handlers": ["out"], "level": level},
            "loggers": {
                # kombu/amqp chatter about heartbeats is noise at INFO.
                "amqp": {"level": "WARNING"},
                "kombu": {"level": "WARNING"},
                "nameko": {"level": "WARNING" if level == "INFO" else level},
                # LogContext writes one line per worker, failures included; nameko's own
                # "error handling worker" lines would repeat them.
                "nameko.containers": {"level": "CRITICAL"},
            },
        }
    )


class LogContext(DependencyProvider):
    """Binds service, entrypoint, call id and request id to every log line of a worker,
    and logs one canonical line per worker with its outcome and duration."""

    def setup(self):
        # Keyed by worker: worker_ctx.data would travel downstream as AMQP headers.
        self._started = weakref.WeakKeyDictionary()

    def worker_setup(self, worker_ctx):
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            service=worker_ctx.service_name,
            entrypoint=worker_ctx.entrypoint.method_name,
            call_id=worker_ctx.call_id,
            request_id=worker_ctx.data.get("request_id"),
        )
        if getattr(worker_ctx.entrypoint, "max_batch", None):
            # A batch worker serves the requests of all its messages.
            structlog.contextvars.bind_contextvars(
                request_ids=sorted({d.request_id for d in worker_ctx.args[0] if d.request_id}),
                batch_size=len(worker_ctx.args[0]))
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        seconds = time.perf_counter() - started if started else 0.0
        duration_ms = round(seconds * 1000, 2)
        log = structlog.get_logger("crmhub.worker")
        outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
        WORKER_SECONDS.labels(worker_ctx.service_name, worker_ctx.entrypoint.method_name,
                              outcome).observe(seconds)
        if exc_info is None:
            log.debug("worker done", duration_ms=duration_ms)
        else:
            expected = getattr(worker_ctx.entrypoint, "expected_exceptions", ())
            if expected and isinstance(exc_info[1], expected):
                log.info("worker refused", duration_ms=duration_ms, error=repr(exc_info[1]))
            else:
                log.error("worker failed", duration_ms=duration_ms, exc_info=exc_info)

    def worker_teardown(self, worker_ctx):
        structlog.contextvars.clear_contextvars()
