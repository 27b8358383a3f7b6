"""Base schemas: strict contracts and the event envelope."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import threading

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing, validate

from crmhub.contracts.errors import InvalidInput


class Contract(Schema):
    """Internal contracts refuse unknown fields.

    A load takes a short path first: each field deserialized in turn, with none of the error
    bookkeeping marshmallow does per field (a closure, a try block and a nested-key setter
    for each of the 50-odd fields of a deal event: 40 % of its load). At the first error, an
    unknown key or anything unusual (``many``, ``partial``, input that is not a plain dict),
    marshmallow's own path runs from the start, so the errors are exactly its own. The
    hooks (``@validates``, ``@validates_schema``, ``@post_load``) run as always: only
    ``_deserialize`` is shortened. A dump of a plain dict likewise hands each value present
    straight to its field's formatting (a third off a form event's dump)."""

    class Meta:
        unknown = RAISE

    def _deserialize(self, data, *, error_store, many=False, partial=None, unknown=RAISE,
                     index=None):
        plan = self.__dict__.get("_load_plan") or self._make_load_plan()
        if (not many and (partial is None or partial is False) and type(data) is dict
                and plan.fields is not None and unknown in (RAISE, EXCLUDE)
                and (unknown == EXCLUDE or data.keys() <= plan.keys)):
            kwargs = {} if partial is None else {"partial": partial}
            loaded = self.dict_class()
            try:
                for key, data_key, deserialize in plan.fields:
                    value = deserialize(data.get(data_key, missing), data_key, data, **kwargs)
                    if value is not missing:
                        loaded[key] = value
            except ValidationError:
                pass
            else:
                return loaded
        return super()._deserialize(data, error_store=error_store, many=many, partial=partial,
                                    unknown=unknown, index=index)

    def _make_load_plan(self) -> "_LoadPlan":
        steps, keys = [], set()
        for name, field in self.load_fields.items():
            data_key = field.data_key if field.data_key is not None else name
            key = field.attribute or name
            keys.add(data_key)
            steps.append((key, data_key, field.deserialize))
        # A dotted attribute is set as a nested key by marshmallow: left to its own path.
        dotted = any("." in key for key, _, _ in steps)
        plan = _LoadPlan(None if dotted else tuple(steps), frozenset(keys))
        self.__dict__["_load_plan"] = plan
        return plan

    def _serialize(self, obj, *, many=False):
        # Past Field.serialize, get_value and get_attribute, which for a key that is there
        # come to obj[key]. A missing key (dump_default), and a field that reads its value
        # its own way, take marshmallow's path for that field.
        if many or type(obj) is not dict:
            return super()._serialize(obj, many=many)
        dumped = self.dict_class()
        for name, source, key, field, format_value in (self.__dict__.get("_dump_plan")
                                                       or self._make_dump_plan()):
            if format_value is not None and source in obj:
                dumped[key] = format_value(obj[source], name, obj)
            else:
                value = field.serialize(name, obj, accessor=self.get_attribute)
                if value is not missing:
                    dumped[key] = value
        return dumped

    def _make_dump_plan(self) -> tuple:
        """(name, source key, output key, field, its _serialize or None) per dumped field.
        A dotted source needs no care: ``get_attribute`` reads a dict's key whole too."""
        steps = []
        for name, field in self.dump_fields.items():
            source = field.attribute if field.attribute is not None else name
            key = field.data_key if field.data_key is not None else name
            plain = (field._CHECK_ATTRIBUTE and type(field).serialize is fields.Field.serialize
                     and type(field).get_value is fields.Field.get_value)
            steps.append((name, source, key, field, field._serialize if plain else None))
        self.__dict__["_dump_plan"] = plan = tuple(steps)
        return plan

    def get_attribute(self, obj, attr, default):
        # A dict without a key named like a dict method ("items") would hand that method to
        # the field.
        if isinstance(obj, dict):
            return obj.get(attr, default)
        return super().get_attribute(obj, attr, default)


@dataclasses.dataclass(frozen=True)
class _LoadPlan:
    fields: tuple | None  # (result key, data key, the field's deserialize) in field order
    keys: frozenset       # the data keys a load knows


class EventSchema(Contract):
    """Fields every event carries. Consumers dedupe on ``event_id``."""

    event_id = fields.String(required=True, validate=validate.Length(min=8, max=64),
                             metadata={"description": "Unique id of this event"})
    schema_version = fields.Integer(load_default=1, dump_default=1,
                                    metadata={"description": "Version of the event's schema"})
    occurred_at = fields.AwareDateTime(required=True,
                                       metadata={"description": "When it happened (UTC)"})


@functools.cache
def instance(schema: type[Schema]) -> Schema:
    """One shared instance per schema class: building one (nested fields are deep-copied)
    costs far more than a dump or load, and instances hold no per-call state."""
    return schema()


def load_input(schema: type[Schema], payload) -> dict:
    """Load an RPC argument; a payload that breaks its contract is ``InvalidInput`` (a 400
    at the gateway) naming the fields at fault."""
    try:
        return instance(schema).load(payload or {})
    except ValidationError as exc:
        raise InvalidInput("invalid input", exc.messages) from None


class _RandomHex:
    """Ids cut from kernel randomness fetched 256 ids at a time: ``uuid4`` makes a system call
    for every id (2 us; a busy service makes several per message), a slice of the pool costs
    0.45 us, and the ids stay as unguessable as ``uuid4``'s (an email's id travels in its
    Message-ID, which a bounce is matched by). A forked child starts a pool of its own."""

    ID_CHARS = 32
    POOL_BYTES = 4096

    def __init__(self):
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self._pool, self._at = "", 0

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._pool):
                self._pool, self._at = os.urandom(self.POOL_BYTES).hex(), 0
            at = self._at
            self._at += self.ID_CHARS
            return self._pool[at:at + self.ID_CHARS]


# new_hex_id() -> 32 random hex characters: a new id (an event's, a message's, a row's).
new_hex_id = _RandomHex()


def new_event(schema: type[EventSchema], **body) -> dict:
    """Build and dump an event of ``schema`` with a fresh id and timestamp."""
    body.setdefault("event_id", new_hex_id())
    body.setdefault("occurred_at", dt.datetime.now(dt.timezone.utc))
    return instance(schema).dump(body)
