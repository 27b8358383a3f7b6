"""telephony: the call log folded from PBX signals, extensions and their managers,
click-to-call and call recordings."""
import structlog
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from crmhub.contracts import calls as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import (
    CrmhubError,
    InvalidInput,
    NotFound,
    PbxRefused,
    PbxUnavailable,
    PermanentError,
)
from crmhub.plugins.api import CallRequest, PbxError
from crmhub.runtime.db import Database
from crmhub.runtime.handlers import batch_handler, reliable_handler
from crmhub.runtime.logs import LogContext
from crmhub.runtime.metrics import RECORDINGS_STORED
from crmhub.runtime.rpc import RpcProxy
from crmhub.runtime.service import region
from crmhub.runtime.timer import timer
from crmhub.services.telephony import folding, logic
from crmhub.services.telephony.dependencies import Pbx, Recordings, Seating
from crmhub.services.telephony.fetch import FetchRefused
from crmhub.services.telephony.models import metadata

EXPECTED = (CrmhubError,)
log = structlog.get_logger(__name__)


def _dump(schema_cls, value):
    return instance(schema_cls).dump(value)


class TelephonyService:
    name = "telephony"

    config = Config()
    db = Database(metadata)
    contacts = RpcProxy("contacts")
    pbx = Pbx()
    recordings = Recordings()
    seating = Seating()
    log_ctx = LogContext()

    @property
    def _settings(self) -> dict:
        return self.config.get("TELEPHONY") or {}

    # -- signals from the PBX connectors ---------------------------------------------------------
    # A batch per worker; the cards of the batch's callers are asked for at once. Six batches
    # run at a time: a batch mostly waits (on the contacts service, on PostgreSQL),
    # and with two a ringing signal often queued behind both. Under a backlog a call's answer
    # may so be folded before its ringing: the popup of a call answered meanwhile is rightly
    # not shown. A worker and a transaction per signal held a whole mesh to about 120
    # signals/s on this machine.
    @batch_handler("gateway", ev.CALL_SIGNAL, max_batch=100, max_inflight=6)
    def on_call_signals(self, deliveries):
        schema = instance(schemas.CallSignalSchema)
        batch = [(schema.load(d.payload), d.request_id) for d in deliveries]
        # A duplicate needs no card lookup: what its original did shows in its call's row
        # (``logic.caller_need``); the inbox claim below keeps it from being folded twice.
        with self.db.connect() as conn:
            rows = logic.find_calls(conn, [(s["provider"], s["call_key"]) for s, _ in batch])
        ext_managers = logic.managers_of(
            self.seating.seats(self.db),
            {s.get("extension") for s, _ in batch} | {r.extension for r in rows.values()})
        # A ringing extension waits for no answer, hang-up or card link of other calls: the
        # batch's popups are folded and committed first, then the rest in arrival order, each
        # part in one transaction. A number is looked up once for both (the first lookup may
        # create the card: asked again, a new caller would show as known).
        looked_up: dict[str, dict] = {}
        popups, rest = logic.popups_first(batch, rows)
        existing = frozenset(rows)
        for part in (popups, rest):
            if not part:
                continue
            callers = self._callers([(s, rows.get((s["provider"], s["call_key"])))
                                     for s, _ in part], looked_up)
            with self.db.transaction(publish_now=part is popups) as tx:
                fresh = tx.claim_many([logic.signal_key(s) for s, _ in part])
                items = []
                for (signal, request_id), caller in zip(part, callers):
                    if logic.signal_key(signal) in fresh:
                        fresh.discard(logic.signal_key(signal))  # twice in one batch: once
                        items.append(folding.Item(signal, caller, request_id))
                folding.fold_signals(tx, items, region=region(self.config),
                                     ext_managers=ext_managers, existing=existing)

    def _callers(self, pairs, looked_up: dict) -> list[dict | None]:
        """For each (signal, its call's row before the batch): the client's card summary when
        the fold needs it (see ``logic.caller_need``), one contacts call per number, all in
        flight at once; a ringing number's card comes with its open deals. ``looked_up``
        (number: card) holds what was found earlier in the batch and takes what is found
        now: it is not asked again."""
        needs = [logic.caller_need(signal, row) for signal, row in pairs]
        numbers = [signal.get("client_number") or (row.client_number_raw if row else None)
                   for signal, row in pairs]
        ringing = {number for number, need in zip(numbers, needs) if need == "popup"}
        create = self._settings.get("create_cards", True) is not False
        asked: dict[str, object] = {}
        for (signal, row), number, need in zip(pairs, numbers, needs):
            if need and number not in asked and number not in looked_up:
                asked[number] = self.contacts.identify_caller.call_async({
                    "number": number, "create": create, "provider": signal["provider"],
                    "line": signal.get("line"), "call_id": row.id if row else None,
                    "summary": number in ringing})
        # The popups' part comes first, so a number looked up before was looked up whole.
        looked_up.update({number: instance(schemas.CallerSchema).load(reply.result())
                          for number, reply in asked.items()})
        callers = []
        for (signal, row), number, need in zip(pairs, numbers, needs):
            caller = dict(looked_up[number]) if need else None
            if caller is not None and row is not None and row.caller_known is not None:
                caller["known"] = row.caller_known
            callers.append(caller)
        return callers

    # -- recordings ----------------------------------------------------------------------------
    @reliable_handler("telephony", ev.RECORDING_FOUND)
    def on_recording_found(self, payload):
        """Download the recording through its connector into the store, then announce it. A
        vendor that is down is retried with backoff, then parked with the call kept; a refused
        address or a vendor that has no such recording is parked at once."""
        event = instance(schemas.RecordingFoundSchema).load(payload)
        call = event["call"]
        key = f"recording:{call['id']}:{event['recording_ref']}"
        with self.db.connect() as conn:
            if logic.handled_keys(conn, [key]):
                return
        policy = {"max_bytes": int(self.config.get("RECORDING_MAX_BYTES") or 200 * 2**20),
                  "timeout": float(self.config.get("RECORDING_FETCH_TIMEOUT") or 120)}
        try:
            stored = self.pbx.fetch_recording(call["provider"], event["recording_ref"],
                                              self.recordings, logic.recording_key(call["id"]),
                                              policy)
        except (FetchRefused, PbxError) as exc:
            if isinstance(exc, PbxError) and exc.unavailable:
                raise  # the vendor's API is down: retried with backoff like any outage
            raise PermanentError(f"recording of call {call['id']}: {exc}") from exc
        with self.db.transaction() as tx:
            if tx.claim(key):
                logic.attach_recording(tx, call["id"], stored)
        RECORDINGS_STORED.labels(call["provider"]).inc()

    # -- click-to-call ---------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def place_call(self, request, actor=None):
        """Ring the manager's extension, then the client; returns the call (status dialing).
        A PBX that refuses or is down: PbxRefused / PbxUnavailable, and the call is closed as
        failed rather than left dialing."""
        request = load_input(schemas.PlaceCallSchema, request)
        extension, provider, manager = self._extension(self.seating.seats(self.db), request,
                                                       actor)
        number, contact_id = self._callee(request)
        connector = self.pbx.connector(request["provider"] or provider)
        with self.db.autocommit() as conn:  # one INSERT, no event: no transaction around it
            call = logic.open_dialing(
                conn, provider=connector.name, extension=extension, manager=manager,
                client_e164=number, contact_id=contact_id, requested_by=actor,
                line=request["line"])
        try:
            self.pbx.place_call(connector.name, CallRequest(
                command_id=call["id"], extension=extension, number=number, line=request["line"]))
        except PbxError as exc:
            with self.db.autocommit() as conn:
                logic.fail_dialing(conn, call["id"], exc.message)
            raise (PbxUnavailable if exc.unavailable else PbxRefused)(exc.message) from None
        return _dump(schemas.CallSchema, call)

    def _extension(self, seats, request: dict, actor: str | None) -> tuple[str, str | None, str]:
        """(extension, its provider, its manager) for a click-to-call."""
        if request["extension"]:
            seated = logic.seat(seats, extension=request["extension"]) or {}
            return (request["extension"], seated.get("provider"),
                    seated.get("manager") or request["manager"] or actor)
        manager = request["manager"] or actor
        mapped = logic.seat(seats, manager=manager) if manager else None
        if mapped is None:
            who = f"manager {manager!r} has" if request["manager"] else "you have"
            raise InvalidInput(f"extension: {who} no extension; give one, or map it with "
                               "PUT /api/v1/extensions/<extension>",
                               {"extension": ["no extension for this manager"]})
        return mapped["extension"], mapped["provider"], manager

    def _callee(self, request: dict) -> tuple[str, str | None]:
        """(the client's E.164 number, their card id) for a click-to-call."""
        contact_id = None
        if request["contact_id"]:
            try:  # the card without its timeline: a click-to-call needs its phones only
                card = self.contacts.get_contact(request["contact_id"])
            except NotFound:
                raise InvalidInput(f"contact_id: no client card {request['contact_id']!r}",
                                   {"contact_id": ["no such card"]}) from None
            contact_id = card["id"]
            if not request["number"]:
                phones = [p["e164"] for p in card["phones"] if p.get("e164")]
                if not phones:
                    raise InvalidInput("number: the card has no phone number to call",
                                       {"number": ["the card has no valid phone"]})
                return phones[0], contact_id
        return logic.client_number(request["number"], region(self.config)), contact_id

    @timer("UNREPORTED_CALLS_CHECK_SECONDS", default=30.0)
    def close_unreported_calls(self):
        with self.db.transaction() as tx:
            logic.close_unreported_calls(tx)

    # -- the call log ----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def get_call(self, call_id):
        with self.db.connect() as conn:
            return _dump(schemas.CallSchema, logic.load_call(conn, str(call_id)))

    @rpc(expected_exceptions=EXPECTED)
    def search_calls(self, query=None):
        params = load_input(schemas.CallQuerySchema, query)
        with self.db.connect() as conn:
            return _dump(schemas.CallPageSchema, logic.search_calls(conn, **params))

    @rpc(expected_exceptions=EXPECTED)
    def recording_file(self, call_id):
        with self.db.connect() as conn:
            return _dump(schemas.RecordingFileSchema, logic.recording_file(conn, str(call_id)))

    # -- extensions ------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_extensions(self):
        with self.db.connect() as conn:
            return _dump(schemas.ExtensionListSchema, {"items": logic.list_extensions(conn)})

    @rpc(expected_exceptions=EXPECTED)
    def put_extension(self, extension, data):
        data = load_input(schemas.ExtensionInputSchema, data)
        extension = str(extension)
        if not extension.strip() or len(extension) > 50:
            raise InvalidInput("extension: 1 to 50 characters", {"extension": ["bad length"]})
        with self.db.transaction() as tx:
            seat = logic.put_extension(tx, extension, data)
        self.seating.changed()
        return _dump(schemas.ExtensionSchema, seat)

    @rpc(expected_exceptions=EXPECTED)
    def delete_extension(self, extension):
        with self.db.transaction() as tx:
            logic.delete_extension(tx, str(extension))
        self.seating.changed()
        return self.list_extensions()
