"""Tables of email campaigns and client consent, on the email service's ``metadata``.

Consent is kept per card and channel (the status in force) with every change in a history.
A campaign's recipients are materialised once, when it is sent (the segment as it stood then);
the dispatcher then queues them into ``outgoing_emails`` at the campaign's rate.
"""
import sqlalchemy as sa

from crmhub.services.email.models import metadata

TIME = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

consents = sa.Table(
    "consents", metadata,
    sa.Column("contact_id", sa.String(32), primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("at", TIME, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
)

consent_history = sa.Table(
    "consent_history", metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("at", TIME, nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("recorded_at", TIME, nullable=False),
    sa.Index("ix_consent_history_contact", "contact_id", "id"),
)

campaigns = sa.Table(
    "campaigns", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("segment", sa.JSON, nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text),
    sa.Column("rate_per_minute", sa.Integer, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("started_at", TIME),
    sa.Column("finished_at", TIME),
    # Materialising the recipients, page by page: the last card id taken (resumed from
    # there after a restart) and whether every page is in.
    sa.Column("materialize_after", sa.String(32)),
    sa.Column("materialized", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("recipients", sa.Integer, nullable=False, server_default="0"),
    sa.Column("excluded_no_consent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("queued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    # The rate limit's bucket: emails that may be queued now, as of credit_at.
    sa.Column("credit", sa.Float, nullable=False, server_default="0"),
    sa.Column("credit_at", TIME),
    sa.Index("ix_campaigns_status", "status"),
)

# state: pending (to queue) -> queued, or skipped (consent withdrawn before its turn).
campaign_recipients = sa.Table(
    "campaign_recipients", metadata,
    sa.Column("campaign_id", sa.String(32), primary_key=True),
    sa.Column("contact_id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    # The card's fields the template may use, as they were when the campaign was sent.
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("queued_at", TIME),
    sa.Index("ix_campaign_recipients_state", "campaign_id", "state", "contact_id"),
)

campaign_opens = sa.Table(
    "campaign_opens", metadata,
    sa.Column("campaign_id", sa.String(32), primary_key=True),
    sa.Column("contact_id", sa.String(32), primary_key=True),
    sa.Column("first_at", TIME, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

# One row per client and link; the URL's digest keeps the key short whatever the URL.
campaign_clicks = sa.Table(
    "campaign_clicks", metadata,
    sa.Column("campaign_id", sa.String(32), primary_key=True),
    sa.Column("url_digest", sa.String(64), primary_key=True),
    sa.Column("contact_id", sa.String(32), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("first_at", TIME, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

campaign_unsubscribes = sa.Table(
    "campaign_unsubscribes", metadata,
    sa.Column("campaign_id", sa.String(32), primary_key=True),
    sa.Column("contact_id", sa.String(32), primary_key=True),
    sa.Column("at", TIME, nullable=False),
)
