"""The event models: frozen, registered by name, and tolerant of data they do not know."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conveyor_events import (
    Conclusion,
    Envelope,
    Event,
    JobCompleted,
    Problem,
    RunRequested,
    StepCompleted,
    UnknownEvent,
    decode_event,
    envelope_from_dict,
    envelope_from_json,
    event_class,
)
from pydantic import ValidationError

AT = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)


def document_of(event: Event) -> dict[str, Any]:
    envelope = Envelope.wrap(event, stream="run-1", event_id="ev-1", occurred_at=AT)
    document: dict[str, Any] = json.loads(envelope.to_json())
    return document


def test_events_are_frozen(sample: Event) -> None:
    name = next(iter(type(sample).model_fields))

    with pytest.raises(ValidationError):
        setattr(sample, name, "changed")


def test_every_event_class_is_registered_under_its_name(sample: Event) -> None:
    assert type(sample).event_type() == type(sample).__name__
    assert event_class(type(sample).__name__) is type(sample)


def test_unknown_names_have_no_class() -> None:
    assert event_class("NoSuchEventAnywhere") is None
    assert event_class("UnknownEvent") is None


def test_required_fields_are_required() -> None:
    with pytest.raises(ValidationError, match="conclusion"):
        JobCompleted(run_id="r", job_id="j")  # type: ignore[call-arg]


def test_conclusions_are_validated() -> None:
    with pytest.raises(ValidationError):
        JobCompleted(run_id="r", job_id="j", conclusion="maybe")

    assert JobCompleted(run_id="r", job_id="j", conclusion="success").conclusion is Conclusion.SUCCESS


def test_problem_says_where_and_what() -> None:
    assert str(Problem(path="ci.yml", line=3, column=7, message="bad key")) == "ci.yml (Line: 3, Col: 7): bad key"
    assert str(Problem(path="ci.yml", message="no jobs")) == "ci.yml: no jobs"


# -- forward compatibility -------------------------------------------------------------------------------------


def test_unknown_fields_are_read_and_kept_when_reencoded() -> None:
    document = document_of(
        StepCompleted(run_id="run-1", job_id="j", step_index=2, outcome="success", conclusion="success")
    )
    document["data"]["duration_ms"] = 1234
    document["data"]["notes"] = [{"level": "warning", "text": "slow"}]

    envelope = envelope_from_dict(document)

    assert isinstance(envelope.event, StepCompleted)
    assert envelope.event.step_index == 2
    assert envelope.event.model_extra == {"duration_ms": 1234, "notes": [{"level": "warning", "text": "slow"}]}
    again = json.loads(envelope.to_json())
    assert again["data"]["duration_ms"] == 1234
    assert again["data"]["notes"] == [{"level": "warning", "text": "slow"}]
    assert envelope_from_json(envelope.to_json()) == envelope


def test_an_event_of_a_newer_schema_version_is_read_not_dropped() -> None:
    document = document_of(RunRequested(run_id="run-1", repository="acme/app", ref="refs/heads/main", sha="c" * 40))
    document["schema_version"] = 7
    document["data"]["priority"] = "high"

    envelope = envelope_from_dict(document)

    assert isinstance(envelope.event, RunRequested)
    assert envelope.event.repository == "acme/app"
    assert envelope.schema_version == 7
    assert envelope.event.model_extra == {"priority": "high"}
    reencoded = json.loads(envelope.to_json())
    assert reencoded["schema_version"] == 7
    assert reencoded["data"]["priority"] == "high"
    assert reencoded == document


def test_an_unknown_event_type_is_read_as_unknown_event_with_its_data() -> None:
    document = document_of(RunRequested(run_id="run-1", repository="acme/app", ref="refs/heads/main", sha="c" * 40))
    document["type"] = "PackagePublished"
    document["schema_version"] = 3
    document["data"] = {"run_id": "run-1", "name": "dist", "size": 2048, "files": ["a.whl"]}

    envelope = envelope_from_dict(document)

    assert isinstance(envelope.event, UnknownEvent)
    assert envelope.type == "PackagePublished"
    assert envelope.schema_version == 3
    assert envelope.event.model_extra == {"run_id": "run-1", "name": "dist", "size": 2048, "files": ["a.whl"]}
    assert json.loads(envelope.to_json()) == document
    assert envelope_from_json(envelope.to_json()) == envelope


def test_decode_event_of_an_unknown_type_keeps_version_and_data() -> None:
    version, event = decode_event("SomethingNew", 5, {"a": 1})

    assert version == 5
    assert isinstance(event, UnknownEvent)
    assert event.model_dump() == {"a": 1}


def test_known_fields_of_the_wrong_type_are_still_refused() -> None:
    document = document_of(
        StepCompleted(run_id="run-1", job_id="j", step_index=2, outcome="success", conclusion="success")
    )
    document["data"]["step_index"] = "second"

    with pytest.raises(ValidationError, match="step_index"):
        envelope_from_dict(document)
