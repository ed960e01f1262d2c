"""The Kafka log's index in memory: where each stream's events and each type's events are."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conveyor_events import Envelope, RunCompleted
from conveyor_runtime._kafka_index import StreamIndex, Undecodable, decode, encode


def test_the_events_of_some_types_are_found_in_the_logs_order_from_an_offset_on() -> None:
    index = StreamIndex()
    noted = [(0, "a", "JobQueued"), (1, "b", "JobStarted"), (2, "a", "JobQueued"), (3, "c", "RunCompleted")]
    for offset, stream, type_ in noted:
        index.add(stream, f"{stream}-{offset}", type_, offset + 1, offset)

    assert index.typed_offsets({"JobQueued", "RunCompleted"}, 0, 10) == [0, 2, 3]
    assert index.typed_offsets({"JobQueued", "RunCompleted"}, 1, 10) == [2, 3]
    assert index.typed_offsets({"JobQueued", "RunCompleted"}, 0, 2) == [0, 2]
    assert index.typed_offsets({"JobQueued"}, 3, 10) == []
    assert index.typed_offsets({"StepLogged"}, 0, 10) == []


def test_an_event_noted_out_of_order_or_twice_is_found_once_in_its_place() -> None:
    """A writer notes its own events before reading them back, so another writer's earlier event comes later."""
    index = StreamIndex()
    index.add("run-1", "mine", "JobQueued", 1, 7)
    index.add("run-2", "theirs", "JobQueued", 1, 5)
    index.add("run-1", "mine", "JobQueued", 1, 7)

    assert index.typed_offsets({"JobQueued"}, 0, 10) == [5, 7]
    assert index.offsets("run-1") == [7]


def record_of(value: bytes, offset: int) -> SimpleNamespace:
    """What `decode` reads of an aiokafka record."""
    return SimpleNamespace(topic="events", offset=offset, key=b"run-1", value=value, headers=[])


def test_a_record_decodes_to_its_envelope_placed_at_its_offset_and_one() -> None:
    written = Envelope.wrap(RunCompleted(run_id="run-1", conclusion="success"), stream="run-1").placed(3, 999)
    _, value, _ = encode(written)

    read = decode(record_of(value, 41))

    assert read == written.placed(3, 42)
    assert "position" in read.__pydantic_fields_set__


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[1, 2]", "the value is not an envelope: TypeError: an envelope is a JSON object, not list"),
        (b"{not json", "the value is not an envelope: JSONDecodeError: "),
        (b'{"type": "RunCompleted"}', "the value is not an envelope: KeyError: 'schema_version'"),
    ],
)
def test_a_record_that_holds_no_envelope_is_undecodable_with_the_reason(value: bytes, reason: str) -> None:
    with pytest.raises(Undecodable) as raised:
        decode(record_of(value, 0))

    assert str(raised.value).startswith(reason)
