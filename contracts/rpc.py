"""The RPC catalog: every ``service.method`` with its argument and result schemas."""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from crmhub.contracts import calls, catalog, contacts, deals
from crmhub.contracts import campaigns as camp
from crmhub.contracts import email as mail
from crmhub.contracts import messages as chat
from crmhub.contracts import reporting as rep


@dataclass(frozen=True)
class RpcSpec:
    service: str
    method: str
    request: type[Schema] | None
    response: type[Schema] | None
    description: str


CATALOG: dict[str, RpcSpec] = {f"{s.service}.{s.method}": s for s in (
    RpcSpec("contacts", "search", contacts.ContactQuerySchema, contacts.ContactPageSchema,
            "List or search cards by substring, or find by phone in any format."),
    RpcSpec("contacts", "get", None, contacts.CardSchema,
            "A card with its timeline, by id (a merged id resolves to the surviving card)."),
    RpcSpec("contacts", "get_contact", None, contacts.ContactSchema,
            "A card without its timeline, by id (a merged id resolves to the surviving card): "
            "for callers that need its name, phones or emails."),
    RpcSpec("contacts", "create", contacts.ContactInputSchema, contacts.CardSchema,
            "Create a card; refused with Conflict if a phone or email belongs to another card."),
    RpcSpec("contacts", "update", contacts.ContactPatchSchema, contacts.CardSchema,
            "Change some fields of a card."),
    RpcSpec("contacts", "merge", contacts.MergeSchema, contacts.CardSchema,
            "Merge one card into another."),
    RpcSpec("contacts", "identify_caller", calls.IdentifyCallerSchema, calls.CallerSchema,
            "The card of a calling number as the popup shows it; with create, an unknown "
            "number gets a new card whose source is the call."),
    RpcSpec("contacts", "get_many", contacts.ContactIdsSchema, contacts.ContactListSchema,
            "Many cards (without timeline) by id in one call; merged ids resolve to the "
            "surviving card."),
    RpcSpec("deals", "list_pipelines", None, deals.PipelineListSchema,
            "Every pipeline with its stages and managers."),
    RpcSpec("deals", "get_pipeline", None, deals.PipelineSchema, "A pipeline by id."),
    RpcSpec("deals", "create_pipeline", deals.PipelineInputSchema, deals.PipelineSchema,
            "Create a pipeline from ordered stages; Conflict if the id is taken."),
    RpcSpec("deals", "list_templates", None, deals.TemplateListSchema,
            "The pipeline templates shipped with crmhub."),
    RpcSpec("deals", "load_template", None, deals.TemplateLoadedSchema,
            "Create the pipeline of a template by name; loading it again duplicates nothing."),
    RpcSpec("deals", "set_pipeline_managers", deals.PipelineManagersSchema, deals.PipelineSchema,
            "The managers who receive a pipeline's new leads, in turn."),
    RpcSpec("deals", "list_managers", None, deals.ManagerListSchema, "Every manager."),
    RpcSpec("deals", "put_manager", deals.ManagerInputSchema, deals.ManagerSchema,
            "Create or replace a manager by id."),
    RpcSpec("deals", "search_deals", deals.DealQuerySchema, deals.DealPageSchema,
            "List deals by pipeline, stage, status, manager or client card."),
    RpcSpec("deals", "open_deals", deals.OpenDealsRequestSchema, deals.OpenDealsPageSchema,
            "Every open deal, in id order, a page at a time: what a copy of the deals (the "
            "contacts service's, for the popup) starts from."),
    RpcSpec("deals", "board", deals.BoardQuerySchema, deals.BoardSchema,
            "A pipeline's open deals by stage: count, totals per currency and the first deals "
            "of each column."),
    RpcSpec("deals", "get_deal", None, deals.DealCardSchema,
            "A deal with its stage history and tasks."),
    RpcSpec("deals", "create_deal", deals.DealInputSchema, deals.DealCardSchema,
            "Open a deal for a client card in a pipeline."),
    RpcSpec("deals", "update_deal", deals.DealPatchSchema, deals.DealCardSchema,
            "Change the title, manager, amount or products of a deal."),
    RpcSpec("deals", "move_deal", deals.MoveSchema, deals.DealCardSchema,
            "Move a deal to a stage of its pipeline; recorded in its history."),
    RpcSpec("deals", "search_tasks", deals.TaskQuerySchema, deals.TaskPageSchema,
            "List tasks by manager, state, deal, client card or due time, soonest first."),
    RpcSpec("deals", "get_task", None, deals.TaskSchema, "A task by id."),
    RpcSpec("deals", "create_task", deals.TaskInputSchema, deals.TaskSchema,
            "Set a task for a manager; a reminder fires when it is due."),
    RpcSpec("deals", "update_task", deals.TaskPatchSchema, deals.TaskSchema,
            "Rename, reschedule, reassign a task, or mark it done or undone."),
    RpcSpec("deals", "list_lead_rules", None, deals.LeadRuleListSchema,
            "The lead rules in force: from the config and from the API."),
    RpcSpec("deals", "put_lead_rule", deals.LeadRuleInputSchema, deals.LeadRuleSchema,
            "Create or replace the API lead rule of a connector (and form)."),
    RpcSpec("deals", "orders_for_erp", deals.ErpOrdersQuerySchema, deals.ErpOrderPageSchema,
            "Open deals with product lines changed since 1C last took them, as orders for the "
            "1C exchange (type=sale, mode=query)."),
    RpcSpec("deals", "mark_orders_exported", deals.ErpExportedSchema, deals.ErpExportResultSchema,
            "1C confirmed the orders (mode=success): each is marked at the version sent; a deal "
            "changed meanwhile goes out again."),
    RpcSpec("deals", "apply_erp_order_changes", deals.ErpOrderChangesSchema,
            deals.ErpChangesAppliedSchema,
            "Order states uploaded by 1C: stored on the deals (erp), a mapped status moves the "
            "deal; orders made in 1C are skipped."),
    RpcSpec("telephony", "place_call", calls.PlaceCallSchema, calls.CallSchema,
            "Click-to-call: the PBX rings the manager's extension, then the client; PbxRefused "
            "or PbxUnavailable with the PBX's reason."),
    RpcSpec("telephony", "get_call", None, calls.CallSchema, "A call by id."),
    RpcSpec("telephony", "search_calls", calls.CallQuerySchema, calls.CallPageSchema,
            "The call log, newest first, by card, manager, status or outcome."),
    RpcSpec("telephony", "recording_file", None, calls.RecordingFileSchema,
            "Where a call's stored recording is; NotFound while there is none."),
    RpcSpec("telephony", "list_extensions", None, calls.ExtensionListSchema,
            "Every extension with its manager."),
    RpcSpec("telephony", "put_extension", calls.ExtensionInputSchema, calls.ExtensionSchema,
            "Seat a manager at an extension."),
    RpcSpec("telephony", "delete_extension", None, calls.ExtensionListSchema,
            "Free an extension; returns the extensions left."),
    RpcSpec("contacts", "identify_sender", chat.IdentifySenderSchema, chat.SenderCardSchema,
            "The card of a messenger sender: by phone, else a new card keeping the handle."),
    RpcSpec("messenger", "send_message", chat.SendRequestSchema, chat.MessageSchema,
            "Queue a manager's message to a client's conversation; the same idempotency_key "
            "returns the first message. Delivery follows (message_status_changed)."),
    RpcSpec("messenger", "conversations", chat.ConversationsQuerySchema,
            chat.ConversationListSchema,
            "The conversations of cards (a card and its merged ids), with latest messages."),
    RpcSpec("messenger", "get_message", None, chat.MessageSchema, "A message by id."),
    RpcSpec("catalog", "search_products", catalog.ProductQuerySchema, catalog.ProductPageSchema,
            "Offers with prices and stock: by part of the name, article prefix, or ids."),
    RpcSpec("catalog", "import_file", catalog.ImportRequestSchema, catalog.ImportJobSchema,
            "Import an uploaded exchange file: queued and started on the first call, its job "
            "as it stands on every call."),
    RpcSpec("catalog", "get_import", None, catalog.ImportJobSchema, "An import job by id."),
    RpcSpec("catalog", "list_imports", None, catalog.ImportJobListSchema,
            "Recent import jobs, newest first."),
    RpcSpec("contacts", "segment", camp.ContactSegmentRequestSchema, camp.ContactSegmentPageSchema,
            "A page of the live cards with an email that a campaign segment's card filters "
            "select (tags, source, last activity), in id order."),
    RpcSpec("deals", "segment_contacts", camp.DealSegmentRequestSchema, camp.DealSegmentPageSchema,
            "Card ids with an open deal in a pipeline (and stage), in id order."),
    RpcSpec("email", "set_consent", camp.ConsentRequestSchema, camp.ConsentsSchema,
            "Record a client's consent or its withdrawal on a channel, with time and source."),
    RpcSpec("email", "get_consents", None, camp.ConsentsSchema,
            "A card's consent per channel and its history."),
    RpcSpec("email", "create_campaign", camp.CampaignCreateSchema, camp.CampaignSchema,
            "Create a campaign draft; a template that does not compile is refused."),
    RpcSpec("email", "list_campaigns", None, camp.CampaignListSchema, "Campaigns, newest first."),
    RpcSpec("email", "get_campaign", None, camp.CampaignSchema, "A campaign by id."),
    RpcSpec("email", "preview_campaign", None, camp.CampaignPreviewSchema,
            "Consenting and excluded clients of the segment now, and the first one's email."),
    RpcSpec("email", "send_campaign", None, camp.CampaignSchema,
            "Start sending a draft (again: no change); Conflict once done or cancelled."),
    RpcSpec("email", "cancel_campaign", None, camp.CampaignSchema,
            "Stop queuing a campaign's emails."),
    RpcSpec("email", "campaign_metrics", None, camp.CampaignMetricsSchema,
            "Sent, failed, bounced, opened, clicks per link, unsubscribed and the rates."),
    RpcSpec("email", "send_email", mail.SendEmailSchema, mail.OutgoingEmailSchema,
            "Queue an email to a card's client from a template or subject and body (Jinja2 "
            "with the card's fields); the same idempotency key again returns the first."),
    RpcSpec("email", "get_email", None, mail.OutgoingEmailSchema,
            "An outgoing email and its delivery (status, attempts, last error, bounce)."),
    RpcSpec("email", "list_threads", mail.EmailThreadQuerySchema, mail.EmailThreadListSchema,
            "A client's email threads (by card id and addresses), newest first."),
    RpcSpec("email", "list_templates", None, mail.EmailTemplateListSchema, "Email templates."),
    RpcSpec("email", "get_template", None, mail.EmailTemplateSchema, "An email template by name."),
    RpcSpec("email", "put_template", mail.EmailTemplateInputSchema, mail.EmailTemplateSchema,
            "Create or replace a template; a syntax error is refused naming the part and line."),
    RpcSpec("email", "delete_template", None, mail.EmailTemplateListSchema,
            "Delete a template; returns those left."),
    RpcSpec("email", "sync_mailbox", None, mail.MailboxSyncResultSchema,
            "Sync one configured mailbox now; returns what was fetched and stored."),
    RpcSpec("email", "list_mailboxes", None, mail.MailboxListSchema,
            "Each mailbox's sync state: UIDVALIDITY, last UID, messages, last error."),
    RpcSpec("reporting", "list_reports", None, rep.ReportListSchema,
            "The reports there are: name, title, description."),
    RpcSpec("reporting", "report", rep.ReportFiltersSchema, rep.ReportSchema,
            "One report by name under the filters, from the reporting read models."),
    RpcSpec("reporting", "put_plan", rep.PlanInputSchema, rep.PlanSchema,
            "Set a manager's plan for a month (replaces the one set before)."),
    RpcSpec("reporting", "list_plans", None, rep.PlanListSchema, "The managers' plans of a month."),
    RpcSpec("reporting", "put_ad_spend", rep.AdSpendInputSchema, rep.AdSpendSchema,
            "Enter ad spend for a source (and medium, campaign) over a period."),
    RpcSpec("reporting", "list_ad_spend", None, rep.AdSpendListSchema, "The ad spend entered."),
)}
