"""The envelope every event travels in, and its stable JSON form."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StrictInt,
    TypeAdapter,
    create_model,
    field_validator,
)
from pydantic_core import SchemaSerializer, core_schema, from_json

from conveyor_events._base import Event, UnknownEvent, event_class, event_classes, registrations, upcast

_NAMESPACE = uuid.UUID("6f1c2d0e-8a57-4b1e-9a53-3c0f6f0b7c11")


_NAMESPACE_BYTES = _NAMESPACE.bytes
_TIMESTAMP = SchemaSerializer(core_schema.datetime_schema())
"""Writes a UTC time stamp as `datetime.isoformat` does, but with `Z` for `+00:00`, in a third of the time (the
log writes one per event)."""
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
"""The setters of a model's slots (`__dict__` one of them), called directly: cheaper than `object.__setattr__`."""


def deterministic_id(*parts: object) -> str:
    """A UUID that is the same whenever the same parts are given: redelivery lands on the same id.

    It is `uuid.uuid5(_NAMESPACE, <parts joined by U+001F>)`, computed without building `UUID` objects (a
    decision's id is computed for every decision the scheduler makes).
    """
    name = "\x1f".join(str(part) for part in parts)
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_traceparent() -> str:
    """A fresh W3C `traceparent` (version 00, sampled)."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_traceparent(parent: str | None) -> str:
    """A `traceparent` in the same trace as `parent` with a new span id; a fresh trace when there is none."""
    parts = (parent or "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return new_traceparent()
    return f"{parts[0]}-{parts[1]}-{os.urandom(8).hex()}-{parts[3]}"


class Envelope(BaseModel):
    """An event with where it sits in the log and where it came from.

    `sequence` (per stream, from 1) and `position` (global, from 1) are 0 until the log assigns them.
    `correlation_id` ties together everything one trigger caused; `causation_id` names the event that caused
    this one. `traceparent`/`tracestate` carry the W3C trace context of the run.
    """

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str
    schema_version: int
    stream: str
    sequence: int = 0
    position: int = 0
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    event: SerializeAsAny[Event]

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        stream: str,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        cause: Envelope | None = None,
        correlation_id: str | None = None,
        traceparent: str | None = None,
    ) -> Envelope:
        """Put `event` in a new envelope; with `cause`, inherit its correlation and trace."""
        if occurred_at is not None and occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        # Built without validation (every field given, each valid by construction): every event every service
        # decides is wrapped here.
        fields = {
            "event_id": event_id or str(uuid.uuid4()),
            "type": event.event_type(),
            "schema_version": type(event).schema_version,
            "stream": stream,
            "sequence": 0,
            "position": 0,
            "occurred_at": (occurred_at or datetime.now(UTC)).astimezone(UTC),
            "correlation_id": correlation_id or (cause.correlation_id if cause else None) or stream,
            "causation_id": cause.event_id if cause else None,
            "traceparent": traceparent or child_traceparent(cause.traceparent if cause else None),
            "tracestate": cause.tracestate if cause else None,
            "event": event,
        }
        return _unvalidated(cls, fields, set(fields))

    def placed(self, sequence: int, position: int) -> Envelope:
        """This envelope as the log stored it: at `sequence` in its stream and `position` in the log."""
        # A shallow copy without validation: the log places many envelopes per commit and they are valid.
        fields = self.__dict__.copy()
        fields["sequence"] = sequence
        fields["position"] = position
        return _unvalidated(Envelope, fields, self.__pydantic_fields_set__)

    def occurred_at_text(self) -> str:
        """`occurred_at` in ISO 8601 with a `Z`."""
        return timestamp_text(self.occurred_at)

    def metadata(self) -> dict[str, Any]:
        """Everything but the event's data, as JSON-ready values."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "schema_version": self.schema_version,
            "stream": self.stream,
            "sequence": self.sequence,
            "position": self.position,
            "occurred_at": self.occurred_at_text(),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "traceparent": self.traceparent,
            "tracestate": self.tracestate,
        }

    def data_json(self) -> str:
        """The event's own fields as compact JSON (unknown fields included)."""
        return event_json(self.event)

    def to_json(self) -> str:
        """The stable JSON form: the metadata keys in a fixed order, then `data`."""
        return self.json_bytes().decode()

    def json_bytes(self) -> bytes:
        """`to_json` in UTF-8: what the log writes, an event at a time."""
        fields = self.__dict__
        if fields["occurred_at"].tzinfo is UTC and _plain(fields):
            return _FORM.to_json(fields, by_alias=True)
        head = json.dumps(self.metadata(), separators=(",", ":"))
        return f'{head[:-1]},"data":{self.data_json()}}}'.encode()


