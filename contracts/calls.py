"""Calls: what a PBX connector reports (``call_signal``), the canonical call the telephony
service keeps, its events, and the telephony service's RPC payloads.

A connector reports each vendor event as one ``call_signal``; the telephony service folds the
signals of one provider call key into one call. Signals arrive duplicated and out of order:
the call never goes back from answered to ringing, nor from finished to anything else.
"""
from marshmallow import ValidationError, validate, validates_schema
from marshmallow import fields as mf

from crmhub.contracts.base import Contract, EventSchema

DIRECTIONS = ("inbound", "outbound", "internal")
# answered: the parties talked; missed: nobody picked up (also a caller who gave up);
# busy: the callee was busy or rejected; failed: the network or the number failed;
# voicemail: the caller left a message.
OUTCOMES = ("answered", "missed", "busy", "failed", "voicemail")
STATUSES = ("dialing", "ringing", "answered", "finished")
# What a signal says about its call:
#   ringing   a party's phone rings (an extension for an incoming call, the client for an
#             outgoing one); several extensions may ring in turn or at once;
#   answered  a party picked up;
#   leg_ended one leg hung up while the call goes on (a transfer, a queue member);
#   finished  the call as a whole ended: carries its outcome and, where the vendor has them,
#             its times (a vendor's summary or CDR is ``final`` and corrects earlier guesses);
#   recording a recording of the call can be fetched by ``recording_ref``.
SIGNAL_KINDS = ("ringing", "answered", "leg_ended", "finished", "recording")
KEY = validate.Length(min=1, max=200)


class CallSignalSchema(EventSchema):
    """One vendor event about a call, normalized by its connector."""

    idempotency_key = mf.String(required=True, validate=validate.Length(min=3, max=300), metadata={
        "description": "'<provider>:<vendor event id>'; the same webhook delivered twice "
                       "carries the same key"})
    provider = mf.String(required=True, validate=KEY, metadata={
        "description": "Name of the connector (mango, zadarma, asterisk, ...)"})
    call_key = mf.String(required=True, validate=KEY, metadata={
        "description": "The vendor's id of the whole call, constant across transfers "
                       "(Mango entry_id, Zadarma pbx_call_id, Asterisk Linkedid)"})
    leg_id = mf.String(allow_none=True, load_default=None, validate=KEY, metadata={
        "description": "The vendor's id of one leg (Mango call_id, Asterisk Uniqueid)"})
    sequence = mf.Integer(allow_none=True, load_default=None, metadata={
        "description": "The vendor's order of events (Mango seq); a lower one than already "
                       "seen for the same leg and kind is stale"})
    kind = mf.String(required=True, validate=validate.OneOf(SIGNAL_KINDS))
    final = mf.Boolean(load_default=False, metadata={
        "description": "finished only: the vendor's summary or CDR, authoritative for times "
                       "and outcome"})
    direction = mf.String(allow_none=True, load_default=None, validate=validate.OneOf(DIRECTIONS))
    client_number = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=200),
                              metadata={"description": "The client's number as the vendor sent it"})
    line = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=200),
                     metadata={"description": "Our number (DID) the call came in on or went out by"})
    extension = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=100),
                          metadata={"description": "The extension that rings, answers or hangs up"})
    at = mf.AwareDateTime(required=True, metadata={"description": "When it happened (vendor time)"})
    started_at = mf.AwareDateTime(allow_none=True, load_default=None)
    answered_at = mf.AwareDateTime(allow_none=True, load_default=None)
    ended_at = mf.AwareDateTime(allow_none=True, load_default=None)
    duration_s = mf.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0),
                            metadata={"description": "finished: talk time in seconds, for vendors "
                                                     "that give it instead of an answer time"})
    outcome = mf.String(allow_none=True, load_default=None, validate=validate.OneOf(OUTCOMES))
    cause = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=300),
                      metadata={"description": "The vendor's reason, e.g. '1121 busy'"})
    recording_ref = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=500),
                              metadata={"description": "What the connector needs to fetch the "
                                                       "recording (a vendor id, not a URL to trust)"})
    command_id = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=200),
                           metadata={"description": "Echo of a click-to-call command of ours"})
    details = mf.Dict(keys=mf.String(), load_default=dict, metadata={
        "description": "Vendor fields kept for reference (strings, numbers)"})

    @validates_schema
    def _complete(self, data, **_):
        if data.get("kind") == "finished" and not data.get("outcome"):
            raise ValidationError("a finished call needs its outcome", "outcome")
        if data.get("kind") == "recording" and not data.get("recording_ref"):
            raise ValidationError("a recording signal needs recording_ref", "recording_ref")


