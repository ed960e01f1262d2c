"""The envelope: its stable JSON form, its time stamps, its trace context and deterministic ids."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conveyor_events import (
    Envelope,
    Event,
    RunCompleted,
    RunRequested,
    child_traceparent,
    deterministic_id,
    envelope_from_dict,
    envelope_from_json,
    json_value,
    new_traceparent,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

AT = datetime(2024, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)
METADATA_KEYS = [
    "event_id",
    "type",
    "schema_version",
    "stream",
    "sequence",
    "position",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "traceparent",
    "tracestate",
    "data",
]


def wrapped(event: Event, **overrides: object) -> Envelope:
    envelope = Envelope.wrap(event, stream="run-1", event_id="ev-1", occurred_at=AT, correlation_id="corr-1")
    return envelope.model_copy(update=overrides) if overrides else envelope


def test_every_exported_event_class_has_a_sample(samples: dict[type[Event], Event], exported: set[type[Event]]) -> None:
    assert set(samples) == exported


def test_json_round_trip_gives_an_equal_envelope_and_the_same_json(sample: Event) -> None:
    envelope = wrapped(sample).placed(sequence=4, position=17)

    text = envelope.to_json()
    read = envelope_from_json(text)

    assert read == envelope
    assert type(read.event) is type(sample)
    assert read.event == sample
    assert read.to_json() == text


def test_json_round_trip_from_bytes_and_from_dict(sample: Event) -> None:
    text = wrapped(sample).to_json()

    assert envelope_from_json(text.encode()).to_json() == text
    assert envelope_from_dict(json.loads(text)).to_json() == text


def test_json_form_has_metadata_keys_in_a_fixed_order_then_data(sample: Event) -> None:
    document = json.loads(wrapped(sample).to_json())

    assert list(document) == METADATA_KEYS
    assert document["type"] == type(sample).__name__
    assert document["data"] == json.loads(sample.model_dump_json())


def test_json_form_is_compact() -> None:
    text = wrapped(RunCompleted(run_id="run-1", conclusion="success")).to_json()

    assert ": " not in text
    assert ", " not in text
    assert text.startswith('{"event_id":"ev-1","type":"RunCompleted","schema_version":1,')
    assert text.endswith(',"data":{"run_id":"run-1","conclusion":"success"}}')


def test_wrap_fills_type_version_and_zero_places() -> None:
    envelope = Envelope.wrap(RunCompleted(run_id="run-9", conclusion="failure"), stream="run-9")

    assert envelope.type == "RunCompleted"
    assert envelope.schema_version == 1
    assert (envelope.sequence, envelope.position) == (0, 0)
    assert envelope.correlation_id == "run-9"
    assert envelope.causation_id is None
    assert (
        envelope.event_id != Envelope.wrap(RunCompleted(run_id="run-9", conclusion="failure"), stream="run-9").event_id
    )


def test_placed_returns_a_copy_and_leaves_the_original_alone() -> None:
    envelope = wrapped(RunCompleted(run_id="run-1", conclusion="success"))

    placed = envelope.placed(3, 42)

    assert (placed.sequence, placed.position) == (3, 42)
    assert (envelope.sequence, envelope.position) == (0, 0)
    assert placed.event == envelope.event


def test_envelope_is_frozen() -> None:
    envelope = wrapped(RunCompleted(run_id="run-1", conclusion="success"))

    with pytest.raises(ValidationError):
        envelope.stream = "elsewhere"  # type: ignore[misc]


def test_wrap_with_a_cause_inherits_correlation_causation_and_trace() -> None:
    cause = Envelope.wrap(
        RunRequested(run_id="run-1", repository="acme/app", ref="refs/heads/main", sha="b" * 40),
        stream="run-1",
        correlation_id="delivery-7",
        traceparent="00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
    )
    cause = cause.model_copy(update={"tracestate": "vendor=1"})

    effect = Envelope.wrap(RunCompleted(run_id="run-1", conclusion="success"), stream="run-1", cause=cause)

    assert effect.correlation_id == "delivery-7"
    assert effect.causation_id == cause.event_id
    assert effect.tracestate == "vendor=1"
    assert effect.traceparent is not None
    version, trace_id, span_id, flags = effect.traceparent.split("-")
    assert (version, trace_id, flags) == ("00", "0123456789abcdef0123456789abcdef", "01")
    assert span_id != "0123456789abcdef"


def test_an_explicit_correlation_id_wins_over_the_cause() -> None:
    cause = wrapped(RunCompleted(run_id="run-1", conclusion="success"))

    effect = Envelope.wrap(cause.event, stream="run-1", cause=cause, correlation_id="mine")

    assert effect.correlation_id == "mine"


def test_new_traceparent_is_w3c_shaped_and_fresh() -> None:
    first, second = new_traceparent(), new_traceparent()

    for traceparent in (first, second):
        version, trace_id, span_id, flags = traceparent.split("-")
        assert (version, flags) == ("00", "01")
        assert len(trace_id) == 32
        assert len(span_id) == 16
        int(trace_id, 16), int(span_id, 16)
    assert first != second


@pytest.mark.parametrize("parent", [None, "", "garbage", "00-short-0123456789abcdef-01"])
def test_child_traceparent_of_nothing_valid_starts_a_new_trace(parent: str | None) -> None:
    child = child_traceparent(parent)

    assert len(child.split("-")[1]) == 32
    assert child != child_traceparent(parent)


def test_child_traceparent_keeps_the_trace_and_changes_the_span() -> None:
    parent = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00"

    child = child_traceparent(parent)

    assert child.startswith("00-0123456789abcdef0123456789abcdef-")
    assert child.endswith("-00")
    assert child.split("-")[2] != "0123456789abcdef"


# -- occurred_at -----------------------------------------------------------------------------------------------


def test_wrap_refuses_a_naive_occurred_at() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Envelope.wrap(RunCompleted(run_id="r", conclusion="success"), stream="r", occurred_at=datetime(2024, 1, 1))


def test_reading_refuses_a_naive_occurred_at() -> None:
    document = json.loads(wrapped(RunCompleted(run_id="run-1", conclusion="success")).to_json())
    document["occurred_at"] = "2024-05-17T08:30:15"

    with pytest.raises(ValidationError, match="time zone"):
        envelope_from_dict(document)


def test_occurred_at_in_another_zone_comes_out_in_utc_with_a_z() -> None:
    tokyo = timezone(timedelta(hours=9))
    envelope = Envelope.wrap(
        RunCompleted(run_id="r", conclusion="success"),
        stream="r",
        occurred_at=datetime(2024, 5, 17, 17, 30, tzinfo=tokyo),
    )

    assert envelope.occurred_at.utcoffset() == timedelta(0)
    assert envelope.occurred_at == datetime(2024, 5, 17, 8, 30, tzinfo=UTC)
    assert envelope.metadata()["occurred_at"] == "2024-05-17T08:30:00Z"
    assert '"occurred_at":"2024-05-17T08:30:00Z"' in envelope.to_json()


def test_occurred_at_read_with_an_offset_is_normalised_to_utc() -> None:
    document = json.loads(wrapped(RunCompleted(run_id="run-1", conclusion="success")).to_json())
    document["occurred_at"] = "2024-05-17T10:30:15.5+02:00"

    envelope = envelope_from_dict(document)

    assert envelope.occurred_at == datetime(2024, 5, 17, 8, 30, 15, 500000, tzinfo=UTC)
    assert envelope.occurred_at.utcoffset() == timedelta(0)
    assert json.loads(envelope.to_json())["occurred_at"] == "2024-05-17T08:30:15.500000Z"


def test_wrap_without_occurred_at_uses_the_current_utc_time() -> None:
    before = datetime.now(UTC)
    envelope = Envelope.wrap(RunCompleted(run_id="r", conclusion="success"), stream="r")
    after = datetime.now(UTC)

    assert before <= envelope.occurred_at <= after
    assert envelope.metadata()["occurred_at"].endswith("Z")


# -- deterministic ids -----------------------------------------------------------------------------------------


def test_deterministic_id_is_stable() -> None:
    assert deterministic_id("acme/app", "delivery-1") == deterministic_id("acme/app", "delivery-1")
    # Pinned: ids already stored in logs must not change when this code changes.
    assert deterministic_id("acme/app", "delivery-1") == "5595ce06-ef63-54f8-92df-dea3e7083a83"


def test_deterministic_id_is_a_uuid5() -> None:
    value = uuid.UUID(deterministic_id("run", 1, "build"))

    assert value.version == 5


@given(st.lists(st.one_of(st.text(), st.integers()), min_size=1, max_size=5))
def test_deterministic_id_is_uuid5_of_the_parts_joined(parts: list[object]) -> None:
    namespace = uuid.UUID("6f1c2d0e-8a57-4b1e-9a53-3c0f6f0b7c11")

    assert deterministic_id(*parts) == str(uuid.uuid5(namespace, "\x1f".join(str(part) for part in parts)))


def test_a_wrapped_envelope_is_the_one_its_json_form_reads_back_with_every_field_set() -> None:
    envelope = Envelope.wrap(RunCompleted(run_id="run-1", conclusion="success"), stream="run-1", occurred_at=AT)
    read = envelope_from_json(envelope.to_json())

    assert read == envelope
    assert envelope.model_fields_set == set(Envelope.model_fields)
    assert list(envelope.model_dump()) == list(Envelope.model_fields)
    assert envelope.model_copy(update={"position": 7}).position == 7
    assert envelope.position == 0


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("acme/app", "delivery-1"), ("acme/app", "delivery-2")),
        (("a", "b"), ("b", "a")),
        (("a", "b"), ("ab",)),
        (("a", "b"), ("a", "b", "")),
        (("run", "job", 1), ("run", "job", 2)),
    ],
)
def test_deterministic_id_differs_for_different_parts(left: tuple[object, ...], right: tuple[object, ...]) -> None:
    assert deterministic_id(*left) != deterministic_id(*right)


JSON_TEXTS = [
    '{"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "d"}}',
    '{"big": 123456789012345678901234567890, "tiny": 5e-324, "huge": 1.5e400, "nan": NaN}',
    '{"same": 1, "same": 2}',
    '{"escaped": "\\u00e9\\n\\t\\"", "raw": "\u00e9\u4e2d\U0001f600"}',
    '{"lone": "\\ud800"}',
    '\ufeff{"after a byte order mark": 1}',
    "  [1]  ",
]


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_value_reads_what_json_loads_reads(text: str) -> None:
    data = text.encode()
    assert repr(json_value(data)) == repr(json.loads(data))
    if not text.startswith("\ufeff"):  # json.loads refuses a byte order mark in a str, and so does json_value
        assert repr(json_value(text)) == repr(json.loads(text))


def test_json_value_reads_a_raw_lone_surrogate_in_a_str_as_json_loads_does() -> None:
    assert json_value('{"lone": "\ud800"}') == json.loads('{"lone": "\ud800"}') == {"lone": "\ud800"}


@pytest.mark.parametrize("text", ["", "{", "{not json", '{"a": 1,}', "[1] [2]", "\xff"])
def test_json_value_raises_json_loads_error(text: str) -> None:
    with pytest.raises(ValueError) as raised:  # noqa: PT011 (the type is compared below)
        json_value(text.encode("latin-1"))
    with pytest.raises(ValueError) as expected:  # noqa: PT011
        json.loads(text.encode("latin-1"))
    assert (type(raised.value), str(raised.value)) == (type(expected.value), str(expected.value))
