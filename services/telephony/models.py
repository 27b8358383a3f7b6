"""Tables owned by the telephony service."""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)
TIME = sa.DateTime(timezone=True)

calls = sa.Table(
    "calls", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(100), nullable=False),
    # Null while a click-to-call waits for the PBX's first event about it.
    sa.Column("call_key", sa.String(200)),
    sa.Column("direction", sa.String(10)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("outcome", sa.String(10)),
    sa.Column("cause", sa.String(300)),
    sa.Column("client_number", sa.String(32)),
    sa.Column("client_number_raw", sa.String(200)),
    sa.Column("line", sa.String(200)),
    sa.Column("extension", sa.String(100)),
    sa.Column("manager", sa.String(100)),
    sa.Column("contact_id", sa.String(32)),
    # Whether the client's card existed before this call (the popup's "unknown number").
    sa.Column("caller_known", sa.Boolean),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("answered_at", TIME),
    sa.Column("ended_at", TIME),
    sa.Column("duration_s", sa.Integer),
    # The vendor's summary or CDR was applied: times and outcome are the vendor's own.
    sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()),
    # {leg_id: {extension, state, sequence, at}}: what stale or repeated events are checked on.
    sa.Column("legs", sa.JSON, nullable=False),
    # Extensions whose ringing was announced (call_ringing), so each rings one popup.
    sa.Column("announced", sa.JSON, nullable=False),
    sa.Column("command_id", sa.String(200)),
    sa.Column("requested_by", sa.String(200)),
    sa.Column("recording_ref", sa.String(500)),
    sa.Column("recording_key", sa.String(100)),
    sa.Column("recording_content_type", sa.String(100)),
    sa.Column("recording_size", sa.BigInteger),
    sa.Column("updated_at", TIME, nullable=False),
    sa.UniqueConstraint("provider", "call_key", name="uq_calls_provider_key"),
    sa.Index("ix_calls_contact", "contact_id", "created_at"),
    sa.Index("ix_calls_manager", "manager", "created_at"),
    sa.Index("ix_calls_command", "command_id"),
    sa.Index("ix_calls_status", "status", "created_at"),
)

# Which manager sits at an extension: who gets the popup, whose calls they are.
extensions = sa.Table(
    "extensions", metadata,
    sa.Column("extension", sa.String(50), primary_key=True),
    sa.Column("manager", sa.String(100), nullable=False),
    sa.Column("provider", sa.String(100)),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Index("ix_extensions_manager", "manager"),
)
