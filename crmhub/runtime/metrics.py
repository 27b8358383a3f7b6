"""Prometheus metrics shared by every service (one registry per process)."""
from prometheus_client import Counter, Gauge, Histogram

WORKER_SECONDS = Histogram(
    "crmhub_worker_seconds", "Duration of a service worker (RPC, event handler, HTTP request)",
    ["service", "entrypoint", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HANDLER_RETRIES = Counter("crmhub_handler_retries_total", "Failed handler runs sent for retry",
                          ["service", "queue"])
DEAD_LETTERS = Counter("crmhub_dead_letters_total", "Messages parked in a dead-letter queue",
                       ["service", "queue"])
INBOX_DUPLICATES = Counter("crmhub_inbox_duplicates_total",
                           "Redelivered messages skipped by the inbox", ["service"])
OUTBOX_PUBLISHED = Counter("crmhub_outbox_published_total", "Outbox events published",
                           ["service"])
OUTBOX_BACKLOG = Gauge("crmhub_outbox_backlog", "Outbox rows not yet published (last seen)",
                       ["service"])
QUEUE_MESSAGES = Gauge("crmhub_queue_messages",
                       "Messages waiting in a handler queue of a service (its lag), read at scrape",
                       ["service", "queue"])
WEBHOOKS = Counter("crmhub_webhooks_total", "Webhook requests by connector and HTTP status",
                   ["connector", "status"])
HTTP_REQUESTS = Counter("crmhub_http_requests_total", "Gateway HTTP requests by entrypoint",
                        ["entrypoint", "method", "status"])
PBX_COMMAND_SECONDS = Histogram(
    "crmhub_pbx_command_seconds", "Duration of a command to a PBX (click-to-call)",
    ["provider", "command", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECORDINGS_STORED = Counter("crmhub_recordings_stored_total", "Call recordings fetched and stored",
                            ["provider"])
POPUPS_DELIVERED = Counter("crmhub_popups_delivered_total",
                           "Incoming-call popups pushed to connected browsers", ["service"])
POPUP_STREAMS = Gauge("crmhub_popup_streams", "Browsers connected to the popup stream",
                      ["service"])
GC_PAUSE_SECONDS = Histogram(
    "crmhub_gc_pause_seconds", "Time a Python garbage collection stopped the whole process",
    ["generation"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
GC_FROZEN_OBJECTS = Gauge("crmhub_gc_frozen_objects",
                          "Objects of the process's start that collections no longer walk")
