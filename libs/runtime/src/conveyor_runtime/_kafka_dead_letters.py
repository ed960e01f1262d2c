"""The Kafka log's dead-letter topic: what it holds, and how a record of the events topic that is no event is kept.

Two kinds of records land there. The `dead-letters` stream (the `EventDeadLettered` a consumer appends when it
cannot handle an event), encoded like any event. And records of the events topic that cannot be read at all,
kept as they were (key, value and headers) with headers saying why and where they were, as Kafka Connect's
dead-letter queues do, so that someone can look at them, mend them and produce them again.
"""

from __future__ import annotations

from conveyor_runtime._kafka_index import StreamIndex, header
from conveyor_runtime._kafka_reader import Record

REASON = "dead-letter.reason"
TOPIC = "dead-letter.topic"
OFFSET = "dead-letter.offset"

Origin = tuple[str, int]
"""Where an unreadable record was: its topic and offset."""


def kept_record(record: Record, reason: str) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """An unreadable record as the dead-letter topic keeps it: key, value and headers as they were, plus the
    reason and the topic and offset it was at."""
    headers = [(str(name), bytes(value or b"")) for name, value in record.headers or ()]
    headers += [
        (REASON, reason.encode()),
        (TOPIC, str(record.topic).encode()),
        (OFFSET, str(record.offset).encode()),
    ]
    key = None if record.key is None else bytes(record.key)
    value = None if record.value is None else bytes(record.value)
    return key, value, headers


def origin(record: Record) -> Origin | None:
    """Where a record of the dead-letter topic was before it was kept there, None for a dead-letters event."""
    topic, offset = header(record, TOPIC), header(record, OFFSET)
    if topic is None or offset is None or not offset.isdigit():
        return None
    return topic, int(offset)


class DeadLetterIndex(StreamIndex):
    """The index of the dead-letter topic: the `dead-letters` stream, and which unreadable records it keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: set[Origin] = set()

    def add_record(self, record: Record) -> None:
        found = origin(record)
        if found is None:
            super().add_record(record)
        else:
            self.kept.add(found)
