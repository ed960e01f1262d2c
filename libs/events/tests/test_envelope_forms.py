"""An envelope's JSON form, written and read in one pass.

`Envelope.json_bytes` writes the form with one serializer; it must write the very text that writing the metadata
with `json.dumps` and the data with `event_json` gives. `envelope_from_json` parses and validates the form of a
known event in one pass; whatever it reads must be what parsing it with `json.loads` and reading the dict
(`envelope_from_dict`) gives: the same envelope, field by field and in the same order, or the same error."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from conveyor_events import (
    Envelope,
    Event,
    JobTimedOut,
    RunCompleted,
    RunEvent,
    StepLogged,
    envelope_from_dict,
    envelope_from_json,
    event_json,
    upcaster,
)
from conveyor_events._envelope import _read_in_one_pass
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.errors import PydanticSchemaGenerationError

AT = datetime(2024, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)


def form(event: Event, **metadata: object) -> dict[str, Any]:
    """The JSON form of `event`'s envelope as a dict, with `metadata` changed."""
    envelope = Envelope.wrap(event, stream="run-1", event_id="ev-1", occurred_at=AT, correlation_id="corr-1")
    document: dict[str, Any] = json.loads(envelope.placed(sequence=4, position=17).to_json())
    return document | metadata


def outcome(read: Callable[[], Envelope]) -> tuple[object, ...]:
    """What a read gives, to the last detail: its fields in order (by `repr`: NaN is not equal to itself), which
    were set, the event's class and its unknown fields; or the error's class and message."""
    try:
        envelope = read()
    except Exception as error:  # any error: its type and message are compared
        return ("error", type(error), str(error))
    event = envelope.event
    return (
        "envelope",
        [(name, repr(value)) for name, value in envelope.__dict__.items()],
        envelope.__pydantic_fields_set__,
        type(event),
        repr(event.__pydantic_extra__),
        event.__pydantic_fields_set__,
    )


def read_both_ways(text: str, position: int | None = None) -> tuple[tuple[object, ...], tuple[object, ...]]:
    def by_dict() -> Envelope:
        document = json.loads(text)
        if position is not None:
            document["position"] = position
        return envelope_from_dict(document)

    return outcome(lambda: envelope_from_json(text, position=position)), outcome(by_dict)


def test_every_known_event_is_read_in_one_pass_as_the_dict_reads_it(sample: Event) -> None:
    text = json.dumps(form(sample))

    # A float is read otherwise from JSON (see the test of `limit_minutes` below): such a class goes the other way.
    assert (_read_in_one_pass(text, None) is not None) is not isinstance(sample, JobTimedOut)
    fast, slow = read_both_ways(text)
    assert fast == slow
    assert fast[0] == "envelope"


def test_a_position_given_places_the_envelope_there() -> None:
    text = json.dumps(form(RunCompleted(run_id="run-1", conclusion="success")))

    fast, slow = read_both_ways(text, position=99)

    assert fast == slow
    assert envelope_from_json(text, position=99).position == 99


@pytest.mark.parametrize(
    "change",
    [
        {"schema_version": 2},  # a newer version: kept as written, read by the dict
        {"type": "NoSuchEvent"},  # an unknown type: an UnknownEvent
        {"occurred_at": "2024-05-17T10:30:15+02:00"},  # another zone: normalised to UTC
        {"occurred_at": "2024-05-17T08:30:15"},  # no zone: refused
        {"sequence": "4"},  # a number as text
        {"schema_version": "1"},
        {"schema_version": 1.0},
        {"schema_version": True},
        {"position": None},
        {"causation_id": 7},
        {"extra": {"kept": False}},
        {"data": {"run_id": "run-1", "conclusion": "success", "unknown": [1.5e400, 12345678901234567890123]}},
        {"data": {"run_id": "run-1", "conclusion": "no such conclusion"}},
        {"data": [1, 2]},
        {"data": None},
    ],
    ids=repr,
)
def test_forms_the_one_pass_refuses_or_changes_are_read_as_the_dict_reads_them(change: dict[str, Any]) -> None:
    fast, slow = read_both_ways(json.dumps(form(RunCompleted(run_id="run-1", conclusion="success"), **change)))

    assert fast == slow