_TEXTS = ("event_id", "type", "stream", "correlation_id", "causation_id", "traceparent", "tracestate")
_NULLABLE = core_schema.nullable_schema(core_schema.str_schema())
_FORM = SchemaSerializer(
    core_schema.typed_dict_schema(
        {
            "event_id": core_schema.typed_dict_field(core_schema.str_schema()),
            "type": core_schema.typed_dict_field(core_schema.str_schema()),
            "schema_version": core_schema.typed_dict_field(core_schema.int_schema()),
            "stream": core_schema.typed_dict_field(core_schema.str_schema()),
            "sequence": core_schema.typed_dict_field(core_schema.int_schema()),
            "position": core_schema.typed_dict_field(core_schema.int_schema()),
            "occurred_at": core_schema.typed_dict_field(core_schema.datetime_schema()),
            "correlation_id": core_schema.typed_dict_field(core_schema.str_schema()),
            "causation_id": core_schema.typed_dict_field(_NULLABLE),
            "traceparent": core_schema.typed_dict_field(_NULLABLE),
            "tracestate": core_schema.typed_dict_field(_NULLABLE),
            # The event, by its own serializer.
            "event": core_schema.typed_dict_field(core_schema.any_schema(), serialization_alias="data"),
        }
    )
)
"""Writes an envelope's JSON form in one pass, in half the time of writing its metadata with `json.dumps` and its
data apart: the same text whenever the metadata's texts are what `_plain` says (the time stamp as `timestamp_text`
writes a UTC one, the event as `event_json`)."""


def _plain(fields: dict[str, Any]) -> bool:
    """Whether the metadata's texts are written alike by `json.dumps` and `_FORM`: it escapes what is not ASCII,
    and DEL; `_FORM` writes those as they are."""
    text = "".join([fields[name] or "" for name in _TEXTS])
    return text.isascii() and "\x7f" not in text


def _unvalidated(cls: type[Envelope], fields: dict[str, Any], fields_set: set[str]) -> Envelope:
    """An envelope of `fields` as they are, as `model_construct` builds one but without its per-field work."""
    envelope = _new(cls)
    _set_dict(envelope, fields)
    _set_fields_set(envelope, fields_set)
    _set_extra(envelope, None)
    _set_private(envelope, None)
    return envelope


def timestamp_text(value: datetime) -> str:
    """A time stamp in ISO 8601, with a `Z` for UTC: `Envelope.occurred_at_text`."""
    if value.tzinfo is UTC:  # as in every envelope: `wrap` and the validator convert to UTC
        text: str = _TIMESTAMP.to_python(value, mode="json")
        return text
    return value.isoformat().replace("+00:00", "Z")


def event_json(event: Event) -> str:
    """An event's own fields as compact JSON (unknown fields included): `Envelope.data_json`."""
    # What `model_dump_json()` does, without passing each of its default arguments on.
    return event.__pydantic_serializer__.to_json(event).decode()


def decode_event(event_type: str, schema_version: int, data: dict[str, Any]) -> tuple[int, Event]:
    """Build the event object for stored data: upcast older versions, keep unknown types and fields."""
    cls = event_class(event_type)
    if cls is None:
        return schema_version, UnknownEvent.model_validate(data)
    version, data = upcast(event_type, schema_version, data)
    return max(version, schema_version), cls.model_validate(data)


def json_value(text: str | bytes) -> Any:
    """The value of a JSON text, as `json.loads` reads it, in less than half its time (pydantic's parser).

    A text that parser refuses is read by `json.loads`, whose value or error is the answer: JSON's grammar allows an
    escaped lone surrogate (`"\\ud800"`), which only `json.loads` reads, a `str` may hold a raw one, and
    `json.loads`'s errors name what is wrong as Python's own messages do.
    """
    try:
        return from_json(text)
    except (ValueError, TypeError):
        return json.loads(text)


