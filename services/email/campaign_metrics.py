"""Prometheus metrics of campaigns (the default registry, like crmhub.runtime.metrics)."""
from prometheus_client import Counter, Histogram

CAMPAIGN_EMAILS_QUEUED = Counter("crmhub_campaign_emails_queued_total",
                                 "Campaign emails queued for sending by the dispatcher")
TRACKED = Counter("crmhub_campaign_tracking_events_total",
                  "Opens, clicks and unsubscribes recorded from campaign emails", ["kind"])
MATERIALIZE_SECONDS = Histogram(
    "crmhub_campaign_materialize_seconds", "Time to turn a campaign's segment into recipients",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120))