@pytest.mark.parametrize(
    "text",
    [
        # The last of two equal keys counts, as `json.loads` reads it.
        '{"event_id":"a","event_id":"b","type":"RunCompleted","schema_version":1,"stream":"s",'
        '"occurred_at":"2024-01-01T00:00:00Z","correlation_id":"c","data":{"run_id":"r","conclusion":"success"}}',
        '{"type":"NoSuchEvent","type":"RunCompleted","event_id":"a","schema_version":1,"stream":"s",'
        '"occurred_at":"2024-01-01T00:00:00Z","correlation_id":"c","data":{"run_id":"r","conclusion":"success"}}',
        # Optional keys absent: their defaults, and not counted as set.
        '{"event_id":"a","type":"RunCompleted","schema_version":1,"stream":"s",'
        '"occurred_at":"2024-01-01T00:00:00Z","correlation_id":"c","data":{"run_id":"r","conclusion":"success"}}',
        # An escaped lone surrogate, which only `json.loads` reads.
        '{"event_id":"\\ud800","type":"RunCompleted","schema_version":1,"stream":"s",'
        '"occurred_at":"2024-01-01T00:00:00Z","correlation_id":"c","data":{"run_id":"r","conclusion":"success"}}',
        '{"event_id":"a","type":"RunCompleted","schema_version":1,"stream":"s","occurred_at":"2024-01-01T00:00:00Z",'
        '"correlation_id":"c","data":{"run_id":"r","conclusion":"success","nan":NaN,"inf":-Infinity}}',
    ],
)
def test_json_subtleties_are_read_as_json_loads_reads_them(text: str) -> None:
    fast, slow = read_both_ways(text)

    assert fast == slow


def test_a_float_beyond_range_is_refused_as_the_dict_refuses_it(samples: dict[type[Event], Event]) -> None:
    document = form(samples[JobTimedOut])
    document["data"]["limit_minutes"] = 10**309  # JSON reads it as infinity, a Python int is refused

    fast, slow = read_both_ways(json.dumps(document))

    assert fast == slow
    assert fast[:2] == ("error", ValidationError)


def test_a_schema_version_that_int_refuses_is_refused() -> None:
    fast, slow = read_both_ways(
        json.dumps(form(RunCompleted(run_id="run-1", conclusion="success"), schema_version="1.0"))
    )

    assert fast == slow
    assert fast[:2] == ("error", ValueError)


def test_a_class_pydantic_cannot_build_leaves_the_others_read_in_one_pass() -> None:
    class NotAModel:
        pass

    with pytest.raises(PydanticSchemaGenerationError):

        class Unbuildable(Event):
            thing: NotAModel

    text = json.dumps(form(RunCompleted(run_id="run-1", conclusion="success")))

    assert _read_in_one_pass(text, None) is not None
    assert envelope_from_json(text).event == RunCompleted(run_id="run-1", conclusion="success")


class FormsProbeRetagged(RunEvent):
    """Version 1 wrote its tags in lower case, version 2 in upper case."""

    schema_version: ClassVar[int] = 2

    tags: list[str]


@upcaster("FormsProbeRetagged", 1)
def _upper_case_tags(data: dict[str, Any]) -> dict[str, Any]:
    return data | {"tags": [tag.upper() for tag in data["tags"]]}


def test_a_form_of_an_older_version_is_upcast_not_read_in_one_pass() -> None:
    document = form(FormsProbeRetagged(run_id="run-1", tags=["a"]), schema_version=1)

    fast, slow = read_both_ways(json.dumps(document))

    assert fast == slow
    read = envelope_from_json(json.dumps(document))
    assert (read.schema_version, read.event) == (2, FormsProbeRetagged(run_id="run-1", tags=["A"]))


def test_a_position_given_counts_as_set_when_the_form_has_none() -> None:
    document = form(RunCompleted(run_id="run-1", conclusion="success"))
    del document["position"]

    fast, slow = read_both_ways(json.dumps(document), position=5)

    assert fast == slow
    assert "position" in envelope_from_json(json.dumps(document), position=5).__pydantic_fields_set__


def test_a_class_naming_a_type_not_defined_yet_leaves_the_others_read_in_one_pass() -> None:
    class Waiting(Event):
        thing: NotDefinedYet  # type: ignore[name-defined]  # noqa: F821

    text = json.dumps(form(RunCompleted(run_id="run-1", conclusion="success")))

    assert not Waiting.__pydantic_complete__
    assert _read_in_one_pass(text, None) is not None


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', "3", "null", "{", ""])
def test_a_form_that_is_no_object_is_refused_with_what_it_is(text: str) -> None:
    with pytest.raises(ValueError if text in ("{", "") else TypeError):
        envelope_from_json(text)


def test_no_object_says_what_the_json_is() -> None:
    with pytest.raises(TypeError, match="an envelope is a JSON object, not list"):
        envelope_from_json("[1, 2]")


