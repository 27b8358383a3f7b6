"""The campaign entrypoints of the email service (a mixin of EmailService).

Relies on the EmailService's dependencies: ``db`` (Database of the email metadata),
``contacts`` (RpcProxy), ``config`` (Config) and ``smtp`` (its ``from_addr``); declares
``deals`` (RpcProxy) itself. Timers: ``CAMPAIGN_TICK_S`` seconds (default 1) between runs of
the materialiser and of the dispatcher.
"""
from __future__ import annotations

import structlog
from nameko.rpc import rpc

from crmhub.contracts import campaigns as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.contacts import ContactsMergedSchema
from crmhub.contracts.errors import CrmhubError, InvalidInput, NotFound
from crmhub.runtime.handlers import batch_handler, reliable_handler
from crmhub.runtime.rpc import RpcProxy
from crmhub.runtime.timer import timer
from crmhub.services.email import campaign_segments, campaigns, consent
from crmhub.services.email.campaign_metrics import (
    CAMPAIGN_EMAILS_QUEUED,
    MATERIALIZE_SECONDS,
    TRACKED,
)
from crmhub.services.email.tracking import Links, base_url, tracking_secret

log = structlog.get_logger(__name__)
EXPECTED = (CrmhubError,)


def _dump(schema_cls, value):
    return instance(schema_cls).dump(value)