class LegSchema(Contract):
    leg_id = mf.String(required=True)
    extension = mf.String(allow_none=True)
    state = mf.String(required=True, validate=validate.OneOf(("ringing", "answered", "ended")))
    sequence = mf.Integer(allow_none=True)
    at = mf.AwareDateTime(required=True)


class RecordingSchema(Contract):
    ref = mf.String(required=True, metadata={"description": "The vendor's recording reference"})
    stored = mf.Boolean(required=True, metadata={"description": "Fetched and playable"})
    content_type = mf.String(allow_none=True)
    size = mf.Integer(allow_none=True)
    url = mf.String(allow_none=True, metadata={
        "description": "Where an authorized client plays it (with HTTP Range)"})


class CallSchema(Contract):
    """The canonical call: one per provider call key."""

    id = mf.String(required=True)
    provider = mf.String(required=True)
    call_key = mf.String(allow_none=True, metadata={
        "description": "Null while a click-to-call waits for the PBX's first event"})
    direction = mf.String(allow_none=True, validate=validate.OneOf(DIRECTIONS))
    status = mf.String(required=True, validate=validate.OneOf(STATUSES))
    outcome = mf.String(allow_none=True, validate=validate.OneOf(OUTCOMES))
    cause = mf.String(allow_none=True)
    client_number = mf.String(allow_none=True, metadata={"description": "E.164, null if not a "
                                                                        "phone number"})
    client_number_raw = mf.String(allow_none=True)
    line = mf.String(allow_none=True)
    extension = mf.String(allow_none=True, metadata={
        "description": "The extension that answered (or last rang)"})
    manager = mf.String(allow_none=True, metadata={"description": "Manager of that extension"})
    contact_id = mf.String(allow_none=True)
    created_at = mf.AwareDateTime(required=True)
    answered_at = mf.AwareDateTime(allow_none=True)
    ended_at = mf.AwareDateTime(allow_none=True)
    duration_s = mf.Integer(allow_none=True, metadata={"description": "Talk time in seconds"})
    legs = mf.List(mf.Nested(LegSchema), load_default=list)
    recording = mf.Nested(RecordingSchema, allow_none=True)
    command_id = mf.String(allow_none=True)
    requested_by = mf.String(allow_none=True, metadata={
        "description": "Who asked for it by click-to-call"})
    updated_at = mf.AwareDateTime(required=True)


class DealBriefSchema(Contract):
    id = mf.String(required=True)
    title = mf.String(required=True)
    pipeline_name = mf.String(allow_none=True)
    stage_name = mf.String(allow_none=True)
    amount = mf.String(allow_none=True)
    currency = mf.String(allow_none=True)
    manager = mf.String(allow_none=True)


class InteractionSchema(Contract):
    kind = mf.String(required=True)
    title = mf.String(required=True)
    occurred_at = mf.AwareDateTime(required=True)


class CallerSchema(Contract):
    """Who is calling, as the incoming-call popup shows it."""

    contact_id = mf.String(allow_none=True, metadata={"description": "Null: no card"})
    known = mf.Boolean(required=True, metadata={
        "description": "The card existed before this call (false: unknown number)"})
    name = mf.String(allow_none=True)
    company = mf.String(allow_none=True)
    manager = mf.String(allow_none=True)
    number = mf.String(allow_none=True)
    open_deals = mf.List(mf.Nested(DealBriefSchema), load_default=list)
    last_interactions = mf.List(mf.Nested(InteractionSchema), load_default=list)