def test_a_class_registered_after_the_first_read_is_read_in_one_pass_too() -> None:
    envelope_from_json(json.dumps(form(RunCompleted(run_id="run-1", conclusion="success"))))

    class LateArrival(Event):
        count: int

    text = json.dumps(form(LateArrival(count=3)))

    assert _read_in_one_pass(text, None) is not None
    assert envelope_from_json(text).event == LateArrival(count=3)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["2024-05-17T08:30:15Z", "2024-05-17T08:30:15+05:30", "2024-05-17", "1", "success"])
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
PLAUSIBLE = {
    "event_id": st.text(max_size=12),
    "stream": st.text(max_size=12),
    "correlation_id": st.text(max_size=12),
    "causation_id": st.none() | st.text(max_size=12),
    "sequence": st.integers(-(2**70), 2**70),
    "position": st.integers(-(2**70), 2**70),
    "occurred_at": st.sampled_from(["2024-05-17T08:30:15.5-08:00", "2024-05-17T08:30:15Z", "2024-05-17T08:30"]),
    "unknown": json_values,
}
"""Values of the type each key holds, more often read in one pass than any JSON value."""
METADATA = list(PLAUSIBLE)


def changed_form(data: st.DataObject, samples: dict[type[Event], Event]) -> str:
    """A sample's form with a few keys of its metadata or its data set to any JSON value, or left out."""
    document = form(data.draw(st.sampled_from([samples[StepLogged], samples[RunCompleted], *samples.values()])))
    for _ in range(data.draw(st.integers(1, 3))):
        where = document["data"] if data.draw(st.booleans()) and isinstance(document.get("data"), dict) else document
        key = data.draw(st.sampled_from([*where, *METADATA, "type", "schema_version", "data"]))
        match data.draw(st.integers(0, 4)):
            case 0:
                where.pop(key, None)
            case 1 | 2:
                where[key] = data.draw(PLAUSIBLE.get(key, json_values))
            case _:
                where[key] = data.draw(json_values)
    return json.dumps(document)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), position=st.none() | st.integers(1, 10**6))
def test_any_changed_form_is_read_as_the_dict_reads_it(
    samples: dict[type[Event], Event], data: st.DataObject, position: int | None
) -> None:
    text = changed_form(data, samples)
    event("read in one pass" if _read_in_one_pass(text, position) else "read through the dict")
    fast, slow = read_both_ways(text, position)

    assert fast == slow


def written_apart(envelope: Envelope) -> str:
    """The JSON form as it is written without the one serializer: the metadata by `json.dumps`, then the data."""
    head = json.dumps(envelope.metadata(), separators=(",", ":"))
    return f'{head[:-1]},"data":{event_json(envelope.event)}}}'


def test_every_known_event_is_written_in_one_pass_as_it_is_written_apart(sample: Event) -> None:
    envelope = Envelope.wrap(sample, stream="run-1", occurred_at=AT, correlation_id="corr-1").placed(3, 9)

    assert envelope.json_bytes() == written_apart(envelope).encode()
    assert envelope.to_json() == written_apart(envelope)


def test_unknown_fields_of_an_event_are_written_too() -> None:
    event = RunCompleted.model_validate({"run_id": "run-1", "conclusion": "success", "later": {"field": [1, None]}})
    envelope = Envelope.wrap(event, stream="run-1")

    assert envelope.json_bytes() == written_apart(envelope).encode()
    assert b'"later":{"field":[1,null]}' in envelope.json_bytes()


texts = st.text(max_size=10) | st.sampled_from(["\x7f", "caf\u00e9", "\x00\x1f", '"\\/', "\u2028"])
zones = st.sampled_from([UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30))])


@settings(max_examples=300, deadline=None)
@given(
    stream=texts,
    event_id=texts,
    correlation_id=texts,
    causation_id=st.none() | texts,
    tracestate=st.none() | texts,
    zone=zones,
    sequence=st.integers(0, 2**63),
)
def test_any_metadata_is_written_as_it_is_written_apart(
    stream: str,
    event_id: str,
    correlation_id: str,
    causation_id: str | None,
    tracestate: str | None,
    zone: timezone,
    sequence: int,
) -> None:
    envelope = Envelope.wrap(RunCompleted(run_id=stream, conclusion="success"), stream=stream).model_copy(
        update={
            "event_id": event_id,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "tracestate": tracestate,
            "occurred_at": AT.astimezone(zone),
            "sequence": sequence,
        }
    )

    assert envelope.json_bytes() == written_apart(envelope).encode()