class CampaignEntrypoints:
    deals = RpcProxy("deals")

    def _links(self, campaign_id: str, contact_id: str) -> Links:
        return Links(tracking_secret(self.config), base_url(self.config), campaign_id, contact_id)

    def _card_id(self, contact_id: str) -> str:
        """The live card of ``contact_id`` (merges followed); NotFound if it is none."""
        return self.contacts.get_contact(str(contact_id))["id"]

    # -- consent ---------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def set_consent(self, request):
        request = load_input(schemas.ConsentRequestSchema, request)
        contact_id = self._card_id(request["contact_id"])
        with self.db.transaction() as tx:
            consent.record(tx, contact_id, request["channel"], request["status"],
                           request["source"], request["at"])
        return self.get_consents(contact_id)

    @rpc(expected_exceptions=EXPECTED)
    def get_consents(self, contact_id):
        contact_id = self._card_id(contact_id)
        with self.db.connect() as conn:
            return _dump(schemas.ConsentsSchema, consent.of_contact(conn, contact_id))

    @reliable_handler("contacts", ev.CONTACTS_MERGED)
    def on_contacts_merged(self, payload):
        """Consent given on a card that was merged away holds for the card that stays."""
        event = instance(ContactsMergedSchema).load(payload)
        with self.db.transaction() as tx:
            consent.move_to_merged_card(tx, event["source_id"], event["target_id"])

    # -- campaigns -------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def create_campaign(self, data):
        data = load_input(schemas.CampaignCreateSchema, data)
        with self.db.transaction() as tx:
            return _dump(schemas.CampaignSchema, campaigns.create(tx, data))

    @rpc(expected_exceptions=EXPECTED)
    def list_campaigns(self):
        with self.db.connect() as conn:
            return _dump(schemas.CampaignListSchema, {"items": campaigns.list_all(conn)})

    @rpc(expected_exceptions=EXPECTED)
    def get_campaign(self, campaign_id):
        with self.db.connect() as conn:
            return _dump(schemas.CampaignSchema, campaigns.load(conn, str(campaign_id)))

    @rpc(expected_exceptions=EXPECTED)
    def preview_campaign(self, campaign_id):
        with self.db.connect() as conn:
            campaign = campaigns.load(conn, str(campaign_id))
        segment = instance(schemas.SegmentSchema).load(campaign["segment"])
        pages = campaign_segments.pages(self.contacts, self.deals, segment)
        with self.db.connect() as conn:
            found = campaigns.preview(conn, pages)
        member = found.pop("sample_member")
        found["sample_contact_id"] = member["id"] if member else None
        found["sample"] = (campaigns.render_sample(campaign, member,
                                                   self._links(campaign["id"], member["id"]))
                           if member else None)
        return _dump(schemas.CampaignPreviewSchema, found)

    @rpc(expected_exceptions=EXPECTED)
    def send_campaign(self, campaign_id):
        with self.db.transaction() as tx:
            return _dump(schemas.CampaignSchema, campaigns.start(tx, str(campaign_id)))

    @rpc(expected_exceptions=EXPECTED)
    def cancel_campaign(self, campaign_id):
        with self.db.transaction() as tx:
            return _dump(schemas.CampaignSchema, campaigns.cancel(tx, str(campaign_id)))

    @rpc(expected_exceptions=EXPECTED)
    def campaign_metrics(self, campaign_id):
        with self.db.connect() as conn:
            return _dump(schemas.CampaignMetricsSchema, campaigns.metrics(conn, str(campaign_id)))

    # -- sending: materialise the recipients, then queue them at the rate ------------------------
    @timer("CAMPAIGN_TICK_S", 1.0)
    def materialize_campaigns(self):
        with self.db.connect() as conn:
            todo = campaigns.campaigns_to_materialize(conn)
        for campaign in todo:
            with MATERIALIZE_SECONDS.time():
                self._materialize(campaign)

    def _materialize(self, campaign):
        segment = instance(schemas.SegmentSchema).load(campaign["segment"])
        after = campaign["after"]
        try:
            for members, next_after in campaign_segments.pages(self.contacts, self.deals,
                                                               segment, after):
                with self.db.transaction() as tx:
                    if not campaigns.add_recipients(tx, campaign["id"], after, members, next_after):
                        return  # another instance has it, or it was cancelled
                after = next_after
        except (NotFound, InvalidInput) as exc:
            # The segment names a pipeline or stage that is gone: nobody to send to.
            log.warning("campaign segment cannot be resolved", campaign_id=campaign["id"],
                        error=str(exc))
            with self.db.transaction() as tx:
                campaigns.add_recipients(tx, campaign["id"], after, [], None)
        log.info("campaign recipients materialised", campaign_id=campaign["id"])

    @timer("CAMPAIGN_TICK_S", 1.0)
    def dispatch_campaigns(self):
        tick = float(self.config.get("CAMPAIGN_TICK_S") or 1.0)
        with self.db.connect() as conn:
            ids = campaigns.sending_campaign_ids(conn)
        for campaign_id in ids:
            with self.db.transaction() as tx:
                done = campaigns.dispatch(tx, campaign_id, self._links,
                                          burst_seconds=max(campaigns.BURST_SECONDS, 2 * tick),
                                          from_addr=self.smtp.from_addr)
            CAMPAIGN_EMAILS_QUEUED.inc(done["queued"])
            if done["finished"]:
                log.info("campaign finished", campaign_id=campaign_id)

    # -- tracking: what the gateway's /t/ links saw ----------------------------------------------
    def _tracked(self, deliveries, schema, kind, record):
        events = [instance(schema).load(d.payload) for d in deliveries]
        with self.db.transaction() as tx:
            fresh = tx.claim_many([f"{kind}:{e['event_id']}" for e in events])
            for event in events:
                if f"{kind}:{event['event_id']}" in fresh:
                    record(tx, event)
        TRACKED.labels(kind).inc(len(events))

    @batch_handler("gateway", ev.CAMPAIGN_EMAIL_OPENED)
    def on_campaign_email_opened(self, deliveries):
        self._tracked(deliveries, schemas.TrackedEmailSchema, "open",
                      lambda tx, e: campaigns.record_open(tx, e["campaign_id"], e["contact_id"],
                                                          e["occurred_at"]))

    @batch_handler("gateway", ev.CAMPAIGN_LINK_CLICKED)
    def on_campaign_link_clicked(self, deliveries):
        self._tracked(deliveries, schemas.LinkClickedSchema, "click",
                      lambda tx, e: campaigns.record_click(tx, e["campaign_id"], e["contact_id"],
                                                           e["url"], e["occurred_at"]))

    @reliable_handler("gateway", ev.CAMPAIGN_UNSUBSCRIBE_REQUESTED)
    def on_campaign_unsubscribe_requested(self, payload):
        event = instance(schemas.TrackedEmailSchema).load(payload)
        with self.db.transaction() as tx:
            if tx.claim(f"unsubscribe:{event['event_id']}"):
                campaigns.record_unsubscribe(tx, event["campaign_id"], event["contact_id"],
                                             event["occurred_at"])
        TRACKED.labels("unsubscribe").inc()