def envelope_from_dict(document: dict[str, Any]) -> Envelope:
    """Read an envelope from its JSON form (as a dict)."""
    version, event = decode_event(document["type"], int(document["schema_version"]), document["data"])
    fields = {key: value for key, value in document.items() if key != "data"}
    fields["schema_version"] = version
    return Envelope.model_validate({**fields, "event": event})


def envelope_from_json(text: str | bytes, *, position: int | None = None) -> Envelope:
    """Read an envelope from its JSON form; with `position`, placed there, whatever the form says.

    The form of an event of a known type at its class's version is parsed and validated in one pass (`_Form`),
    in half the time; any other, and any that pass refuses, is read as `envelope_from_dict` reads it, whose value
    or error is the answer.
    """
    if (envelope := _read_in_one_pass(text, position)) is not None:
        return envelope
    document = json_value(text)
    if not isinstance(document, dict):
        raise TypeError(f"an envelope is a JSON object, not {type(document).__name__}")
    if position is not None:
        document["position"] = position
    return envelope_from_dict(document)


class _Form(Envelope):
    """An envelope's JSON form with its event's data validated as the event (`event`, read from `data`): each
    known type has a subclass whose `type` is that name and whose `event` is that class (`_forms`).

    It validates JSON, where the other way validates the value `json_value` parsed, and the two read some values
    otherwise: `schema_version` is strict here, so that what `int()` would read differently (`"1.0"`) goes the
    other way, and a class is left out when its schema holds what JSON would read otherwise (`_read_alike`).
    """

    schema_version: StrictInt
    event: Event = Field(validation_alias="data")


_FORMS: list[tuple[int, TypeAdapter[_Form] | None]] = [(-1, None)]
"""The forms of every registered type as one union told apart by `type`, and the registrations it was built at."""


def _forms() -> TypeAdapter[_Form] | None:
    built, forms = _FORMS[0]
    if built != registrations():
        built = registrations()
        kinds: list[Any] = []
        for name, cls in event_classes().items():
            named: Any = Literal[name]
            event = (cls, Field(validation_alias="data"))
            try:
                form = create_model(f"_{name}Form", __base__=_Form, type=(named, ...), event=event)
            except Exception:  # whatever stops pydantic building it: its events are read the other way
                continue
            # Not while a type it names is not defined yet, nor when JSON is read otherwise: read the other way.
            if form.__pydantic_complete__ and _read_alike(cls.__pydantic_core_schema__):
                kinds.append(form)
        forms = None
        if kinds:
            union: Any = Union[tuple(kinds)]  # noqa: UP007 (its members are known only now)
            with contextlib.suppress(Exception):  # as for a class above: then every event is read the other way
                forms = TypeAdapter(Annotated[union, Field(discriminator="type")])
        _FORMS[0] = built, forms
    return forms


def _read_alike(schema: Any) -> bool:
    """Whether a class's core schema reads JSON as it reads the value parsed from it: not when it holds a float
    (a JSON integer beyond a float's range is infinity read from JSON, refused as Python's int) or anything
    strict (a JSON string is a date read from JSON, not as Python's str)."""
    if isinstance(schema, dict):
        if schema.get("type") == "float" or schema.get("strict"):
            return False
        return all(_read_alike(value) for value in schema.values())
    if isinstance(schema, list | tuple):
        return all(_read_alike(item) for item in schema)
    return True


def _read_in_one_pass(text: str | bytes, position: int | None) -> Envelope | None:
    """The envelope of a JSON form `_forms` reads as `envelope_from_dict` would; None for any other."""
    forms = _forms()
    if forms is None:
        return None
    try:
        form = forms.validate_json(text)
    except (ValueError, TypeError):  # a `ValidationError` is a `ValueError`
        return None
    if form.schema_version != type(form.event).schema_version:
        return None  # another version: upcast, or kept as it is
    fields = form.__dict__
    fields_set = form.__pydantic_fields_set__
    if position is not None:
        fields["position"] = position
        fields_set.add("position")
    return _unvalidated(Envelope, fields, fields_set)
