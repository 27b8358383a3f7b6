"""Prometheus metrics of the email service (the default registry, like crmhub.runtime.metrics)."""
from prometheus_client import Counter, Histogram

EMAIL_SMTP_SECONDS = Histogram(
    "crmhub_email_smtp_seconds", "Duration of handing one email to the SMTP server",
    ["outcome"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EMAILS_SENT = Counter("crmhub_emails_sent_total", "Outgoing emails by delivery outcome",
                      ["outcome"])
IMAP_MESSAGES = Counter("crmhub_imap_messages_total", "Messages fetched by the IMAP sync",
                        ["mailbox", "kind"])
IMAP_SYNC_SECONDS = Histogram(
    "crmhub_imap_sync_seconds", "Duration of one sync of one mailbox", ["mailbox", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
BOUNCES = Counter("crmhub_email_bounces_total", "Bounces matched to outgoing emails",
                  ["matched"])
