"""Schema change: data written by an older version of an event is upcast, step by step, when it is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from conveyor_events import Envelope, RunEvent, decode_event, envelope_from_dict, envelope_from_json, upcast, upcaster

AT = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)


class UpcastingProbeRenamed(RunEvent):
    """Version 1 had `name`; version 2 renamed it `title`; version 3 added the required `tags`."""

    schema_version: ClassVar[int] = 3

    title: str
    tags: list[str]


@upcaster("UpcastingProbeRenamed", 1)
def _rename_name_to_title(data: dict[str, Any]) -> dict[str, Any]:
    data["title"] = data.pop("name")
    return data


@upcaster("UpcastingProbeRenamed", 2)
def _add_tags(data: dict[str, Any]) -> dict[str, Any]:
    data["tags"] = [data["title"].lower()]
    return data


class UpcastingProbeWithoutSteps(RunEvent):
    """At version 2 with no upcaster registered at all."""

    schema_version: ClassVar[int] = 2

    size: int


class UpcastingProbeHalfway(RunEvent):
    """At version 3 with an upcaster from 1 but none from 2."""

    schema_version: ClassVar[int] = 3

    size: int


@upcaster("UpcastingProbeHalfway", 1)
def _halfway(data: dict[str, Any]) -> dict[str, Any]:
    return data


def stored(event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": "ev-1",
        "type": event_type,
        "schema_version": version,
        "stream": "run-1",
        "sequence": 1,
        "position": 1,
        "occurred_at": "2024-05-17T08:30:00Z",
        "correlation_id": "run-1",
        "causation_id": None,
        "traceparent": None,
        "tracestate": None,
        "data": data,
    }


def test_data_of_version_1_is_upcast_through_every_step() -> None:
    version, event = decode_event("UpcastingProbeRenamed", 1, {"run_id": "run-1", "name": "Build"})

    assert version == 3
    assert event == UpcastingProbeRenamed(run_id="run-1", title="Build", tags=["build"])


def test_data_of_version_2_runs_only_the_last_step() -> None:
    version, event = decode_event("UpcastingProbeRenamed", 2, {"run_id": "run-1", "title": "Deploy"})

    assert version == 3
    assert event == UpcastingProbeRenamed(run_id="run-1", title="Deploy", tags=["deploy"])


def test_data_of_the_current_version_is_not_touched() -> None:
    data = {"run_id": "run-1", "title": "Test", "tags": ["x", "y"]}

    assert upcast("UpcastingProbeRenamed", 3, data) == (3, data)


def test_upcasting_does_not_change_the_stored_data() -> None:
    data = {"run_id": "run-1", "name": "Build"}

    upcast("UpcastingProbeRenamed", 1, data)

    assert data == {"run_id": "run-1", "name": "Build"}


def test_an_envelope_read_at_an_old_version_is_reencoded_at_the_current_one() -> None:
    envelope = envelope_from_json(json.dumps(stored("UpcastingProbeRenamed", 1, {"run_id": "run-1", "name": "Lint"})))

    assert envelope.schema_version == 3
    assert isinstance(envelope.event, UpcastingProbeRenamed)
    assert envelope.event.tags == ["lint"]
    document = json.loads(envelope.to_json())
    assert document["schema_version"] == 3
    assert document["data"] == {"run_id": "run-1", "title": "Lint", "tags": ["lint"]}
    assert envelope_from_json(envelope.to_json()) == envelope


def test_a_new_envelope_carries_the_class_version() -> None:
    envelope = Envelope.wrap(UpcastingProbeRenamed(run_id="r", title="t", tags=[]), stream="r", occurred_at=AT)

    assert envelope.schema_version == 3
    assert envelope_from_json(envelope.to_json()) == envelope


def test_a_missing_upcaster_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match="no upcaster for UpcastingProbeWithoutSteps from schema version 1"):
        decode_event("UpcastingProbeWithoutSteps", 1, {"run_id": "run-1", "size": 1})


def test_a_missing_upcaster_halfway_names_the_version_it_stopped_at() -> None:
    with pytest.raises(LookupError, match="UpcastingProbeHalfway from schema version 2"):
        envelope_from_dict(stored("UpcastingProbeHalfway", 1, {"run_id": "run-1", "size": 1}))


def test_upcast_leaves_unknown_types_alone() -> None:
    assert upcast("NeverDefinedEvent", 1, {"a": 1}) == (1, {"a": 1})
