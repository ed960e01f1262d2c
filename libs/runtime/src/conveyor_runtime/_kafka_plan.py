"""What one transaction of the Kafka log's writer holds, decided before anything is sent.

The appends of a group are checked against the index (expected versions, event ids already stored), their new
events placed at the next sequences of their streams, and each append's outcome noted: its marks, or the error
that fails it alone. Nothing here talks to Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from conveyor_events import Envelope

from conveyor_runtime._kafka_index import StreamIndex, encode
from conveyor_runtime._log import Checkpoint, ConcurrencyError

Mark = tuple[Literal["new", "stored"], int]
"""Where an event of an append ends up: the index of a record written now, or the offset it is stored at."""
Outgoing = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]
"""A record to write: its topic, key, value and headers."""
Where = Callable[[str], tuple[str, StreamIndex]]
"""The topic a stream is written to, and that topic's index."""


@dataclass(slots=True)
class Append:
    stream: str
    events: Sequence[Envelope]
    expected_version: int | None
    checkpoint: Checkpoint | None
    future: asyncio.Future[list[Envelope]]


@dataclass(slots=True)
class Group:
    """What one transaction writes for a group of appends, and what each append gets back."""

    records: list[Envelope] = field(default_factory=list)
    """New events, placed at their sequence; their position comes from the offset they are written at."""
    encoded: list[Outgoing] = field(default_factory=list)
    """The records of `records`, in the same order."""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    outcomes: list[list[Mark] | Exception] = field(default_factory=list)
    kept: list[Outgoing] = field(default_factory=list)
    """Unreadable records of the events topic, as the dead-letter topic keeps them."""


def plan(appends: list[Append], where: Where) -> Group:
    """The transaction that writes `appends`; an append that cannot be written gets its error as its outcome."""
    group = Group()
    versions: dict[str, int] = {}
    placed_now: dict[tuple[str, str], int] = {}
    for entry in appends:
        try:
            marks = _place(entry, where, group, versions, placed_now) if entry.events else []
        except Exception as error:
            group.outcomes.append(error)
            continue
        if entry.checkpoint is not None:
            group.checkpoints.append(entry.checkpoint)
        group.outcomes.append(marks)
    return group


def _place(
    entry: Append, where: Where, group: Group, versions: dict[str, int], placed_now: dict[tuple[str, str], int]
) -> list[Mark]:
    """Give an append's new events their sequences; raises, having added nothing, when it cannot be written."""
    stream = entry.stream
    topic, index = where(stream)
    version = versions.get(stream, index.version(stream))
    known: dict[str, Mark] = {}
    for envelope in entry.events:
        if (stream, envelope.event_id) in placed_now:
            known[envelope.event_id] = ("new", placed_now[(stream, envelope.event_id)])
        elif (offset := index.offset_of(stream, envelope.event_id)) is not None:
            known[envelope.event_id] = ("stored", offset)
    fresh = len(known) < len(entry.events)
    if fresh and entry.expected_version is not None and entry.expected_version != version:
        raise ConcurrencyError(stream, entry.expected_version, version)
    marks: list[Mark] = []
    records: list[Envelope] = []
    for envelope in entry.events:
        if envelope.event_id in known:
            marks.append(known[envelope.event_id])
            continue
        version += 1
        records.append(envelope.placed(version, 0))
        marks.append(("new", len(group.records) + len(records) - 1))
    encoded = [(topic, *encode(record)) for record in records]  # an event that cannot be encoded fails its append only
    for record in records:
        placed_now[(stream, record.event_id)] = len(group.records)
        group.records.append(record)
    group.encoded.extend(encoded)
    versions[stream] = version
    return marks
