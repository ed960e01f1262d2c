"""The Kafka log's index in memory: where each stream's events and each type's events are."""

from __future__ import annotations

from conveyor_runtime._kafka_index import StreamIndex


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