class CallEventSchema(EventSchema):
    """call_answered, call_finished, call_missed, recording_ready."""

    call = mf.Nested(CallSchema, required=True)


class RecordingFoundSchema(CallEventSchema):
    """recording_found: the PBX announced a call's recording; telephony fetches it."""

    recording_ref = mf.String(required=True, validate=validate.Length(min=1, max=500), metadata={
        "description": "The vendor's reference the connector fetches it by"})


class CallRingingSchema(CallEventSchema):
    extensions = mf.List(mf.String(), required=True, metadata={
        "description": "Extensions ringing now"})
    managers = mf.List(mf.String(), required=True, metadata={
        "description": "Their managers: whose browsers show the popup"})
    caller = mf.Nested(CallerSchema, required=True)


# -- RPC ---------------------------------------------------------------------------------------

class PlaceCallSchema(Contract):
    """Click-to-call: the PBX rings the manager's extension, then the client."""

    contact_id = mf.String(allow_none=True, load_default=None)
    number = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=64),
                       metadata={"description": "The client's number in any format; without "
                                                "it, the card's first phone"})
    extension = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=50))
    manager = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=100),
                        metadata={"description": "Whose extension rings; default: the caller's own"})
    line = mf.String(allow_none=True, load_default=None, validate=validate.Length(max=64),
                     metadata={"description": "Our number the client sees"})
    provider = mf.String(allow_none=True, load_default=None, metadata={
        "description": "Connector to use; default: the extension's"})

    @validates_schema
    def _target(self, data, **_):
        if not data.get("contact_id") and not data.get("number"):
            raise ValidationError("give contact_id or number", "number")


class CallQuerySchema(Contract):
    contact_id = mf.String(allow_none=True, load_default=None)
    manager = mf.String(allow_none=True, load_default=None)
    status = mf.String(allow_none=True, load_default=None, validate=validate.OneOf(STATUSES))
    outcome = mf.String(allow_none=True, load_default=None, validate=validate.OneOf(OUTCOMES))
    limit = mf.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = mf.Integer(load_default=0, validate=validate.Range(min=0))


class CallPageSchema(Contract):
    items = mf.List(mf.Nested(CallSchema), required=True)
    total = mf.Integer(required=True)
    limit = mf.Integer(required=True)
    offset = mf.Integer(required=True)


class ExtensionInputSchema(Contract):
    manager = mf.String(required=True, validate=validate.Length(min=1, max=100))
    provider = mf.String(allow_none=True, load_default=None, metadata={
        "description": "The connector this extension belongs to"})


class ExtensionSchema(ExtensionInputSchema):
    extension = mf.String(required=True)


class ExtensionListSchema(Contract):
    items = mf.List(mf.Nested(ExtensionSchema), required=True)


class RecordingFileSchema(Contract):
    """Where the gateway reads a stored recording (the store is shared, see RECORDINGS_DIR)."""

    call_id = mf.String(required=True)
    key = mf.String(required=True)
    content_type = mf.String(required=True)
    size = mf.Integer(required=True)


class IdentifyCallerSchema(Contract):
    """contacts.identify_caller: the card of a calling number, created if asked."""

    number = mf.String(required=True, validate=validate.Length(min=1, max=200))
    create = mf.Boolean(load_default=False, metadata={
        "description": "Create a card for an unknown, valid number"})
    provider = mf.String(allow_none=True, load_default=None)
    line = mf.String(allow_none=True, load_default=None, metadata={
        "description": "Kept as the new card's source form: lead rules can tell lines apart"})
    call_id = mf.String(allow_none=True, load_default=None)
    summary = mf.Boolean(load_default=True, metadata={
        "description": "false: only contact_id and known (linking a call to its card), "
                       "without name, manager and last interactions"})
